"""Exercise embedding (chapter 03, section 7): a table lookup, and its scatter-add backward.

Shapes: ids [...] int (any shape, e.g. [B, T]), W [V, D] -> out [..., D].

Forward:   out[n] = W[ids[n]]          (row ids[n] of the table, for every position n)

Backward, given dout [..., D]: each row v of the table receives the sum of the upstream
gradients of every position that looked it up,

    dW[v] = sum_{n : ids[n] = v} dout[n]          (rows never looked up get 0)

The classic bug is ``dW[ids] += dout``: with repeated ids NumPy's fancy-index assignment
keeps only one of the repeats' rows instead of adding them all. ``np.add.at`` (an unbuffered
scatter-add) adds every one.

Check it with:  tinylm check embedding this_file.py
"""

import numpy as np


def embedding_forward(ids, W):
    """ids [...] int, W [V, D] -> (out [..., D], cache): out[n] = W[ids[n]].

    The cache is what the backward needs: the ids and the table's number of rows V.
    """
    out = W[ids]                                         # [..., D]
    return out, (ids, W.shape[0])


def embedding_backward(dout, cache):
    """dout [..., D] -> dW [V, D]: dW[v] = the sum of dout over the positions whose id is v."""
    ids, V = cache
    D = dout.shape[-1]
    dW = np.zeros((V, D), dtype=dout.dtype)              # [V, D]
    np.add.at(dW, ids.reshape(-1), dout.reshape(-1, D))  # repeated ids add up
    return dW
