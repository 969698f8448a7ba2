"""Word2Vec's objectives: skip-gram and CBOW with negative sampling, and the full softmax.

Sizes: B predictions, D vector width, K noise words per prediction, C context slots
[cbow], V vocabulary [softmax]. Each word w has two vectors: an input vector v_w (a row
of w_in, the word vector kept after training) and an output vector u_w (a row of w_out).

Full softmax (the baseline). Predict a context word o from a centre word c:

    P(o | c) = exp(u_o . v_c) / sum_{w=1}^{V} exp(u_w . v_c)
    L        = -log P(o | c) = logsumexp(U v_c) - u_o . v_c           U = w_out [V, D]

This is cross-entropy on the logits z = U v_c [V], so dL/dz = softmax(z) - onehot(o) and

    dL/dv_c = U^T (p - onehot(o))            dL/dU = (p - onehot(o)) v_c^T

-- every one of the V output vectors moves at every step: O(V D) per pair.

Negative sampling (SGNS). Replace the V-way softmax with K + 1 binary questions: "is o a
real context of c?" (yes) and, for K noise words k_1..k_K drawn from P_n(w) ~ count^0.75,
"is k a real context?" (no), each answered by a logistic regression sigma(u . v_c):

    L = -log sigma(u_o . v_c) - sum_{k=1}^{K} log sigma(-u_k . v_c)

With sigma'(x) = sigma(x)(1 - sigma(x)), d/dx [-log sigma(x)] = sigma(x) - 1 and
d/dx [-log sigma(-x)] = sigma(x), so, writing s_o = sigma(u_o . v_c), s_k = sigma(u_k . v_c):

    dL/dv_c = (s_o - 1) u_o + sum_k s_k u_k
    dL/du_o = (s_o - 1) v_c
    dL/du_k = s_k v_c

-- K + 2 vectors move per pair: O(K D) instead of O(V D). The loss is computed with the
stable log-sigmoid log sigma(x) = -logaddexp(0, -x) (no exp overflow for any x); the batch
loss is the mean over the B pairs.

CBOW. Predict the centre word o from the mean of its context's input vectors:

    h = (1 / C_b) sum_{j : mask_bj} v_j          (C_b = number of real context words)

then the same loss with h in place of v_c, and by the chain rule every context word gets
an equal share, dL/dv_j = dL/dh / C_b (masked slots get nothing). (word2vec.c and gensim
add the whole dL/dh to each context vector instead: tinylm/kernels/word2vec.py follows them
and says why; this module is the true gradient.)

Which vector is "input" in skip-gram: gensim and word2vec.c loop over (centre, context)
pairs and update the *context* word's input vector to predict the centre word; the pairs
are the same set either way. The kernels follow them; these references are indifferent.

The SGD loop that applies these gradients one pair at a time over a corpus is the numba
kernel of tinylm/kernels/word2vec.py (tests replay it pair by pair with these functions).
Chapter 05.
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.gradcheck import GradcheckCase


def log_sigmoid(x):
    """log sigma(x) = -log(1 + e^-x) = -logaddexp(0, -x), finite for every finite x."""
    xp = get_array_module(x)
    return -xp.logaddexp(0, -x)


def sigmoid(x):
    """sigma(x) = exp(log sigma(x)), without the overflow of 1 / (1 + exp(-x))."""
    xp = get_array_module(x)
    return xp.exp(log_sigmoid(x))


def sgns_forward(v_c, u_o, u_neg):
    """v_c [B, D], u_o [B, D], u_neg [B, K, D] -> (mean SGNS loss, cache)."""
    xp = get_array_module(v_c)
    positive = xp.sum(u_o * v_c, axis=-1)                                # [B]    u_o . v_c
    negative = xp.einsum("bkd,bd->bk", u_neg, v_c)                       # [B, K] u_k . v_c
    per_pair = -log_sigmoid(positive) - xp.sum(log_sigmoid(-negative), axis=-1)   # [B]
    return xp.mean(per_pair), (v_c, u_o, u_neg, positive, negative)


def sgns_backward(dloss, cache):
    """dloss: scalar -> (dv_c [B, D], du_o [B, D], du_neg [B, K, D])."""
    v_c, u_o, u_neg, positive, negative = cache
    xp = get_array_module(v_c)
    scale = xp.asarray(dloss, dtype=v_c.dtype) / v_c.shape[0]            # d(mean)/d(pair)
    g_o = (sigmoid(positive) - 1) * scale                                # [B]    dL/d(u_o.v)
    g_k = sigmoid(negative) * scale                                      # [B, K] dL/d(u_k.v)
    dv_c = g_o[:, None] * u_o + xp.einsum("bk,bkd->bd", g_k, u_neg)      # [B, D]
    du_o = g_o[:, None] * v_c                                            # [B, D]
    du_neg = g_k[:, :, None] * v_c[:, None, :]                           # [B, K, D]
    return dv_c, du_o, du_neg


def cbow_forward(context, mask, u_o, u_neg):
    """context [B, C, D] input vectors, mask [B, C] bool (True: a real context word, at
    least one per row), u_o [B, D], u_neg [B, K, D] -> (mean SGNS loss of h, cache)."""
    xp = get_array_module(context)
    weights = mask.astype(context.dtype)                                 # [B, C]
    count = xp.sum(weights, axis=1, keepdims=True)                       # [B, 1]  C_b
    if bool(xp.any(count == 0)):
        raise ValueError("cbow_forward: a row of mask has no context word; every prediction "
                         "needs at least one (drop that row).")
    h = xp.einsum("bc,bcd->bd", weights, context) / count                # [B, D]  mean
    loss, sgns_cache = sgns_forward(h, u_o, u_neg)
    return loss, (weights / count, sgns_cache)


def cbow_backward(dloss, cache):
    """dloss: scalar -> (dcontext [B, C, D], du_o [B, D], du_neg [B, K, D])."""
    share, sgns_cache = cache                                            # [B, C] 1/C_b or 0
    dh, du_o, du_neg = sgns_backward(dloss, sgns_cache)
    dcontext = share[:, :, None] * dh[:, None, :]                        # [B, C, D]
    return dcontext, du_o, du_neg


def softmax_skipgram_forward(v_c, U, targets):
    """v_c [B, D], U [V, D] output vectors, targets [B] int -> (mean -log softmax(U v_c)[o],
    cache). The full-softmax baseline: cross-entropy on the logits z = v_c U^T [B, V]."""
    logits = v_c @ U.T                                                   # [B, V]
    loss, ce_cache = cross_entropy_forward(logits, targets)
    return loss, (v_c, U, ce_cache)


def softmax_skipgram_backward(dloss, cache):
    """dloss: scalar -> (dv_c [B, D], dU [V, D])."""
    v_c, U, ce_cache = cache
    dlogits = cross_entropy_backward(dloss, ce_cache)                    # [B, V] (p - y)/B
    return dlogits @ U, dlogits.T @ v_c


def _sgns_inputs(rng, B=4, K=3, D=5):
    return {"v_c": rng.standard_normal((B, D)), "u_o": rng.standard_normal((B, D)),
            "u_neg": rng.standard_normal((B, K, D))}


def _cbow_inputs(rng, B=4, C=4, K=3, D=5):
    mask = rng.random((B, C)) < 0.6
    mask[:, 0] = True                                                    # >= 1 per row
    return {"context": rng.standard_normal((B, C, D)), "mask": mask,
            "u_o": rng.standard_normal((B, D)), "u_neg": rng.standard_normal((B, K, D))}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    return [
        GradcheckCase("sgns", sgns_forward, sgns_backward, _sgns_inputs),
        GradcheckCase("cbow[masked windows]", cbow_forward, cbow_backward, _cbow_inputs),
        GradcheckCase("softmax_skipgram", softmax_skipgram_forward, softmax_skipgram_backward,
                      lambda rng: {"v_c": rng.standard_normal((4, 5)),
                                   "U": rng.standard_normal((7, 5)),
                                   "targets": rng.integers(0, 7, size=4)}),
    ]
