"""Multi-head self-attention on CPU, causal (a decoder) and bidirectional with a key-padding
mask (an encoder): BLAS products and numba row kernels.

The maths -- derivation, masks, dropout -- and the array-module reference that specifies
these entry points are in tinylm/functional/attention.py
(``causal_attention_forward_reference``, ``bidirectional_attention_forward_reference``,
``fused_attention_backward_reference``), which calls them when ``use_numba`` says so. The input is the packed qkv [B, T, 3D] of a fused
QKV projection, with the head layout of ``split_qkv`` there; the attention weights
P [B, H, T, T] (zero above the diagonal) are returned for the backward pass and for plots.

The six matrix products (S = Q K^T and y = P V forward; dP, dV, dQ, dK backward) are BLAS
products, run by ``numpy.matmul`` over the heads on strided views of qkv, y and dqkv (no
head is copied out), and the row-wise steps between them -- the masked softmax and its
Jacobian -- are numba kernels, with SIMD exponentials for float32
(tinylm/kernels/simd_exp.py). Three things make it fast:

- the causal products are cut into blocks of ``QUERY_BLOCK`` query rows: block [lo, hi)
  needs only keys j < hi, so much of the masked upper triangle is never computed (the
  bidirectional ones are whole products: every query sees every key);
- the batch rows are shared among threads of our own, with BLAS single-threaded inside
  each (tinylm/kernels/threads.py): BLAS's own threads gain little on products this small;
- each thread walks its rows in slabs of ~``SLAB_BYTES`` of attention weights, running a
  slab's whole chain of products and row kernels while its matrices are in cache.

Chapter 11, section 3.4, tells how this replaced hand-written numba products.
"""

from __future__ import annotations

import math

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT
from tinylm.kernels.simd_exp import EXP_POLY, exp_inplace
from tinylm.kernels.threads import split_over_threads

# Query rows per block of the blocked products: large enough for efficient BLAS calls,
# small enough to skip most of the masked triangle.
QUERY_BLOCK = 64

# Batch rows are processed in slabs of about this many bytes of attention weights (one slab
# of [b, H, T, T] stays in the processor's cache through its chain of steps).
SLAB_BYTES = 1 << 20


