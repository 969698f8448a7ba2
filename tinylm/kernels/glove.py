"""numba kernel of one GloVe training epoch: AdaGrad on one co-occurrence entry at a time.

The objective and its gradient are in tinylm/functional/glove.py. For entry m = (i, j) with
residual e = w_i . w~_j + b_i + b~_j - log X_ij and weight f = f(X_ij), the kernel adds
1/2 f e^2 to the cost (computed before the update, as glove.c does) and then applies the
update of the reference C code (src/glove.c of stanfordnlp/GloVe), in its order:

    vectors, each component k (G: the running sums of squares, initialised to 1):
        u_i = eta * clip(f e w~_jk),   u_j = eta * clip(f e w_ik)     (both from the old values)
        w_ik  -= u_i / sqrt(G_w[i, k]);    G_w[i, k]  += u_i^2
        w~_jk -= u_j / sqrt(G_w~[j, k]);   G_w~[j, k] += u_j^2
    biases:
        b_i  -= f e / sqrt(G_b[i]);        G_b[i]  += (f e)^2
        b~_j -= f e / sqrt(G_b~[j]);       G_b~[j] += (f e)^2

with clip(g) = min(max(g, -grad_clip), grad_clip), grad_clip = 100. Two quirks of glove.c are
kept on purpose, so that the figures compare with the reference code:

* eta multiplies the gradient *before* it is squared into G, so the vector step is
  eta g / sqrt(1 + eta^2 sum g^2) = g / sqrt(1/eta^2 + sum g^2): eta damps the first steps
  and the step then tends to g / sqrt(sum g^2), plain AdaGrad with rate 1 (GloVe issue #134);
* the bias step has no eta and no clip at all (GloVe pull request #209 adds them; the
  maintainers found the vectors got worse).

Unlike glove.c, an entry whose residual is not finite is not skipped: the cost becomes NaN
and the trainer stops with an error (tinylm's rule: a diverging run shows it).

Parallelism is Hogwild (Recht et al., 2011), as glove.c's pthreads: the shuffled entries are
split into one contiguous slice per thread and every thread updates the shared tables with
no locks. Two threads seldom touch the same row at the same moment, and a lost update costs
little; but the result then depends on the timing, so only one thread is reproducible.

The tables may be float32 or float64 (numba compiles one version per dtype); the cost is
summed in float64. tinylm.embeddings.glove trains in float32: the epoch is a random walk
through 4 tables of V x D, bound by memory traffic, and float32 halves it.
"""

from __future__ import annotations

import math

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT

GRAD_CLIP = 100.0   # glove.c's grad_clip_value: each gradient component is clipped to +-100


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(**JIT)
    def _update_entry(i, j, log_x, f, W, Wt, b, bt, gW, gWt, gb, gbt, eta, clip):
        """One entry's AdaGrad update in glove.c's order; returns its cost 1/2 f e^2."""
        D = W.shape[1]
        e = b[i] + bt[j] - log_x
        for k in range(D):
            e += W[i, k] * Wt[j, k]
        fe = f * e
        for k in range(D):
            u_i = min(max(fe * Wt[j, k], -clip), clip) * eta
            u_j = min(max(fe * W[i, k], -clip), clip) * eta
            W[i, k] -= u_i / math.sqrt(gW[i, k])
            Wt[j, k] -= u_j / math.sqrt(gWt[j, k])
            gW[i, k] += u_i * u_i
            gWt[j, k] += u_j * u_j
        b[i] -= fe / math.sqrt(gb[i])
        bt[j] -= fe / math.sqrt(gbt[j])
        gb[i] += fe * fe
        gbt[j] += fe * fe
        return 0.5 * fe * e

    @numba.njit(**JIT)
    def _epoch_slice(lo, hi, rows, cols, log_x, weight, W, Wt, b, bt, gW, gWt, gb, gbt, eta,
                     clip):
        """Entries lo..hi-1, one after the other; returns their summed cost (float64)."""
        cost = 0.0
        for m in range(lo, hi):
            cost += _update_entry(rows[m], cols[m], log_x[m], weight[m], W, Wt, b, bt,
                                  gW, gWt, gb, gbt, eta, clip)
        return cost

    @numba.njit(parallel=True, **JIT)
    def _epoch_hogwild(rows, cols, log_x, weight, W, Wt, b, bt, gW, gWt, gb, gbt, eta, clip,
                       n_slices):
        # Hogwild: every slice writes the shared tables without locks.
        N = rows.shape[0]
        costs = numpy.zeros(n_slices)
        for s in numba.prange(n_slices):
            costs[s] = _epoch_slice(s * N // n_slices, (s + 1) * N // n_slices, rows, cols,
                                    log_x, weight, W, Wt, b, bt, gW, gWt, gb, gbt, eta, clip)
        return costs.sum()


def glove_epoch(order, rows, cols, log_x, weight, tables, gradsq, eta: float,
                threads: int = 1, grad_clip: float = GRAD_CLIP) -> float:
    """One pass over the entries in the given order, updating the tables in place.

    order [N] int64: entry indices (a permutation, or any sequence: a replay may repeat one);
    rows, cols [M] int32; log_x, weight [M] in the tables' dtype; tables = (W [V, D],
    W_tilde [V, D], b [V], b_tilde [V]) and gradsq the four matching sums of squares, all
    C-contiguous NumPy arrays of one dtype. threads = 1 runs serially (reproducible);
    more splits ``order`` into that many Hogwild slices. Returns sum_m 1/2 f_m e_m^2.
    """
    W = tables[0]
    dtype = W.dtype.type
    arrays = (*tables, *gradsq)
    if any(a.dtype != W.dtype or not a.flags.c_contiguous for a in arrays):
        raise ValueError("glove_epoch: the tables and their sums of squares must be "
                         f"C-contiguous arrays of one dtype ({W.dtype}).")
    # The entries are gathered into visiting order first: the kernel then reads them one
    # after the other, instead of four cache misses per entry through ``order`` (one serial
    # epoch of PTB's 2.9M entries: 1.5-2.5 s through ``order``, 0.75 s gathered).
    order = numpy.asarray(order, dtype=numpy.int64)
    rows, cols = rows[order].astype(numpy.int32), cols[order].astype(numpy.int32)
    log_x, weight = log_x[order].astype(dtype), weight[order].astype(dtype)
    eta, grad_clip = dtype(eta), dtype(grad_clip)
    if threads <= 1 or order.shape[0] < 2 * threads:
        return float(_epoch_slice(0, order.shape[0], rows, cols, log_x, weight, *arrays, eta,
                                  grad_clip))
    return float(_epoch_hogwild(rows, cols, log_x, weight, *arrays, eta, grad_clip, threads))
