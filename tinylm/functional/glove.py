"""The GloVe objective (Pennington, Socher and Manning, 2014): a weighted least-squares fit of
dot products to log co-occurrence counts. Chapter 05, section "GloVe".

Symbols (this module):

    V           vocabulary size; X [V, V] the co-occurrence counts, X_ij > 0 for M entries
    M           co-occurrence entries in a batch (rows i_m, columns j_m already gathered)
    D           vector width, ``vector_size``
    w_i         word vector of row i, ``w`` [M, D]; b_i its bias, ``b`` [M]
    w~_j        context vector of column j, ``w_tilde`` [M, D]; b~_j its bias, ``b_tilde`` [M]
    log X_ij    ``log_x`` [M]; f(X_ij): ``weight`` [M]
    e           the residual w_i . w~_j + b_i + b~_j - log X_ij  [M]

The model. If word i and context word j co-occur X_ij times, GloVe asks for

    w_i . w~_j + b_i + b~_j  ~  log X_ij

(ratios of co-occurrence probabilities become differences of dot products, and the biases
absorb log X_i, the row sums). Entries with X_ij = 0 have no log and are skipped, so the sum
runs over the nonzero entries only -- the sparse matrix is the training set.

The weighting. Not every entry is equally trustworthy: rare pairs are noisy, and the most
frequent ones ("of the") would dominate a plain least-squares fit. The paper weights each
squared residual by

    f(x) = (x / x_max)^alpha   if x < x_max,      f(x) = 1   otherwise,

with alpha = 3/4 and x_max = 100: f(0) = 0 (empty entries drop out), f increases, and it
is capped at 1 so that frequent pairs do not take over.

The loss. The paper writes J = sum_ij f(X_ij) e_ij^2. This module uses the convention of the
reference C code (glove.c), which is the paper's loss halved:

    J = 1/2 sum_m f_m e_m^2                                (a sum over the batch, not a mean)

so that the gradient of an entry is f e times the other factor, with no 2 in front (a factor
of 2 in J is a factor of 2 in the learning rate; glove.c prints J / M per epoch, and so does
tinylm.embeddings.glove). The derivatives follow from de/dw_i = w~_j, de/dw~_j = w_i,
de/db_i = de/db~_j = 1 and dJ/de_m = f_m e_m:

    dJ/dw_i   = f e w~_j        dJ/dw~_j = f e w_i
    dJ/db_i   = f e             dJ/db~_j = f e

The backward returns these for the gathered rows ([M, D] and [M]); a word that appears in
several entries of a batch gets several rows, which the caller adds up (a scatter-add, as in
tinylm/functional/embedding.py). log_x and weight are data, not parameters: the backward
returns no gradient for them. Training applies these gradients one entry at a time with
AdaGrad, in the numba kernel of tinylm/kernels/glove.py.
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.gradcheck import GradcheckCase

X_MAX = 100.0
ALPHA = 0.75


def glove_weighting(x, x_max: float = X_MAX, alpha: float = ALPHA):
    """x [M] co-occurrence counts (> 0) -> f(x) [M] in x's dtype.

    f(x) = (x / x_max)^alpha below x_max and 1 from there on, which is min(1, x / x_max)^alpha
    (a power with alpha > 0 keeps the order of its base, and 1^alpha = 1)."""
    if x_max <= 0 or alpha <= 0:
        raise ValueError(f"glove_weighting: x_max={x_max} and alpha={alpha} must both be > 0.")
    xp = get_array_module(x)
    ratio = xp.minimum(x / xp.asarray(x_max, dtype=x.dtype), xp.asarray(1, dtype=x.dtype))
    return ratio ** xp.asarray(alpha, dtype=x.dtype)


def _check_batch(w, w_tilde, b, b_tilde, log_x, weight) -> None:
    M = w.shape[0]
    if w.ndim != 2 or w_tilde.shape != w.shape:
        raise ValueError(f"glove: w {w.shape} and w_tilde {w_tilde.shape} must both be [M, D].")
    for name, a in (("b", b), ("b_tilde", b_tilde), ("log_x", log_x), ("weight", weight)):
        if a.shape != (M,):
            raise ValueError(f"glove: {name} has shape {a.shape}; it must be [{M}], one value "
                             "per entry of the batch (gather the rows first).")


def glove_forward(w, w_tilde, b, b_tilde, log_x, weight):
    """w, w_tilde [M, D], b, b_tilde, log_x, weight [M] -> (J = 1/2 sum f e^2, cache)."""
    _check_batch(w, w_tilde, b, b_tilde, log_x, weight)
    residual = (w * w_tilde).sum(axis=1) + b + b_tilde - log_x            # e [M]
    weighted = weight * residual                                          # f e [M]
    loss = 0.5 * (weighted * residual).sum()
    return loss, (w, w_tilde, weighted)


def glove_backward(dloss, cache):
    """dloss: scalar upstream gradient -> (dw [M, D], dw_tilde [M, D], db [M], db_tilde [M])."""
    w, w_tilde, weighted = cache
    xp = get_array_module(w)
    g = weighted * xp.asarray(dloss, dtype=w.dtype)                       # dJ/de = f e [M]
    return g[:, None] * w_tilde, g[:, None] * w, g, g.copy()


def _forward_of_parameters(w, w_tilde, b, b_tilde, data):
    """glove_forward with the data (log_x, weight) passed as one tuple, so that the gradient
    check nudges only the four parameters (it nudges every floating-point array argument)."""
    return glove_forward(w, w_tilde, b, b_tilde, *data)


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck``: a batch with a repeated row (the backward
    returns per-entry rows; nothing is summed here) and counts on both sides of x_max, so f
    takes both branches."""
    def batch(rng, M=6, D=4):
        x = rng.choice([0.5, 3.0, 40.0, 100.0, 250.0], size=M)
        xp = get_array_module(x)
        return {"w": rng.standard_normal((M, D)), "w_tilde": rng.standard_normal((M, D)),
                "b": rng.standard_normal(M), "b_tilde": rng.standard_normal(M),
                "data": (xp.log(x), glove_weighting(x))}
    return [GradcheckCase("glove", _forward_of_parameters, glove_backward, batch)]
