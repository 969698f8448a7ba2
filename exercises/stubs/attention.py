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

Copy this file, write the bodies marked TODO (each raises NotImplementedError until
then), and check them with:  tinylm check attention my_attention.py
"""

import numpy as np


def causal_attention_forward(q, k, v):
    """q, k [..., T, d], v [..., T, dv] -> (out [..., T, dv], cache).

    out = softmax(q k^T / sqrt(d) with the future masked) v. Cache q, k, v, P and the scale.
    """
    # TODO: scores, the causal mask (np.triu(..., k=1) marks j > i),
    # the row softmax P, then out = P v.
    raise NotImplementedError("causal_attention_forward")


def causal_attention_backward(dout, cache):
    """dout [..., T, dv] -> (dq [..., T, d], dk [..., T, d], dv [..., T, dv])."""
    # TODO: dv, dP, dS (the softmax backward), then dq and dk.
    raise NotImplementedError("causal_attention_backward")
