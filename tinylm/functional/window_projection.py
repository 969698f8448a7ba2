"""The first layer of a Bengio MLP language model: embed a window of n tokens, concatenate,
project. Written as the maths says, it is

    pre[b, t] = [C(x[b,t]); C(x[b,t+1]); ...; C(x[b,t+n-1])] W + bias     (W: [n d, H])

Splitting W into n blocks W_k [d, H] (one per window position) turns the concatenation into
a sum, and each term C(x) W_k depends on the token id alone:

    pre[b, t] = sum_k C(x[b,t+k]) W_k + bias = sum_k P_k[x[b,t+k]] + bias,   P_k = C W_k  [R, H]

So the n projected tables P_k are computed once per call (n R d H multiply-adds) and every
position only gathers and adds n rows -- instead of a [B T, n d] x [n d, H] matmul per step.
For a character vocabulary (R = 66) and B T = 2048 positions that is ~30x less work; the
result is identical (tests/test_mlp_lm.py checks it against the concatenation in PyTorch).

Backward, with dpre [B, T, H]:

    dP_k[r]   = sum_{(b,t): x[b,t+k] = r} dpre[b, t]        [R, H]  (scatter-add)
    dW_k      = C^T dP_k                                       [d, H]
    dC        = sum_k dP_k W_k^T                               [R, d]
    dbias     = sum_{b,t} dpre[b, t]                           [H]

The window sum out[b, t] = sum_k P_k[x[b,t+k]] and its scatter-add (an id seen twice
receives two rows) have references below in array-module code; on NumPy arrays the numba
kernels of tinylm/kernels/window_sum.py compute them.

Chapter 03, section "A neural language model".
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.backend import get_array_module, use_numba
from tinylm.functional.embedding import checked_on_host, scatter_add_rows
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import window_sum as window_sum_kernel


def window_sum_reference(tables, ids, T: int):
    """tables [n, R, H], ids [B, T+n-1] int -> out [B, T, H]: sum_k tables[k, ids[:, t+k]]."""
    xp = get_array_module(tables)
    out = xp.take(tables[0], ids[:, 0:T], axis=0)                   # [B, T, H]
    for k in range(1, tables.shape[0]):
        out += xp.take(tables[k], ids[:, k:k + T], axis=0)
    return out


def window_sum_backward_reference(dout, ids, n: int, R: int):
    """dout [B, T, H], ids [B, T+n-1] -> dtables [n, R, H] (a scatter-add per offset k)."""
    xp = get_array_module(dout)
    B, T, H = dout.shape
    dtables = xp.zeros((n, R, H), dtype=dout.dtype)
    flat = dout.reshape(B * T, H)
    for k in range(n):
        xp.add.at(dtables[k], ids[:, k:k + T].reshape(-1), flat)
    return dtables


def window_sum(tables, ids, T: int):
    """tables [n, R, H], ids [B, T+n-1] int -> out [B, T, H] (numba on NumPy arrays)."""
    if use_numba(tables, ids):
        return window_sum_kernel.window_sum(tables, ids, T)
    return window_sum_reference(tables, ids, T)


def window_scatter_add(dout, ids, n: int, R: int):
    """The window sum's backward: dout [B, T, H], ids [B, T+n-1] -> dtables [n, R, H]
    (numba on NumPy arrays)."""
    if use_numba(dout, ids):
        return window_sum_kernel.window_sum_backward(dout, ids, n, R)
    return window_sum_backward_reference(dout, ids, n, R)


def window_projection_forward(ids, C, W, bias):
    """ids [B, T+n-1] int, C [R, d], W [n d, H], bias [H] -> (pre [B, T, H], cache).

    Projects the R table rows once when there are more positions than rows (training
    batches); with few positions (decoding one token at a time) it embeds and concatenates,
    which is then the cheaper of the two. Both give the same numbers.
    """
    R, d = C.shape
    n, rem = divmod(W.shape[0], d)
    if rem or n < 1:
        raise ValueError(f"window_projection: W has {W.shape[0]} rows, not a multiple of the "
                         f"embedding width {d}; W must be [context * {d}, hidden].")
    B, T = ids.shape[0], ids.shape[1] - n + 1
    if T < 1:
        raise ValueError(f"window_projection: {ids.shape[1]} ids cannot hold a window of {n}.")
    if ids.size and not checked_on_host(ids) and bool((ids.min() < 0) | (ids.max() >= R)):
        raise ValueError(f"window_projection: token ids must lie in [0, {R}); got "
                         f"[{int(ids.min())}, {int(ids.max())}].")
    project = _project_tables if R < B * T else _project_concatenated
    pre, cache = project(ids, C, W.reshape(n, d, W.shape[1]), T)    # [B, T, H]
    pre += bias
    return pre, cache


class TablesCache(NamedTuple):
    """The projected-tables path: the ids [B, T+n-1], C [R, d] and W as blocks Wk [n, d, H]."""
    ids: object
    C: object
    Wk: object


class ConcatenatedCache(NamedTuple):
    """The concatenation path: as TablesCache, plus the concatenated windows ctx [B, T, n d]."""
    ids: object
    C: object
    Wk: object
    ctx: object


def _project_tables(ids, C, Wk, T):
    xp = get_array_module(C)
    tables = xp.tensordot(C, Wk, axes=([1], [1])).transpose(1, 0, 2)  # [n, R, H]: P_k = C W_k
    return window_sum(tables, ids, T), TablesCache(ids, C, Wk)        # [B, T, H]


def _project_concatenated(ids, C, Wk, T):
    xp = get_array_module(C)
    n, d, H = Wk.shape
    emb = xp.take(C, ids, axis=0)                                     # [B, T+n-1, d]
    ctx = xp.concatenate([emb[:, k:k + T] for k in range(n)], axis=-1)  # [B, T, n d]
    pre = ctx.reshape(-1, n * d) @ Wk.reshape(n * d, H)               # [B T, H]
    return pre.reshape(ids.shape[0], T, H), ConcatenatedCache(ids, C, Wk, ctx)


def window_projection_backward(dpre, cache):
    """dpre [B, T, H] -> (dC [R, d], dW [n d, H], dbias [H])."""
    dbias = dpre.reshape(-1, dpre.shape[-1]).sum(axis=0)             # [H]
    if isinstance(cache, TablesCache):
        return (*_tables_gradients(dpre, cache), dbias)
    return (*_concatenated_gradients(dpre, cache), dbias)


def _tables_gradients(dpre, cache: TablesCache):
    xp = get_array_module(dpre)
    n, d, H = cache.Wk.shape
    dtables = window_scatter_add(dpre, cache.ids, n, cache.C.shape[0])    # [n, R, H]
    dW = xp.tensordot(dtables, cache.C, axes=([1], [0]))             # [n, H, d]: C^T dP_k
    dW = dW.transpose(0, 2, 1).reshape(n * d, H)                     # [n d, H]
    dC = xp.tensordot(dtables, cache.Wk, axes=([0, 2], [0, 2]))      # [R, d]: sum_k dP_k W_k^T
    return dC, dW


def _concatenated_gradients(dpre, cache: ConcatenatedCache):
    xp = get_array_module(dpre)
    n, d, H = cache.Wk.shape
    B, T = dpre.shape[:2]
    dpre2 = dpre.reshape(-1, H)                                      # [B T, H]
    dW = cache.ctx.reshape(-1, n * d).T @ dpre2                      # [n d, H]
    dctx = (dpre2 @ cache.Wk.reshape(n * d, H).T).reshape(B, T, n, d)    # [B, T, n, d]
    demb = xp.zeros((B, T + n - 1, d), dtype=dpre.dtype)             # [B, T+n-1, d]
    for k in range(n):                           # undo the n shifted views of the embeddings
        demb[:, k:k + T] += dctx[:, :, k]
    dC = scatter_add_rows(cache.ids.reshape(-1), demb.reshape(-1, d), cache.C.shape[0])  # [R, d]
    return dC, dW


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py): one per
    path."""
    def inputs(rng, rows, batch):
        return {"ids": rng.integers(0, rows, size=(batch, 6)),      # n = 3, T = 4
                "C": rng.standard_normal((rows, 3)), "W": rng.standard_normal((9, 5)),
                "bias": rng.standard_normal(5)}
    return [
        GradcheckCase("window_projection[tables]", window_projection_forward,
                      window_projection_backward, lambda rng: inputs(rng, 4, 2)),
        GradcheckCase("window_projection[concatenated]", window_projection_forward,
                      window_projection_backward, lambda rng: inputs(rng, 12, 2)),
    ]
