"""Causal multi-head self-attention on a packed QKV array, forward and backward.

The input is what a fused QKV projection produces, ``qkv = x W_qkv + b`` of shape
[B, T, 3D]: columns [0, D) are the queries, [D, 2D) the keys, [2D, 3D) the values, and head
h owns the columns h*hd .. (h+1)*hd - 1 of each third (hd = D / H). Per batch row b and
head h, with q_i, k_j, v_j the hd-vectors of positions i and j:

    s_ij = (q_i . k_j) / sqrt(hd)                 for j <= i  (causal: no peeking ahead)
    P_ij = exp(s_ij - m_i) / sum_{j' <= i} exp(s_ij' - m_i),     m_i = max_j s_ij
    y_i  = sum_{j <= i} P_ij M_ij v_j             (M: optional scaled dropout keep-mask)

Backward, given dy_i (chapter 07 derives each line):

    dv_j  = sum_i P_ij M_ij dy_i
    dP_ij = M_ij (dy_i . v_j)
    dS_ij = P_ij (dP_ij - D_i),     D_i = sum_j P_ij dP_ij        (softmax Jacobian)
    dq_i  = sum_j dS_ij k_j / sqrt(hd),      dk_j = sum_i dS_ij q_i / sqrt(hd)

The attention probabilities P [B, H, T, T] (zero above the diagonal) are kept for the
backward pass and for plotting; they are small for the context lengths tinylm trains.

Two implementations with one contract:

* ``*_reference``: array-module code (NumPy or CuPy) that splits the heads, forms the
  masked score matrix and applies softmax -- the specification.
* numba: loops per (batch, head), the heads spread over numba's threads. They copy one
  head's q, k, v out of ``qkv`` into small contiguous tiles, write straight into
  y [B, T, D] / dqkv [B, T, 3D] (no [B, H, T, hd] arrays), and compute only the causal
  triangle. The forward is three passes over att [B, H, T, T]: shifted scores (numba),
  exp (NumPy, whose exp is SIMD-vectorised -- numba's is a scalar libm call, ~10x slower),
  then normalisation and P V (numba); its products are ``_matmul_nt``, a register-blocked
  A B^T whose inner loop runs along contiguous rows. The backward computes dP the same way,
  then walks the rows two at a time, accumulating dq_i, dk_j and dv_j together (vectorised
  updates along the head width; each dk_j, dv_j update serves two queries; no transposes).
"""

from __future__ import annotations

import math

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba
from tinylm.kernels import JIT, parallel_chunks


def _check_qkv(qkv, n_head: int):
    if qkv.ndim != 3 or qkv.shape[2] % 3 != 0:
        raise ValueError(f"attention: qkv must be [B, T, 3*D], got shape {qkv.shape}.")
    D = qkv.shape[2] // 3
    if D % n_head != 0:
        raise ValueError(f"attention: embedding size {D} is not divisible by n_head={n_head}; "
                         "choose n_head that divides the model width.")
    return qkv.shape[0], qkv.shape[1], D, D // n_head


# -- reference: the specification ------------------------------------------------------------

def _split_heads(qkv, n_head: int):
    """qkv [B, T, 3D] -> q, k, v, each [B, H, T, hd]."""
    B, T, D, hd = _check_qkv(qkv, n_head)
    heads = qkv.reshape(B, T, 3, n_head, hd).transpose(2, 0, 3, 1, 4)   # [3, B, H, T, hd]
    return heads[0], heads[1], heads[2]


def _merge_heads(y):
    """y [B, H, T, hd] -> [B, T, H*hd]."""
    B, H, T, hd = y.shape
    return y.transpose(0, 2, 1, 3).reshape(B, T, H * hd)


def causal_attention_forward_reference(qkv, n_head: int, drop_mask=None):
    """qkv [B, T, 3D] -> (y [B, T, D], att [B, H, T, T])."""
    xp = get_array_module(qkv)
    q, k, v = _split_heads(qkv, n_head)                                 # [B, H, T, hd] each
    T, hd = q.shape[2], q.shape[3]
    scores = (q @ k.swapaxes(-1, -2)) * qkv.dtype.type(1.0 / math.sqrt(hd))   # [B, H, T, T]
    allowed = xp.tril(xp.ones((T, T), dtype=bool))                     # [T, T]
    scores = xp.where(allowed, scores, -xp.inf)
    e = xp.exp(scores - scores.max(axis=-1, keepdims=True))            # [B, H, T, T]
    att = e / e.sum(axis=-1, keepdims=True)                            # rows sum to 1
    weights = att if drop_mask is None else att * drop_mask            # [B, H, T, T]
    return _merge_heads(weights @ v), att                              # [B, T, D]


