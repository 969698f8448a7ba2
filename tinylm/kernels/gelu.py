"""numba kernels of GELU, element-wise, exact and tanh-approximated, forward and backward.

The formulas and the reference these kernels must agree with are in
tinylm/functional/activations.py (which calls them for NumPy arrays). What is particular
to the kernels is how they evaluate tanh for float32 data, described below.
"""

from __future__ import annotations

import math

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT, parallel_chunks
from tinylm.kernels.simd_exp import EXP_POLY, exp_inplace
from tinylm.kernels.tanh import RATIONAL_TANH

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
TANH_COEF = 0.044715

# The float32 forward evaluates tanh with the SIMD rational approximation of
# tinylm/kernels/tanh.py (within 3e-7): 0.3 ns per element against 6 ns for the libm exp.
# The backward does not: its 1 - tanh^2 cancels for large |u|, magnifying the 3e-7 a
# hundredfold; it uses e = exp(-2u) (tinylm/kernels/simd_exp.py), s = 1 / (1 + e) =
# (1 + tanh u) / 2 and (1 - tanh^2 u) / 2 = 2 s (1 - s) = 2 e s^2, in which nothing cancels.


def _constants(dtype):
    """The kernels' constants as an array of the data's dtype. A Python float inside a numba
    kernel is a float64, which would promote float32 data to float64 arithmetic -- several
    times slower."""
    return numpy.array([SQRT_2_OVER_PI, 3.0 * SQRT_2_OVER_PI * TANH_COEF, INV_SQRT_2,
                        INV_SQRT_2PI, 0.5, 1.0], dtype=dtype)


