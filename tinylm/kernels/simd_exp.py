"""exp over a float32 array in SIMD instructions, for the numba kernels.

numba has no vectorised exp of its own (without Intel's SVML each ``math.exp`` is a libm
call, about 3 ns), so kernels whose time is exponentials use this one for float32 data:

    exp(z) = 2^k exp(r),   k = round(z / ln 2),   r = z - k ln 2,   |r| <= ln(2) / 2

with ln 2 split in two parts so that z - k ln 2 is exact, exp(r) by its Taylor polynomial
to r^6 (error below 2e-7 relative, float32 rounding), and 2^k built from its float32 bit
pattern (k + 127) << 23. Every step is multiplies, adds, a floor and integer shifts, which
LLVM turns into SIMD code: about 0.4 ns per element. z is clamped to [-87, 87], where
float32's exp neither overflows nor becomes subnormal.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT

# log2 e, ln 2 (high and low parts), the Taylor coefficients 1/2 .. 1/720, the clamp.
EXP_POLY = numpy.array([1.4426950408889634, 0.693359375, -2.12194440e-4,
                        1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 87.0], dtype=numpy.float32)

if NUMBA_AVAILABLE:
    import numba

    @numba.njit(**JIT)
    def exp_inplace(z, bits, c):
        """z [n] float32 <- exp(z); bits [n] int32 is scratch; c = EXP_POLY."""
        log2e, ln2_hi, ln2_lo, half = c[0], c[1], c[2], c[3]
        e3, e4, e5, e6, z_max = c[4], c[5], c[6], c[7], c[8]
        one = half + half
        for i in range(z.size):
            x = min(max(z[i], -z_max), z_max)
            k = numpy.floor(x * log2e + half)                                 # round(x / ln 2)
            r = x - k * ln2_hi - k * ln2_lo
            z[i] = one + r * (one + r * (half + r * (e3 + r * (e4 + r * (e5 + r * e6)))))
            bits[i] = (numpy.int32(k) + numpy.int32(127)) << numpy.int32(23)  # 2^k as float32
        two_k = bits.view(numpy.float32)
        for i in range(z.size):
            z[i] *= two_k[i]