def causal_attention_backward_reference(dy, qkv, att, n_head: int, drop_mask=None):
    """dy [B, T, D] -> dqkv [B, T, 3D]."""
    xp = get_array_module(qkv)
    q, k, v = _split_heads(qkv, n_head)                                 # [B, H, T, hd] each
    B, H, T, hd = q.shape
    scale = qkv.dtype.type(1.0 / math.sqrt(hd))
    dyh = dy.reshape(B, T, H, hd).transpose(0, 2, 1, 3)                # [B, H, T, hd]
    weights = att if drop_mask is None else att * drop_mask            # [B, H, T, T]
    dv = weights.swapaxes(-1, -2) @ dyh                                # [B, H, T, hd]
    dweights = dyh @ v.swapaxes(-1, -2)                                # [B, H, T, T]
    datt = dweights if drop_mask is None else dweights * drop_mask     # [B, H, T, T]
    dscores = att * (datt - (datt * att).sum(axis=-1, keepdims=True))  # [B, H, T, T]
    dq = (dscores @ k) * scale                                         # [B, H, T, hd]
    dk = (dscores.swapaxes(-1, -2) @ q) * scale                        # [B, H, T, hd]
    dqkv = xp.stack([dq, dk, dv])                                      # [3, B, H, T, hd]
    return dqkv.transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * H * hd)


# -- numba: fused loops, parallel over (batch, head) ------------------------------------------

# fastmath without "no NaN/inf" (the masked scores are -inf): reassociation lets LLVM
# vectorise the sums.
FAST = {"reassoc", "contract", "nsz", "arcp"}
ATTENTION_JIT = dict(JIT, fastmath=FAST)     # the shared options (tinylm/kernels/__init__.py)

# Triangle modes of the blocked product below (P is lower-triangular: P_ij = 0 for j > i).
COLS_UP_TO_ROW, SUM_UP_TO_ROW = 1, 2