if NUMBA_AVAILABLE:
    import numba

    from tinylm.kernels.tanh import rational_tanh

    # The tanh form uses (1 + tanh u) / 2 = sigmoid(2u): one exp is cheaper than a tanh, and
    # with s = sigmoid(2u) the derivative (1 - tanh^2 u) / 2 = 2 s (1 - s) does not cancel
    # for large |u| as 1 - tanh^2 would.
    # c = _constants(dtype): sqrt(2/pi), 3 sqrt(2/pi) 0.044715, 1/sqrt 2, 1/sqrt(2 pi), 1/2, 1.

    @numba.njit(**JIT)
    def _forward_rational_range(x, c, r, out, lo, hi):
        """The tanh GELU of float32 data with the rational tanh (r = RATIONAL_TANH, inlined).
        The loop runs over a slice from index 0: with ``range(lo, hi)`` numba cannot rule out
        negative indices, and their wraparound test per access stops SIMD (3.4x slower)."""
        a, b, half, one = c[0], c[1] / (c[5] + c[5] + c[5]), c[4], c[5]
        x, out = x[lo:hi], out[lo:hi]
        for i in range(x.size):                                 # i >= 0 known: no wraparound
            v = x[i]
            u = v * (a + b * v * v)                             # sqrt(2/pi)(v + 0.044715 v^3)
            out[i] = half * v * (one + rational_tanh(u, r))

    @numba.njit(**JIT)
    def _forward_range(x, tanh_approx, c, out, lo, hi):
        a, b3, inv_sqrt2, half, one = c[0], c[1], c[2], c[4], c[5]
        b = b3 / (one + one + one)                             # sqrt(2/pi) * 0.044715
        two = one + one
        x, out = x[lo:hi], out[lo:hi]
        for i in range(x.size):
            v = x[i]
            if tanh_approx:
                u = v * (a + b * v * v)                        # sqrt(2/pi) (v + 0.044715 v^3)
                out[i] = v / (one + math.exp(-two * u))        # v (1 + tanh u) / 2 = v sigmoid(2u)
            else:
                out[i] = half * v * (one + math.erf(v * inv_sqrt2))

    @numba.njit(**JIT)
    def _backward_range(dout, x, tanh_approx, c, dx, lo, hi):
        a, b3, inv_sqrt2, inv_sqrt2pi, half, one = c[0], c[1], c[2], c[3], c[4], c[5]
        b = b3 / (one + one + one)
        two = one + one
        dout, x, dx = dout[lo:hi], x[lo:hi], dx[lo:hi]
        for i in range(x.size):
            v = x[i]
            if tanh_approx:
                e = math.exp(-two * v * (a + b * v * v))               # exp(-2u)
                s = one / (one + e)                                    # sigmoid(2u)
                du = a + b3 * v * v                                    # du/dv
                dx[i] = dout[i] * (s + two * v * (e * s) * s * du)     # 2 s (1 - s) = 2 e s^2
            else:
                cdf = half * (one + math.erf(v * inv_sqrt2))
                dx[i] = dout[i] * (cdf + v * inv_sqrt2pi * math.exp(-half * v * v))

    @numba.njit(**JIT)
    def _backward_simd_range(dout, x, c, ex, dx, bits):
        """The tanh GELU's backward for float32 data with the SIMD exp (ex = EXP_POLY):
        dx holds -2u, then exp(-2u), then the gradient."""
        a, b3, one = c[0], c[1], c[5]
        b, two = b3 / (one + one + one), one + one
        for i in range(x.size):
            v = x[i]
            dx[i] = -two * v * (a + b * v * v)                               # -2u
        exp_inplace(dx, bits, ex)                                            # exp(-2u)
        for i in range(x.size):
            v = x[i]
            e = dx[i]
            s = one / (one + e)                                              # sigmoid(2u)
            dx[i] = dout[i] * (s + two * v * (e * s) * s * (a + b3 * v * v))

    @numba.njit(parallel=True, **JIT)
    def _forward_parallel(x, tanh_approx, c, out, n_chunks):
        n = x.size
        for k in numba.prange(n_chunks):
            _forward_range(x, tanh_approx, c, out, k * n // n_chunks, (k + 1) * n // n_chunks)

    @numba.njit(parallel=True, **JIT)
    def _backward_parallel(dout, x, tanh_approx, c, dx, n_chunks):
        n = x.size
        for k in numba.prange(n_chunks):
            _backward_range(dout, x, tanh_approx, c, dx, k * n // n_chunks,
                            (k + 1) * n // n_chunks)


def gelu_forward(x, approximate: str):
    """Element-wise GELU of a NumPy array x of any shape."""
    flat = numpy.ascontiguousarray(x).reshape(-1)
    out = numpy.empty_like(flat)
    c = _constants(flat.dtype)
    if approximate == "tanh" and flat.dtype == numpy.float32:
        _forward_rational_range(flat, c, RATIONAL_TANH, out, 0, flat.size)       # SIMD: serial
        return out.reshape(x.shape)
    chunks = parallel_chunks(flat.size, flat.size)
    args = (flat, approximate == "tanh", c)
    if chunks == 1:
        _forward_range(*args, out, 0, flat.size)
    else:
        _forward_parallel(*args, out, chunks)
    return out.reshape(x.shape)


def gelu_backward(dout, x, approximate: str):
    """dout, x [any shape] NumPy arrays -> dx = dout * gelu'(x)."""
    flat = numpy.ascontiguousarray(x).reshape(-1)
    dflat = numpy.ascontiguousarray(dout, dtype=flat.dtype).reshape(-1)
    dx = numpy.empty_like(flat)
    if approximate == "tanh" and flat.dtype == numpy.float32:
        bits = numpy.empty(flat.size, dtype=numpy.int32)
        _backward_simd_range(dflat, flat, _constants(flat.dtype), EXP_POLY, dx, bits)
        return dx.reshape(x.shape)
    chunks = parallel_chunks(flat.size, flat.size)
    args = (dflat, flat, approximate == "tanh", _constants(flat.dtype))
    if chunks == 1:
        _backward_range(*args, dx, 0, flat.size)
    else:
        _backward_parallel(*args, dx, chunks)
    return dx.reshape(x.shape)
