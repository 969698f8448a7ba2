"""Exercise linear (chapter 03, section 3): the affine layer y = x W + b.

Shapes: x [N, I], W [I, O], b [O] -> y [N, O]. W is stored input-major, so the code reads
like the maths (PyTorch stores its transpose, [O, I]).

Forward:   y = x W + b            (b is added to every row)

Backward, given dy = dL/dy [N, O]:

    dx = dy W^T        [N, O] @ [O, I] -> [N, I]
    dW = x^T dy        [I, N] @ [N, O] -> [I, O]
    db = sum_n dy_n    [O]               (b was broadcast to all N rows, so its gradient sums them)

A quick check of any such formula: each gradient has the shape of the thing it is the
gradient of, and there is only one way to multiply the available arrays to get that shape.

Copy this file, write the bodies marked TODO (each raises NotImplementedError until
then), and check them with:  tinylm check linear my_linear.py
"""

import numpy as np


def linear_forward(x, W, b):
    """x [N, I], W [I, O], b [O] -> (y [N, O], cache).

    y = x W + b. The cache is whatever linear_backward needs: here x and W.
    """
    # TODO: y = x W + b; return y and the cache (x and W).
    raise NotImplementedError("linear_forward")


def linear_backward(dy, cache):
    """dy [N, O] -> (dx [N, I], dW [I, O], db [O]).

    dx = dy W^T,  dW = x^T dy,  db = the sum of dy over its rows.
    """
    # TODO: dx, dW and db from dy and the cache (the module docstring
    # gives the three products; check each one's shape).
    raise NotImplementedError("linear_backward")
