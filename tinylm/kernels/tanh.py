"""numba kernel of tanh for float32 data: a SIMD rational approximation.

numba has no SIMD tanh (without Intel's SVML every ``math.tanh`` is a libm call) and
NumPy's float32 tanh is not vectorised on AVX2 either (~3-5 ns per element). For float32
data this kernel evaluates

    tanh(u) ~ u P(u^2) / Q(u^2)      on [-7.9053, 7.9053],  +-1 beyond (where float32 tanh is +-1)

with the minimax rational approximation Eigen uses for float32, within 3e-7 of the true
value: multiplies, adds and one divide, which LLVM turns into SIMD code (~0.3 ns per
element). The GELU kernel (tinylm/kernels/gelu.py) uses the same coefficients. The
activation and its derivative are in tinylm/functional/activations.py, which calls this
kernel for float32 NumPy arrays; float64 data, and arrays on the GPU, take the array
module's tanh there.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT

# [clamp, P: u^0 .. u^12 (even powers of the numerator / u), Q: u^0 .. u^6]
RATIONAL_TANH = numpy.array([
    7.90531110763549805,
    4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
    5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13,
    -2.76076847742355e-16,
    4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04,
    1.19825839466702e-06], dtype=numpy.float32)


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(**JIT)
    def rational_tanh(u, r):
        """tanh(u) for a float32 scalar u, r = RATIONAL_TANH; inlined into SIMD loops."""
        clamp, p0, p2, p4, p6, p8, p10, p12 = r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]
        q0, q2, q4, q6 = r[8], r[9], r[10], r[11]
        u = min(max(u, -clamp), clamp)
        u2 = u * u
        p = u * (p0 + u2 * (p2 + u2 * (p4 + u2 * (p6 + u2 * (p8 + u2 * (p10 + u2 * p12))))))
        return p / (q0 + u2 * (q2 + u2 * (q4 + u2 * q6)))

    @numba.njit(**JIT)
    def _tanh_rational(x, r, out):
        for i in range(x.size):                     # flat arrays indexed from 0: SIMD
            out[i] = rational_tanh(x[i], r)


def tanh(x):
    """Element-wise tanh of a float32 NumPy array of any shape, within 3e-7."""
    flat = numpy.ascontiguousarray(x).reshape(-1)
    out = numpy.empty_like(flat)
    _tanh_rational(flat, RATIONAL_TANH, out)
    return out.reshape(x.shape)
