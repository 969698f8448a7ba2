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
backward pass and for plots; they are small for the context lengths tinylm trains.

Two implementations with one contract:

* ``*_reference``: array-module code (NumPy or CuPy) that splits the heads, forms the
  masked score matrix and applies softmax -- the specification.
* the CPU path: the six matrix products (S = Q K^T and y = P V forward; dP, dV, dQ, dK
  backward) are BLAS products, run by ``numpy.matmul`` over the heads on strided views of
  qkv, y and dqkv (no head is copied out), and the row-wise steps between them -- the
  masked softmax and its Jacobian -- are numba kernels, with SIMD exponentials for float32
  (tinylm/kernels/simd_exp.py). Three things make it fast:
  - the products are cut into blocks of ``QUERY_BLOCK`` query rows: block [lo, hi) needs
    only keys j < hi, so much of the masked upper triangle is never computed;
  - the batch rows are shared among threads of our own, with BLAS single-threaded inside
    each (tinylm/kernels/threads.py): BLAS's own threads gain little on products this small;
  - each thread walks its rows in slabs of ~``SLAB_BYTES`` of attention weights, running a
    slab's whole chain of products and row kernels while its matrices are in cache.
  Chapter 07, section 8, tells how this replaced hand-written numba products.
"""

from __future__ import annotations

import math

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba
from tinylm.kernels import JIT
from tinylm.kernels.simd_exp import EXP_POLY, exp_inplace
from tinylm.kernels.threads import split_over_threads

# Query rows per block of the blocked products: large enough for efficient BLAS calls,
# small enough to skip most of the masked triangle.
QUERY_BLOCK = 64

# Batch rows are processed in slabs of about this many bytes of attention weights (one slab
# of [b, H, T, T] stays in the processor's cache through its chain of steps).
SLAB_BYTES = 1 << 20


def _check_qkv(qkv, n_head: int):
    if qkv.ndim != 3 or qkv.shape[2] % 3 != 0:
        raise ValueError(f"attention: qkv must be [B, T, 3*D], got shape {qkv.shape}.")
    D = qkv.shape[2] // 3
    if D % n_head != 0:
        raise ValueError(f"attention: embedding size {D} is not divisible by n_head={n_head}; "
                         "choose n_head that divides the model width.")
    return qkv.shape[0], qkv.shape[1], D, D // n_head


def _split_heads(qkv, n_head: int):
    """qkv [B, T, 3D] -> q, k, v, each a [B, H, T, hd] view (no copy)."""
    B, T, D, hd = _check_qkv(qkv, n_head)
    heads = qkv.reshape(B, T, 3, n_head, hd).transpose(2, 0, 3, 1, 4)   # [3, B, H, T, hd]
    return heads[0], heads[1], heads[2]


def _head_view(y, n_head: int):
    """y [B, T, H*hd] -> its [B, H, T, hd] view."""
    B, T, D = y.shape
    return y.reshape(B, T, n_head, D // n_head).transpose(0, 2, 1, 3)


# -- reference: the specification ------------------------------------------------------------

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
    dyh = _head_view(dy, n_head)                                       # [B, H, T, hd]
    weights = att if drop_mask is None else att * drop_mask            # [B, H, T, T]
    dv = weights.swapaxes(-1, -2) @ dyh                                # [B, H, T, hd]
    dweights = dyh @ v.swapaxes(-1, -2)                                # [B, H, T, T]
    datt = dweights if drop_mask is None else dweights * drop_mask     # [B, H, T, T]
    dscores = att * (datt - (datt * att).sum(axis=-1, keepdims=True))  # [B, H, T, T]
    dq = (dscores @ k) * scale                                         # [B, H, T, hd]
    dk = (dscores.swapaxes(-1, -2) @ q) * scale                        # [B, H, T, hd]
    dqkv = xp.stack([dq, dk, dv])                                      # [3, B, H, T, hd]
    return dqkv.transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * H * hd)


# -- CPU: blocked BLAS products, numba rows ---------------------------------------------------

def _query_blocks(T: int):
    """[(lo, hi), ...]: the query rows of each block; block [lo, hi) sees keys [0, hi)."""
    return [(lo, min(lo + QUERY_BLOCK, T)) for lo in range(0, T, QUERY_BLOCK)]


def _scores_like_products(a, b, out, T: int):
    """out[..., i, j] = a_i . b_j for the blocks that can have j <= i (S = Q K^T, dA = dY V^T);
    entries right of each block's last key are left unset."""
    for lo, hi in _query_blocks(T):
        numpy.matmul(a[:, :, lo:hi], b[:, :, :hi].swapaxes(-1, -2), out=out[:, :, lo:hi, :hi])


def _rows_times(w, b, out, T: int):
    """out_i = sum_{j <= i} w_ij b_j for lower-triangular w (y = P V, dQ = dS K)."""
    for lo, hi in _query_blocks(T):
        numpy.matmul(w[:, :, lo:hi, :hi], b[:, :, :hi], out=out[:, :, lo:hi])