def _head_view(x, n_head: int):
    """x [B, T, H*hd] -> its [B, H, T, hd] view (the layout of functional's split_heads)."""
    B, T, D = x.shape
    return x.reshape(B, T, n_head, D // n_head).transpose(0, 2, 1, 3)


def _qkv_views(qkv, n_head: int):
    """qkv [B, T, 3D] -> q, k, v, each a [B, H, T, hd] view (no copy)."""
    heads = _head_view(qkv, 3 * n_head)                                # [B, 3H, T, hd]
    return heads[:, :n_head], heads[:, n_head:2 * n_head], heads[:, 2 * n_head:]


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


    @numba.njit(nogil=True, **JIT)
    def _softmax_rows_keys(att, keep, use_keep, scale, simd, ex):
        """att [b, H, T, T] holds scores q_i . k_j -> P over the keys j with keep[b, j]
        (every key when not ``use_keep``); a row without a kept key is all zeros."""
        T = att.shape[3]
        bits = numpy.empty(T, dtype=numpy.int32)
        zero = scale - scale
        for b in range(att.shape[0]):
            for h in range(att.shape[1]):
                for i in range(att.shape[2]):
                    row = att[b, h, i]                           # [T]
                    m = -numpy.inf
                    for j in range(T):
                        if not use_keep or keep[b, j]:
                            m = max(m, row[j])
                    if m == -numpy.inf:
                        row[:] = zero
                        continue
                    for j in range(T):
                        row[j] = (row[j] - m) * scale
                    if simd:
                        exp_inplace(row, bits, ex)
                    else:
                        for j in range(T):
                            row[j] = numpy.exp(row[j])
                    total = zero
                    for j in range(T):
                        if use_keep and not keep[b, j]:
                            row[j] = zero
                        total += row[j]
                    inv = 1 / total
                    for j in range(T):
                        row[j] *= inv

    @numba.njit(nogil=True, **JIT)
    def _softmax_backward_full_rows(ds, att, scale, drop_mask, use_drop):
        """ds [b, H, T, T] holds dA_ij = dy_i . v_j -> dS_ij / sqrt(hd): dP = dA o M,
        dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij') (0 wherever P is)."""
        T = att.shape[3]
        zero = scale - scale
        for b in range(att.shape[0]):
            for h in range(att.shape[1]):
                for i in range(att.shape[2]):
                    row, prow = ds[b, h, i], att[b, h, i]
                    if use_drop:
                        mrow = drop_mask[b, h, i]
                        for j in range(T):
                            row[j] *= mrow[j]
                    row_dot = zero
                    for j in range(T):
                        row_dot += prow[j] * row[j]
                    for j in range(T):
                        row[j] = prow[j] * (row[j] - row_dot) * scale


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
    """qkv [B, T, 3D] -> (y [B, T, D], att P [B, H, T, T]); drop_mask M [B, H, T, T] or
    None. NumPy arrays only (numba)."""
    B, T, D = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
    q, k, v = _qkv_views(qkv, n_head)                                  # [B, H, T, hd] views
    att = numpy.empty((B, n_head, T, T), dtype=qkv.dtype)              # [B, H, T, T]
    y = numpy.empty((B, T, D), dtype=qkv.dtype)                        # [B, T, D]
    yh = _head_view(y, n_head)                                         # its [B, H, T, hd] view
    scale = qkv.dtype.type(1.0 / math.sqrt(q.shape[3]))
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
    B, T = qkv.shape[:2]
    q, k, v = _qkv_views(qkv, n_head)                                  # [B, H, T, hd] views
    dyh = _head_view(numpy.asarray(dy, dtype=qkv.dtype), n_head)       # [B, H, T, hd]
    dqkv = numpy.empty_like(qkv)                                       # [B, T, 3D]
    dq, dk, dv = _qkv_views(dqkv, n_head)                              # views into dqkv
    ds = numpy.empty_like(att)                                         # [B, H, T, T]
    scale = qkv.dtype.type(1.0 / math.sqrt(q.shape[3]))
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


def bidirectional_attention_forward(qkv, n_head: int, keep=None, drop_mask=None):
    """qkv [B, T, 3D], keep [B, T] bool (True = a real key) or None, drop_mask M
    [B, H, T, T] or None -> (y [B, T, D], att P [B, H, T, T]). NumPy arrays only."""
    B, T, D = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
    q, k, v = _qkv_views(qkv, n_head)                                  # [B, H, T, hd] views
    att = numpy.empty((B, n_head, T, T), dtype=qkv.dtype)              # [B, H, T, T]
    y = numpy.empty((B, T, D), dtype=qkv.dtype)
    yh = _head_view(y, n_head)                                         # [B, H, T, hd] view
    scale = qkv.dtype.type(1.0 / math.sqrt(q.shape[3]))
    simd = qkv.dtype == numpy.float32
    use_keep = keep is not None
    keys = numpy.ascontiguousarray(keep) if use_keep else numpy.ones((B, 1), dtype=bool)

    def rows(r):
        numpy.matmul(q[r], k[r].swapaxes(-1, -2), out=att[r])         # q_i . k_j
        _softmax_rows_keys(att[r], keys[r], use_keep, scale, simd, EXP_POLY)   # -> P
        w = att[r] if drop_mask is None else att[r] * drop_mask[r]     # P o M
        numpy.matmul(w, v[r], out=yh[r])                               # y_i = sum_j w_ij v_j

    split_over_threads(_in_slabs(rows, att), B, _work(att))
    return y, att


def bidirectional_attention_backward(dy, qkv, att, n_head: int, drop_mask=None):
    """dy [B, T, D] -> dqkv [B, T, 3D] (masked keys have P = 0, so need no mask here)."""
    q, k, v = _qkv_views(qkv, n_head)                                  # [B, H, T, hd] views
    dyh = _head_view(numpy.asarray(dy, dtype=qkv.dtype), n_head)       # [B, H, T, hd]
    dqkv = numpy.empty_like(qkv)                                       # [B, T, 3D]
    dq, dk, dv = _qkv_views(dqkv, n_head)                              # views into dqkv
    ds = numpy.empty_like(att)                                         # [B, H, T, T]
    scale = qkv.dtype.type(1.0 / math.sqrt(q.shape[3]))
    use_drop = drop_mask is not None
    mask = numpy.ascontiguousarray(drop_mask, dtype=att.dtype) if use_drop else \
        numpy.ones((qkv.shape[0], 1, 1, 1), dtype=att.dtype)          # (a placeholder)

    def rows(r):
        w = att[r] * mask[r] if use_drop else att[r]                   # P o M
        numpy.matmul(w.swapaxes(-1, -2), dyh[r], out=dv[r])            # dv_j
        numpy.matmul(dyh[r], v[r].swapaxes(-1, -2), out=ds[r])        # dA_ij = dy_i . v_j
        _softmax_backward_full_rows(ds[r], att[r], scale, mask[r], use_drop)  # dS / sqrt(hd)
        numpy.matmul(ds[r], k[r], out=dq[r])                           # dq_i
        numpy.matmul(ds[r].swapaxes(-1, -2), q[r], out=dk[r])          # dk_j

    split_over_threads(_in_slabs(rows, att), qkv.shape[0], _work(att))
    return dqkv
