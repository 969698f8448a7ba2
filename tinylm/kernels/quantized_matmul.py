"""numba kernel of the weight-only quantised product y = x M^T, dequantising inside the loop.

The maths, the int4 packing and the reference are in tinylm/functional/quantize.py, which
calls this for NumPy arrays and few rows (decoding). No float copy of M is ever formed:
for each output r and group g the kernel sums x[n, c] q[r, c] over the group's columns in
x's precision, reading the codes from the int8 matrix (or one unpacked row of the int4
bytes), then adds s[r, g] times that sum:

    y[n, r] = sum_g s[r, g] sum_{c in g} x[n, c] q[r, c]

Threads split the outputs r, so each reads only its own rows of codes and no two write the
same y[n, r]; every y[n, r] sums its groups in order (the same result on any thread count).
"""

from __future__ import annotations

import numpy

from tinylm import kernels
from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT, parallel_chunks

# Multiply-adds per element of work in ``parallel_chunks``: waking the threads costs about
# 90 us on the shared 2-core machine, while one GPT projection of a decoded token
# (128 x 384, 49k multiply-adds) takes 5-10 us serially; only products above ~1M
# multiply-adds (the 200 x 10,000 PTB head: 2M) are worth splitting.
MULTIPLY_ADDS_PER_WORK = 16

if NUMBA_AVAILABLE:
    import numba

    @numba.njit(inline="always", **JIT)          # inlined: no call per output row
    def _row_outputs(x, codes, row_scales, zero, y, r):
        """y[:, r] = sum_g s[r, g] sum_{c in g} x[:, c] codes[c], codes one row of int8."""
        N, C = x.shape
        n_groups = row_scales.shape[0]
        G = C // n_groups
        for n in range(N):
            xn = x[n]
            total = zero
            for g in range(n_groups):
                part = zero
                base = g * G
                for c in range(G):          # zero + code: the int8 becomes x's float type,
                    part += xn[base + c] * (zero + codes[base + c])   # one vector convert
                total += row_scales[g] * part
            y[n, r] = total

    @numba.njit(**JIT)
    def _int8_outputs(x, q, scales, zero, y, lo, hi):
        """y[:, lo:hi] of x [N, C] times int8 codes q [R, C] with scales [R, n_groups]."""
        for r in range(lo, hi):
            _row_outputs(x, q[r], scales[r], zero, y, r)

    @numba.njit(**JIT)
    def _int4_outputs(x, packed, scales, zero, y, lo, hi):
        """y[:, lo:hi] of x [N, C] times packed int4 codes [R, C / 2] with scales
        [R, n_groups]: byte k holds column 2k (low nibble) and 2k + 1 (high), each + 8.

        Each row's codes are unpacked into an int8 buffer first, then summed as in the int8
        kernel. numba computes integer expressions in int64, and converting int64 to float
        has no vector instruction on AVX2: multiplying x by the nibbles directly ran 4-5x
        slower than this two-pass loop, whose unpacking and int8 products both vectorise."""
        C = x.shape[1]
        codes = numpy.empty(C, dtype=numpy.int8)
        for r in range(lo, hi):
            row = packed[r]
            for k in range(C // 2):
                byte = row[k]
                codes[2 * k] = (byte & 15) - 8
                codes[2 * k + 1] = (byte >> 4) - 8
            _row_outputs(x, codes, scales[r], zero, y, r)

    @numba.njit(parallel=True, **JIT)
    def _int8_parallel(x, q, scales, zero, y, n_chunks):
        R = q.shape[0]
        for i in numba.prange(n_chunks):
            _int8_outputs(x, q, scales, zero, y, i * R // n_chunks, (i + 1) * R // n_chunks)

    @numba.njit(parallel=True, **JIT)
    def _int4_parallel(x, packed, scales, zero, y, n_chunks):
        R = packed.shape[0]
        for i in numba.prange(n_chunks):
            _int4_outputs(x, packed, scales, zero, y, i * R // n_chunks, (i + 1) * R // n_chunks)


def quantized_matmul(x, q, scales):
    """x [N, C] float, q int8 [R, C] or packed uint8 [R, C / 2], scales [R, n_groups] in x's
    dtype (NumPy) -> y = x M^T [N, R].

    Called once per projection per decoded token, so it does the least it can in Python: no
    contiguity copies (numba reads any layout; the codes are stored contiguous), and numba's
    thread count is asked only for products big enough to split."""
    N, C = x.shape
    R = q.shape[0]
    y = numpy.empty((N, R), dtype=x.dtype)
    zero = x.dtype.type(0)                 # the accumulators' type: float32 sums float32 x
    work = N * R * C // MULTIPLY_ADDS_PER_WORK
    chunks = 1 if work < kernels.PARALLEL_MIN_WORK else parallel_chunks(work, R)
    int8 = q.dtype == numpy.int8
    if chunks == 1:
        (_int8_outputs if int8 else _int4_outputs)(x, q, scales, zero, y, 0, R)
    else:
        (_int8_parallel if int8 else _int4_parallel)(x, q, scales, zero, y, chunks)
    return y