if NUMBA_AVAILABLE:
    import numba

    @numba.njit(**ATTENTION_JIT)
    def _matmul_nt(A, B, C, triangle, zero):
        """C[i, c] = sum_r A[i, r] B[c, r]   (A [M, R], B [N, R], C [M, N]: C = A B^T).

        Both operands are read along contiguous rows, so the r loop vectorises; a 2x2 block
        of C is accumulated in registers (each loaded value is used twice). ``triangle``
        skips work that the causal mask makes zero:
          COLS_UP_TO_ROW: only c <= i is needed (scores S = Q K^T, dP = dY V^T);
          SUM_UP_TO_ROW:  A[i, r] = 0 for r > i (y = P V).
        Blocks may overshoot the triangle by one row/column; the zeros make that harmless.
        """
        M, R = A.shape
        N = B.shape[0]
        for i0 in range(0, M, 2):
            i1 = min(i0 + 1, M - 1)           # odd M: the last block repeats its row
            c_end = min(i0 + 2, N) if triangle == COLS_UP_TO_ROW else N
            r_end = min(i0 + 2, R) if triangle == SUM_UP_TO_ROW else R
            # Row slices indexed from 0: numba then knows no index is negative and LLVM
            # vectorises the loop (a loop starting at a variable offset was ~8x slower).
            x0s, x1s = A[i0, :r_end], A[i1, :r_end]
            for c0 in range(0, c_end, 2):
                c1 = min(c0 + 1, N - 1)
                y0s, y1s = B[c0, :r_end], B[c1, :r_end]
                a00, a01, a10, a11 = zero, zero, zero, zero
                for r in range(r_end):
                    x0, x1, y0, y1 = x0s[r], x1s[r], y0s[r], y1s[r]
                    a00 += x0 * y0
                    a01 += x0 * y1
                    a10 += x1 * y0
                    a11 += x1 * y1
                C[i0, c0], C[i0, c1], C[i1, c0], C[i1, c1] = a00, a01, a10, a11

    @numba.njit(**ATTENTION_JIT)
    def _load_head(src, b, col, out, transposed):
        """out <- src[b, :, col:col+hd] ([T, hd]), or its transpose ([hd, T])."""
        for t in range(src.shape[1]):
            row = src[b, t, col:col + (out.shape[0] if transposed else out.shape[1])]
            for d in range(row.shape[0]):
                if transposed:
                    out[d, t] = row[d]
                else:
                    out[t, d] = row[d]

    @numba.njit(**ATTENTION_JIT)
    def _shifted_scores_heads(qkv, n_head, scale, att, lo, hi):
        """att[b, h] <- scale * (q_i . k_j - max_j' q_i . k_j') for j <= i, and -inf for
        j > i, for heads bh = b * H + h in [lo, hi): the softmax's exponents."""
        T, D = qkv.shape[1], qkv.shape[2] // 3
        hd = D // n_head
        zero = scale - scale                                     # 0 in the arrays' dtype
        q = numpy.empty((T, hd), dtype=qkv.dtype)                # [T, hd]
        k = numpy.empty((T, hd), dtype=qkv.dtype)                # [T, hd]
        for bh in range(lo, hi):
            b, h = bh // n_head, bh % n_head
            _load_head(qkv, b, h * hd, q, False)
            _load_head(qkv, b, D + h * hd, k, False)
            s = att[b, h]                                        # [T, T]
            _matmul_nt(q, k, s, COLS_UP_TO_ROW, zero)            # s_ij = q_i . k_j, j <= i
            for i in range(T):
                row = s[i]
                m = row[0]
                for j in range(1, i + 1):
                    m = max(m, row[j])
                for j in range(i + 1):
                    row[j] = (row[j] - m) * scale
                for j in range(i + 1, T):
                    row[j] = -numpy.inf

    @numba.njit(**ATTENTION_JIT)
    def _weigh_values_heads(qkv, n_head, drop_mask, use_drop, y, att, lo, hi):
        """att[b, h] holds exp(exponents); normalise each row to P and set y = (P o M) V."""
        T, D = qkv.shape[1], qkv.shape[2] // 3
        hd = D // n_head
        zero = att[0, 0, 0, 0] - att[0, 0, 0, 0]
        vt = numpy.empty((hd, T), dtype=qkv.dtype)               # [hd, T]
        w = numpy.empty((T, T), dtype=qkv.dtype)                 # [T, T], P o M
        for bh in range(lo, hi):
            b, h = bh // n_head, bh % n_head
            _load_head(qkv, b, 2 * D + h * hd, vt, True)
            p = att[b, h]                                        # [T, T]
            for i in range(T):
                row = p[i]
                total = zero
                for j in range(i + 1):
                    total += row[j]
                inv = 1 / total
                for j in range(i + 1):
                    row[j] *= inv
            if use_drop:
                for i in range(T):
                    for j in range(T):
                        w[i, j] = p[i, j] * drop_mask[b, h, i, j]
            _matmul_nt(w if use_drop else p, vt, y[b, :, h * hd:(h + 1) * hd],
                       SUM_UP_TO_ROW, zero)                      # y_i = sum_j P_ij M_ij v_j

    @numba.njit(**ATTENTION_JIT)
    def _backward_heads(dy, qkv, att, n_head, scale, drop_mask, use_drop, dqkv, lo, hi):
        T, D = qkv.shape[1], qkv.shape[2] // 3
        hd = D // n_head
        zero = scale - scale
        q = numpy.empty((T, hd), dtype=qkv.dtype)                # [T, hd]
        k = numpy.empty((T, hd), dtype=qkv.dtype)                # [T, hd]
        v = numpy.empty((T, hd), dtype=qkv.dtype)                # [T, hd]
        g = numpy.empty((T, hd), dtype=qkv.dtype)                # [T, hd], dy of the head
        dq = numpy.empty((T, hd), dtype=qkv.dtype)               # [T, hd]
        dk = numpy.empty((T, hd), dtype=qkv.dtype)               # [T, hd]
        dv = numpy.empty((T, hd), dtype=qkv.dtype)               # [T, hd]
        ds = numpy.empty((T, T), dtype=qkv.dtype)                # dA, then dS, in place
        for bh in range(lo, hi):
            b, h = bh // n_head, bh % n_head
            _load_head(qkv, b, h * hd, q, False)
            _load_head(qkv, b, D + h * hd, k, False)
            _load_head(qkv, b, 2 * D + h * hd, v, False)
            _load_head(dy, b, h * hd, g, False)
            dq[:] = zero
            dk[:] = zero
            dv[:] = zero
            p = att[b, h]                                        # [T, T]
            _matmul_nt(g, v, ds, COLS_UP_TO_ROW, zero)           # dA_ij = dy_i . v_j
            for i in range(T):
                row, prow = ds[i], p[i]
                if use_drop:
                    for j in range(i + 1):
                        row[j] *= drop_mask[b, h, i, j]          # dP = dA o M
                row_dot = zero                                   # D_i = sum_j P_ij dP_ij
                for j in range(i + 1):
                    row_dot += prow[j] * row[j]
                for j in range(i + 1):                           # dS_ij / sqrt(hd)
                    row[j] = prow[j] * (row[j] - row_dot) * scale
            # dq_i += dS_ij k_j, dk_j += dS_ij q_i, dv_j += P_ij M_ij dy_i over the pairs
            # j <= i, two query rows at a time so that each dk_j, dv_j update serves both.
            for i0 in range(0, T, 2):
                i1 = min(i0 + 1, T - 1)              # odd T: the last row pairs with itself
                pair = i1 != i0                      # ... and contributes zeros twice
                q0, q1, g0, g1, dq0, dq1 = q[i0], q[i1], g[i0], g[i1], dq[i0], dq[i1]
                for j in range(i1 + 1):
                    s0 = ds[i0, j] if j <= i0 else zero
                    s1 = ds[i1, j] if pair else zero
                    w0 = p[i0, j] if j <= i0 else zero
                    w1 = p[i1, j] if pair else zero
                    if use_drop:
                        w0 *= drop_mask[b, h, i0, j]
                        w1 *= drop_mask[b, h, i1, j]
                    kj, dkj, dvj = k[j], dk[j], dv[j]
                    for d in range(hd):
                        dq0[d] += s0 * kj[d]
                        dq1[d] += s1 * kj[d]
                        dkj[d] += s0 * q0[d] + s1 * q1[d]
                        dvj[d] += w0 * g0[d] + w1 * g1[d]
            dqkv[b, :, h * hd:(h + 1) * hd] = dq
            dqkv[b, :, D + h * hd:D + (h + 1) * hd] = dk
            dqkv[b, :, 2 * D + h * hd:2 * D + (h + 1) * hd] = dv

    @numba.njit(parallel=True, **ATTENTION_JIT)
    def _shifted_scores_parallel(qkv, n_head, scale, att, n_chunks):
        n = qkv.shape[0] * n_head
        for c in numba.prange(n_chunks):
            _shifted_scores_heads(qkv, n_head, scale, att, c * n // n_chunks,
                                  (c + 1) * n // n_chunks)

    @numba.njit(parallel=True, **ATTENTION_JIT)
    def _weigh_values_parallel(qkv, n_head, drop_mask, use_drop, y, att, n_chunks):
        n = qkv.shape[0] * n_head
        for c in numba.prange(n_chunks):
            _weigh_values_heads(qkv, n_head, drop_mask, use_drop, y, att, c * n // n_chunks,
                                (c + 1) * n // n_chunks)

    @numba.njit(parallel=True, **ATTENTION_JIT)
    def _backward_parallel(dy, qkv, att, n_head, scale, drop_mask, use_drop, dqkv, n_chunks):
        n = qkv.shape[0] * n_head
        for c in numba.prange(n_chunks):
            _backward_heads(dy, qkv, att, n_head, scale, drop_mask, use_drop, dqkv,
                            c * n // n_chunks, (c + 1) * n // n_chunks)


def _drop_args(drop_mask, dtype):
    """The numba kernels take a mask array always; a 1-element dummy when there is none."""
    if drop_mask is None:
        return numpy.ones((1, 1, 1, 1), dtype=dtype), False
    return numpy.ascontiguousarray(drop_mask, dtype=dtype), True


def causal_attention_forward(qkv, n_head: int, drop_mask=None):
    """qkv [B, T, 3D] -> (y [B, T, D], att [B, H, T, T]); drop_mask [B, H, T, T] or None."""
    B, T, D, hd = _check_qkv(qkv, n_head)
    if use_numba(qkv):
        qkv = numpy.ascontiguousarray(qkv)
        y = numpy.empty((B, T, D), dtype=qkv.dtype)
        att = numpy.empty((B, n_head, T, T), dtype=qkv.dtype)
        mask, use_drop = _drop_args(drop_mask, qkv.dtype)
        scale = qkv.dtype.type(1.0 / math.sqrt(hd))
        chunks = parallel_chunks(B * n_head * T * T * hd, B * n_head)
        if chunks == 1:
            _shifted_scores_heads(qkv, n_head, scale, att, 0, B * n_head)
        else:
            _shifted_scores_parallel(qkv, n_head, scale, att, chunks)
        numpy.exp(att, out=att)      # NumPy's exp is SIMD-vectorised; numba's is a scalar call
        if chunks == 1:
            _weigh_values_heads(qkv, n_head, mask, use_drop, y, att, 0, B * n_head)
        else:
            _weigh_values_parallel(qkv, n_head, mask, use_drop, y, att, chunks)
        return y, att
    return causal_attention_forward_reference(qkv, n_head, drop_mask)


def causal_attention_backward(dy, qkv, att, n_head: int, drop_mask=None):
    """dy [B, T, D] -> dqkv [B, T, 3D]."""
    B, T, D, hd = _check_qkv(qkv, n_head)
    if use_numba(dy, qkv, att):
        dqkv = numpy.empty_like(qkv)
        mask, use_drop = _drop_args(drop_mask, qkv.dtype)
        args = (numpy.ascontiguousarray(dy, dtype=qkv.dtype), numpy.ascontiguousarray(qkv),
                att, n_head, qkv.dtype.type(1.0 / math.sqrt(hd)), mask, use_drop, dqkv)
        chunks = parallel_chunks(B * n_head * T * T * hd, B * n_head)
        if chunks == 1:
            _backward_heads(*args, 0, B * n_head)
        else:
            _backward_parallel(*args, chunks)
        return dqkv
    return causal_attention_backward_reference(dy, qkv, att, n_head, drop_mask)