def _columns_times(w, a, out, T: int):
    """out_j = sum_{i >= j} w_ij a_i for lower-triangular w (dV = W^T dY, dK = dS^T Q)."""
    for lo, hi in _query_blocks(T):
        numpy.matmul(w[:, :, lo:, lo:hi].swapaxes(-1, -2), a[:, :, lo:], out=out[:, :, lo:hi])


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(nogil=True, **JIT)
    def _softmax_rows(att, scale, simd, ex):
        """att [b, H, T, T] holds scores q_i . k_j (j <= i) -> P, with P_ij = 0 above the
        diagonal. ``simd`` (float32) takes exp from exp_inplace."""
        T = att.shape[2]
        bits = numpy.empty(T, dtype=numpy.int32)                 # scratch of exp_inplace
        zero = scale - scale
        for b in range(att.shape[0]):
            for h in range(att.shape[1]):
                s = att[b, h]                                    # [T, T]
                for i in range(T):
                    row = s[i, :i + 1]                           # the keys j <= i
                    m = row[0]
                    for j in range(1, i + 1):
                        m = max(m, row[j])
                    for j in range(i + 1):
                        row[j] = (row[j] - m) * scale
                    if simd:
                        exp_inplace(row, bits[:i + 1], ex)
                    else:
                        for j in range(i + 1):
                            row[j] = numpy.exp(row[j])
                    total = zero
                    for j in range(i + 1):
                        total += row[j]
                    inv = 1 / total
                    for j in range(i + 1):
                        row[j] *= inv
                    s[i, i + 1:] = zero

    @numba.njit(nogil=True, **JIT)
    def _softmax_backward_rows(ds, att, scale, drop_mask, use_drop):
        """ds [b, H, T, T] holds dA_ij = dy_i . v_j (j <= i) -> dS_ij / sqrt(hd), 0 above the
        diagonal: dP = dA o M, dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij')."""
        T = att.shape[2]
        zero = scale - scale
        for b in range(att.shape[0]):
            for h in range(att.shape[1]):
                d, p = ds[b, h], att[b, h]                       # [T, T] each
                for i in range(T):
                    row, prow = d[i, :i + 1], p[i, :i + 1]
                    if use_drop:
                        mrow = drop_mask[b, h, i, :i + 1]
                        for j in range(i + 1):
                            row[j] *= mrow[j]
                    row_dot = zero
                    for j in range(i + 1):
                        row_dot += prow[j] * row[j]
                    for j in range(i + 1):
                        row[j] = prow[j] * (row[j] - row_dot) * scale
                    d[i, i + 1:] = zero


def _work(att) -> int:
    B, H, T, _ = att.shape
    return B * H * T * T


def _in_slabs(rows, att):
    """fn(lo, hi) calling ``rows(slice)`` on slabs of batch rows whose [b, H, T, T] part of
    att is about SLAB_BYTES: each slab's chain of products and row kernels then runs while
    its score matrices are still in cache, instead of streaming all of att through memory
    once per step."""
    B, H, T, _ = att.shape
    step = max(1, SLAB_BYTES // (H * T * T * att.itemsize))

    def fn(lo, hi):
        for b in range(lo, hi, step):
            rows(slice(b, min(b + step, hi)))
    return fn


def causal_attention_forward(qkv, n_head: int, drop_mask=None):
    """qkv [B, T, 3D] -> (y [B, T, D], att [B, H, T, T]); drop_mask [B, H, T, T] or None."""
    B, T, D, hd = _check_qkv(qkv, n_head)
    if not use_numba(qkv):
        return causal_attention_forward_reference(qkv, n_head, drop_mask)
    q, k, v = _split_heads(qkv, n_head)                                 # [B, H, T, hd] views
    att = numpy.empty((B, n_head, T, T), dtype=qkv.dtype)              # [B, H, T, T]
    y = numpy.empty((B, T, D), dtype=qkv.dtype)                        # [B, T, D]
    yh = _head_view(y, n_head)                                         # its [B, H, T, hd] view
    scale = qkv.dtype.type(1.0 / math.sqrt(hd))
    simd = qkv.dtype == numpy.float32

    def rows(r):
        _scores_like_products(q[r], k[r], att[r], T)                   # q_i . k_j
        _softmax_rows(att[r], scale, simd, EXP_POLY)                   # -> P
        w = att[r] if drop_mask is None else att[r] * drop_mask[r]     # P o M
        _rows_times(w, v[r], yh[r], T)                                 # y_i = sum_j w_ij v_j

    split_over_threads(_in_slabs(rows, att), B, _work(att))
    return y, att


def causal_attention_backward(dy, qkv, att, n_head: int, drop_mask=None):
    """dy [B, T, D] -> dqkv [B, T, 3D]."""
    B, T, D, hd = _check_qkv(qkv, n_head)
    if not use_numba(dy, qkv, att):
        return causal_attention_backward_reference(dy, qkv, att, n_head, drop_mask)
    q, k, v = _split_heads(qkv, n_head)                                 # [B, H, T, hd] views
    dyh = _head_view(numpy.asarray(dy, dtype=qkv.dtype), n_head)       # [B, H, T, hd]
    dqkv = numpy.empty_like(qkv)                                       # [B, T, 3D]
    dq, dk, dv = _split_heads(dqkv, n_head)                            # views into dqkv
    ds = numpy.empty_like(att)                                         # [B, H, T, T]
    scale = qkv.dtype.type(1.0 / math.sqrt(hd))
    use_drop = drop_mask is not None
    mask = numpy.ascontiguousarray(drop_mask, dtype=att.dtype) if use_drop else \
        numpy.ones((B, 1, 1, 1), dtype=att.dtype)                      # (a placeholder)

    def rows(r):
        w = att[r] * mask[r] if use_drop else att[r]                   # P o M
        _columns_times(w, dyh[r], dv[r], T)                            # dv_j
        _scores_like_products(dyh[r], v[r], ds[r], T)                  # dA_ij = dy_i . v_j
        _softmax_backward_rows(ds[r], att[r], scale, mask[r], use_drop)  # -> dS / sqrt(hd)
        _rows_times(ds[r], k[r], dq[r], T)                             # dq_i
        _columns_times(ds[r], q[r], dk[r], T)                          # dk_j

    split_over_threads(_in_slabs(rows, att), B, _work(att))
    return dqkv
