"""Weight-only post-training quantisation（训练后量化）: int8 per channel, int4 in groups.

A trained weight matrix M [R, C] -- a row per output channel, a column per input it
combines -- is stored as small integers q [R, C] and one float scale per row and group of G
consecutive columns (G divides C; n_groups = C / G):

    M[r, c] ~= s[r, g] q[r, c]                  g = c // G,   s [R, C / G]

Which matrix is M. tinylm's Linear computes y = x W + b with W [I, O] (input-major), so
M = W^T [O, I]: a row per output channel, PyTorch's [out, in] layout. An embedding table
[V, D] is M itself: a row per token, so a lookup dequantises the rows it reads. GPT's tied
head, logits = x wte^T, is y = x M^T with M = wte: one quantised table serves the lookup and
the head, and the tying survives quantisation (tinylm/nn/quantized.py, QuantizedEmbedding).

Symmetric scales, b bits, Q = 2^(b-1) - 1 (127 for int8, 7 for int4):

    s[r, g] = max_{c in g} |M[r, c]| / Q                           (1 where the group is all 0)
    q[r, c] = clip(round(M[r, c] / s[r, g]), -Q, Q)                 (round half to even)

int8 is per channel: G = C, one scale per row. int4 is group-wise: G = 32 or 64 typically,
because 15 levels across a whole row would make one outlier coarsen the row's every weight.

The error bound. By the choice of s, |M / s| <= Q, so the clip never changes a rounded value
(it only guards against M / s landing an ulp above Q) and q is the integer nearest M / s:

    |M[r, c] / s - q[r, c]| <= 1/2   =>   |M[r, c] - s[r, g] q[r, c]| <= s[r, g] / 2
                                                                   = max_{c in g} |M| / (2 Q)

at most 0.39 % (int8) or 7.1 % (int4) of the largest magnitude in the weight's group (plus
the float rounding of s q). Smaller groups have smaller maxima: a tighter bound, more scales.

Why [-7, 7] for int4 and not [-8, 7]. The symmetric range keeps 0 -> 0 and -w -> -q, so
one scale serves both signs and the bound above holds for every weight. Using -8 as well
needs s = max|M| / 8 for the negative side, and then the largest positive weight, at
+8 s, clips to 7 s: an error of s, twice the bound. The price is one of 16 codes unused
(log2 15 = 3.9 bits of information in 4). [-127, 127] for int8 likewise (PyTorch's
symmetric per-channel observer with quant_min=-127).

Packing int4: two codes per byte, in offset binary (u = q + 8 in [1, 15]), column 2k in the
low nibble and column 2k + 1 in the high one (G even, so no byte straddles two groups):

    byte[r, k] = u[r, 2k] | (u[r, 2k + 1] << 4)
    q[r, 2k] = (byte & 15) - 8,    q[r, 2k + 1] = (byte >> 4) - 8

Size per weight (scales in float32): int8 1 + 4 / C bytes, int4 1/2 + 4 / G bytes (G = 32:
5 bits, G = 64: 4.5 bits), against 4 bytes in float32.

The product. y = x M^T, and the scale factors out of each group's sum:

    y[n, r] = sum_c x[n, c] s[r, c // G] q[r, c] = sum_g s[r, g] (sum_{c in g} x[n, c] q[r, c])

so the inner loop multiplies floats by small integers and the scale is applied once per
group, C / G times per output instead of C. The numba kernel (tinylm/kernels/
quantized_matmul.py) computes exactly this, reading q as int8 or packed bytes -- a quarter or
an eighth of the float32 weight's memory traffic, which is what decoding a token at a time
waits for. The reference below dequantises M and calls BLAS, y = x dequantize(M)^T: the same
sum in another order, and the faster one for many rows (a prompt, evaluation), where one
dequantisation per call is shared by all N rows and BLAS's blocked product wins. So the
kernel runs for at most KERNEL_MAX_ROWS rows.

Inference only: there is no backward. Post-training quantisation rounds a trained model;
training through the rounding (quantisation-aware training, QLoRA) is not in tinylm.

Chapter 11, section "Quantisation".
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.backend import get_array_module, use_numba
from tinylm.kernels import quantized_matmul as quantized_kernel

BITS = (8, 4)
# The largest code Q of each width: q in [-Q, Q].
LARGEST_CODE = {8: 127, 4: 7}
INT4_OFFSET = 8                 # u = q + 8 in [1, 15]: one nibble
DEFAULT_INT4_GROUP = 32         # GGML's Q4_0 block; GPTQ and AWQ often use 128
# Up to this many rows of x the numba kernel runs (decoding); above, dequantise + BLAS.
KERNEL_MAX_ROWS = 16


class QuantizedMatrix(NamedTuple):
    """M [R, C] as codes and scales: q int8 [R, C] (8 bits) or uint8 [R, C / 2] (4 bits,
    packed), scales [R, C / G] float."""
    q: object
    scales: object

    @property
    def bits(self) -> int:
        return 8 if self.q.dtype.kind == "i" else 4

    @property
    def shape(self) -> tuple:
        R, width = self.q.shape
        return R, width * (2 if self.bits == 4 else 1)

    @property
    def group_size(self) -> int:
        return self.shape[1] // self.scales.shape[1]


def valid_group_sizes(bits: int, columns: int) -> list:
    """The group sizes G that split ``columns`` into whole groups (even ones for int4, so
    that no byte holds two groups)."""
    step = 2 if bits == 4 else 1
    return [g for g in range(step, columns + 1, step) if columns % g == 0]


def check_quantization(bits, group_size, columns: int, owner: str) -> None:
    """Raise ValueError naming ``owner`` unless ``bits`` is 8 or 4 and ``group_size`` (None:
    the whole row) splits ``columns`` into whole groups."""
    if bits not in BITS:
        raise ValueError(f"{owner}: bits={bits!r} is not supported; choose 8 (int8, per "
                         "channel) or 4 (int4, in groups).")
    if group_size is not None and group_size not in valid_group_sizes(bits, columns):
        raise ValueError(f"{owner}: group size {group_size!r} does not split its {columns} "
                         f"inputs into whole {'even ' if bits == 4 else ''}groups; valid sizes: "
                         f"{valid_group_sizes(bits, columns)}.")


def pack_int4(q):
    """q [R, C] codes in [-7, 7] (C even) -> bytes [R, C / 2] uint8, two codes each."""
    xp = get_array_module(q)
    u = (q + INT4_OFFSET).astype(xp.uint8)                            # [R, C] in [1, 15]
    return xp.ascontiguousarray(u[:, 0::2] | (u[:, 1::2] << 4))       # [R, C / 2]


def unpack_int4(packed):
    """bytes [R, K] uint8 -> q [R, 2K] int8 (the inverse of pack_int4)."""
    xp = get_array_module(packed)
    q = xp.empty((packed.shape[0], 2 * packed.shape[1]), dtype=xp.int8)
    q[:, 0::2] = (packed & 15).astype(xp.int8) - INT4_OFFSET
    q[:, 1::2] = (packed >> 4).astype(xp.int8) - INT4_OFFSET
    return q


def _quantize(M, bits: int, group_size):
    """M [R, C] -> (q [R, C] int8 codes, scales [R, C / G] in M's dtype)."""
    xp = get_array_module(M)
    R, C = M.shape
    G = C if group_size is None else group_size
    check_quantization(bits, G, C, "quantize")
    Q = LARGEST_CODE[bits]
    groups = M.reshape(R, C // G, G)                                  # [R, n_groups, G]
    scales = xp.abs(groups).max(axis=2) / M.dtype.type(Q)             # [R, n_groups]
    scales = xp.where(scales > 0, scales, M.dtype.type(1))            # an all-zero group
    q = xp.clip(xp.rint(groups / scales[:, :, None]), -Q, Q)          # [R, n_groups, G]
    # Row-major whatever M's layout (a Linear's M = W^T is a transposed view): the kernel
    # reads each row of codes contiguously.
    return xp.ascontiguousarray(q.astype(xp.int8).reshape(R, C)), xp.ascontiguousarray(scales)


def quantize_int8(M, group_size=None) -> QuantizedMatrix:
    """M [R, C] -> int8 codes and scales; per channel (one scale a row) by default."""
    return QuantizedMatrix(*_quantize(M, 8, group_size))


def quantize_int4(M, group_size: int = DEFAULT_INT4_GROUP) -> QuantizedMatrix:
    """M [R, C] -> packed int4 codes [R, C / 2] and scales [R, C / G]."""
    q, scales = _quantize(M, 4, group_size)
    return QuantizedMatrix(pack_int4(q), scales)


def codes(qm: QuantizedMatrix):
    """The int8 codes q [R, C] of either width."""
    return qm.q if qm.bits == 8 else unpack_int4(qm.q)


def dequantize(qm: QuantizedMatrix, dtype=None):
    """-> s q [R, C] in ``dtype`` (default: the scales' dtype)."""
    scales = qm.scales if dtype is None else qm.scales.astype(dtype)
    R, C = qm.shape
    q = codes(qm).astype(scales.dtype).reshape(R, scales.shape[1], -1)    # [R, n_groups, G]
    return (q * scales[:, :, None]).reshape(R, C)


def quantized_linear_forward(x, qweight, scales, bias=None):
    """x [..., C], M = (qweight, scales) [R, C], bias [R] or None -> y = x M^T + b [..., R]
    in x's dtype (no cache: inference only)."""
    qm = QuantizedMatrix(qweight, scales)
    R, C = qm.shape
    if x.shape[-1] != C:
        raise ValueError(f"quantized linear: input has {x.shape[-1]} features but the weight "
                         f"expects {C} (quantized weight [{R}, {C}]).")
    x2 = x.reshape(-1, C)                                             # [N, C]
    if use_numba(x2, qweight) and x2.shape[0] <= KERNEL_MAX_ROWS:
        y = quantized_kernel.quantized_matmul(x2, qweight, scales.astype(x.dtype, copy=False))
    else:
        y = x2 @ dequantize(qm, x.dtype).T                            # [N, R]
    if bias is not None:
        y += bias
    return y.reshape(*x.shape[:-1], R)


def quantized_embedding_forward(ids, qweight, scales):
    """ids [...] int, table (qweight, scales) [V, D] -> the dequantised rows [..., D]
    (ids are checked by the caller, tinylm/nn/quantized.py)."""
    xp = get_array_module(qweight)
    rows = QuantizedMatrix(xp.take(qweight, ids.reshape(-1), axis=0),
                           xp.take(scales, ids.reshape(-1), axis=0))
    return dequantize(rows).reshape(*ids.shape, -1)
