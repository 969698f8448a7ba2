"""numba kernels of GELU, element-wise, exact and tanh-approximated, forward and backward.

The formulas and the reference these kernels must agree with are in
tinylm/functional/activations.py (which calls them for NumPy arrays). What is particular
to the kernels is how they evaluate tanh and erf for float32 data, described below: the
exact GELU of a BERT block's [2048, 512] activations in 4 ms forward and 6 ms backward
instead of 14 and 23 with libm's erf (one core, float32).
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
# The backward does not: its 1 - tanh^2 cancels for large |u|, magnifying the 3e-7 by
# 2|tanh u| / (1 - tanh^2 u) (about 200 at u = 3, growing like e^(2|u|)); it uses e = exp(-2u) (tinylm/kernels/simd_exp.py), s = 1 / (1 + e) =
# (1 + tanh u) / 2 and (1 - tanh^2 u) / 2 = 2 s (1 - s) = 2 e s^2, in which nothing cancels.


# The float32 exact GELU needs Phi(v) = erfc(-v / sqrt 2) / 2, and numba's math.erf is a
# scalar libm call (about 13 ns an element with its surroundings). It uses instead the
# Chebyshev fit of erfc from Numerical Recipes (Press et al., section 6.2), fractional
# error below 1.2e-7 for every z >= 0, whose one transcendental is an exponential (the
# SIMD exp of tinylm/kernels/simd_exp.py):
#
#     t = 1 / (1 + z / 2),   erfc(z) = t exp(-z^2 + P(t)),   erfc(-z) = 2 - erfc(z)
#
# with P the degree-9 polynomial ERFC_POLY (its constant term -1.26551223 first).
ERFC_POLY = numpy.array([-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
                         0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277],
                        dtype=numpy.float32)


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

    @numba.njit(**JIT)
    def _erfc_exponent(z, p):
        """-z^2 + P(t) of the erfc fit (z >= 0), t = 1 / (1 + z / 2); returns (it, t)."""
        one = p[1] - p[1] + p[1] / p[1]
        t = one / (one + z * (one / (one + one)))
        poly = p[9]
        for j in range(8, -1, -1):
            poly = poly * t + p[j]
        return -z * z + poly, t

    @numba.njit(**JIT)
    def _erf_forward_simd(x, c, p, ex, out, t, bits):
        """The exact GELU of float32 data, v Phi(v), with the erfc fit and the SIMD exp:
        out holds the exponent, then its exp, then the GELU; t holds the fit's t."""
        inv_sqrt2, half, one = c[2], c[4], c[5]
        for i in range(x.size):
            out[i], t[i] = _erfc_exponent(abs(x[i]) * inv_sqrt2, p)
        exp_inplace(out, bits, ex)
        for i in range(x.size):
            tail = half * t[i] * out[i]                         # erfc(|z|) / 2 = Phi(-|v|)
            cdf = one - tail if x[i] > 0 else tail              # Phi(v)
            out[i] = x[i] * cdf

    @numba.njit(**JIT)
    def _erf_backward_simd(dout, x, c, p, ex, dx, t, e, bits):
        """The exact GELU's backward for float32: Phi(v) + v phi(v), phi(v) = exp(-v^2/2)
        / sqrt(2 pi); dx and e hold the two exponents, then their exps."""
        inv_sqrt2, inv_sqrt2pi, half, one = c[2], c[3], c[4], c[5]
        for i in range(x.size):
            dx[i], t[i] = _erfc_exponent(abs(x[i]) * inv_sqrt2, p)
            e[i] = -half * x[i] * x[i]
        exp_inplace(dx, bits, ex)
        exp_inplace(e, bits, ex)
        for i in range(x.size):
            tail = half * t[i] * dx[i]
            cdf = one - tail if x[i] > 0 else tail
            dx[i] = dout[i] * (cdf + x[i] * inv_sqrt2pi * e[i])

    @numba.njit(parallel=True, **JIT)
    def _erf_forward_chunks(x, c, p, ex, out, t, bits, n_chunks):
        n = x.size
        for k in numba.prange(n_chunks):
            lo, hi = k * n // n_chunks, (k + 1) * n // n_chunks
            _erf_forward_simd(x[lo:hi], c, p, ex, out[lo:hi], t[lo:hi], bits[lo:hi])

    @numba.njit(parallel=True, **JIT)
    def _erf_backward_chunks(dout, x, c, p, ex, dx, t, e, bits, n_chunks):
        n = x.size
        for k in numba.prange(n_chunks):
            lo, hi = k * n // n_chunks, (k + 1) * n // n_chunks
            _erf_backward_simd(dout[lo:hi], x[lo:hi], c, p, ex, dx[lo:hi], t[lo:hi],
                               e[lo:hi], bits[lo:hi])

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
    if flat.dtype == numpy.float32:                                              # exact, SIMD
        args = (flat, c, ERFC_POLY, EXP_POLY, out, numpy.empty_like(flat),
                numpy.empty(flat.size, dtype=numpy.int32))
        chunks = parallel_chunks(flat.size, flat.size)
        _erf_forward_simd(*args) if chunks == 1 else _erf_forward_chunks(*args, chunks)
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
    if flat.dtype == numpy.float32:                                              # exact, SIMD
        args = (dflat, flat, _constants(flat.dtype), ERFC_POLY, EXP_POLY, dx,
                numpy.empty_like(flat), numpy.empty_like(flat),
                numpy.empty(flat.size, dtype=numpy.int32))
        chunks = parallel_chunks(flat.size, flat.size)
        _erf_backward_simd(*args) if chunks == 1 else _erf_backward_chunks(*args, chunks)
        return dx.reshape(x.shape)
    chunks = parallel_chunks(flat.size, flat.size)
    args = (dflat, flat, approximate == "tanh", _constants(flat.dtype))
    if chunks == 1:
        _backward_range(*args, dx, 0, flat.size)
    else:
        _backward_parallel(*args, dx, chunks)
    return dx.reshape(x.shape)
