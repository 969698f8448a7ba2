"""Exercise attention (chapter 07, sections 2 and 3): causal scaled dot-product attention,
forward and backward.

Shapes: q, k [..., T, d], v [..., T, dv] (leading axes, e.g. batch and heads, are carried
along) -> out [..., T, dv]. Query i may look at keys j <= i only (causal: no peeking at
the future).

Forward:

    S = q k^T / sqrt(d)               [..., T, T]   note the transpose of k, and the scaling
    S_ij = -inf for j > i             the causal mask (exp(-inf) = 0)
    P = softmax(S), row by row        [..., T, T]   each row sums to 1
    out = P v                         [..., T, dv]

The 1/sqrt(d) keeps the scores' variance near 1 (q.k sums d products), so the softmax does
not saturate as d grows.

Backward, given dout [..., T, dv]:

    dv = P^T dout                     [..., T, dv]
    dP = dout v^T                     [..., T, T]
    dS = P * (dP - rowsum(P * dP))    the softmax backward, row by row (masked P are 0)
    dq = dS k / sqrt(d)               [..., T, d]
    dk = dS^T q / sqrt(d)             [..., T, d]

(For arrays with leading axes, "transpose" swaps the last two: ``a.swapaxes(-1, -2)``.)

Check it with:  tinylm check attention this_file.py
"""

import numpy as np


def causal_attention_forward(q, k, v):
    """q, k [..., T, d], v [..., T, dv] -> (out [..., T, dv], cache).

    out = softmax(q k^T / sqrt(d) with the future masked) v. Cache q, k, v, P and the scale.
    """
    T, d = q.shape[-2], q.shape[-1]
    scale = 1.0 / np.sqrt(d)
    scores = (q @ k.swapaxes(-1, -2)) * scale                # [..., T, T]
    future = np.triu(np.ones((T, T), dtype=bool), k=1)       # [T, T], True where j > i
    scores = np.where(future, -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)     # the diagonal is never masked
    e = np.exp(scores)
    p = e / e.sum(axis=-1, keepdims=True)                    # [..., T, T]
    out = p @ v                                              # [..., T, dv]
    return out, (q, k, v, p, scale)


def causal_attention_backward(dout, cache):
    """dout [..., T, dv] -> (dq [..., T, d], dk [..., T, d], dv [..., T, dv])."""
    q, k, v, p, scale = cache
    dv = p.swapaxes(-1, -2) @ dout                           # [..., T, dv]
    dp = dout @ v.swapaxes(-1, -2)                           # [..., T, T]
    ds = p * (dp - (p * dp).sum(axis=-1, keepdims=True))     # [..., T, T]
    dq = (ds @ k) * scale                                    # [..., T, d]
    dk = (ds.swapaxes(-1, -2) @ q) * scale                   # [..., T, d]
    return dq, dk, dv
