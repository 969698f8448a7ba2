"""Weight-only quantised layers for inference: ``QuantizedLinear``, ``QuantizedEmbedding``
(chapter 11; the maths is tinylm/functional/quantize.py, the model-wide swap
tinylm/compress/quantize.py).

Both hold a weight matrix M [R, C] as two frozen Parameters (integers are never trained):

    qweight   int8 [R, C] (8 bits) or uint8 [R, C / 2] (4 bits, two codes a byte)
    scales    [R, C / G] in the float model's dtype

kept as Parameters so that the state dict, checkpoints and device moves carry them as they
carry every other tensor. For ``QuantizedLinear`` M = W^T [out, in] (tinylm's Linear is
y = x W + b with W [in, out]); the bias stays in float. For ``QuantizedEmbedding`` M is the
table [V, D]; ``forward(ids)`` dequantises the rows it reads and ``attend(x)`` = x M^T
[..., V] is the tied output head of a model that shares its embedding with the head (GPT's
logits = x wte^T): one quantised table, two uses, so the tying survives quantisation.

They have no backward: a quantised model is evaluated and sampled, never trained.
``Module.to(dtype=...)`` casts every parameter and would cast the codes too: give a model
its dtype before quantising it.
"""

from __future__ import annotations

from tinylm.functional.embedding import check_ids
from tinylm.functional.quantize import (DEFAULT_INT4_GROUP, QuantizedMatrix, dequantize,
                                        quantize_int4, quantize_int8,
                                        quantized_embedding_forward, quantized_linear_forward)
from tinylm.nn.module import Module
from tinylm.nn.parameter import Parameter


def quantize_matrix(M, bits: int, group_size) -> QuantizedMatrix:
    """M [R, C] -> its int8 (``bits=8``) or packed int4 (``bits=4``) codes and scales;
    ``group_size`` None: one scale per row (int8) or groups of DEFAULT_INT4_GROUP (int4)."""
    if bits == 8:
        return quantize_int8(M, group_size)
    return quantize_int4(M, DEFAULT_INT4_GROUP if group_size is None else group_size)


def _frozen(array) -> Parameter:
    p = Parameter(array)
    p.requires_grad = False
    return p


class _QuantizedWeight(Module):
    """The codes and scales of M [R, C], and the refusal to train them."""

    def __init__(self, M, bits: int, group_size):
        super().__init__()
        qm = quantize_matrix(M, bits, group_size)
        self.bits, self.group_size = bits, qm.group_size          # G (C: per channel)
        self.qweight = _frozen(qm.q)                               # [R, C] or [R, C / 2]
        self.scales = _frozen(qm.scales)                           # [R, C / G]

    def matrix(self) -> QuantizedMatrix:
        return QuantizedMatrix(self.qweight.data, self.scales.data)

    def dequantized(self, dtype=None):
        """M [R, C] as the model computes with it: s q."""
        return dequantize(self.matrix(), dtype)

    def backward(self, dout):
        raise RuntimeError(f"{type(self).__name__} is for inference: a weight-only quantised "
                           "model has no backward. Train (or fine-tune) the float model and "
                           "quantise it again with `tinylm quantize`.")

    def _extra_repr(self) -> str:
        return f"bits={self.bits}, group_size={self.group_size}"


class QuantizedLinear(_QuantizedWeight):
    """y = x W + b with W [in, out] stored as quantised M = W^T [out, in]."""

    def __init__(self, weight, bias, bits: int, group_size=None):
        """``weight`` W [in, out] (a float array), ``bias`` [out] or None."""
        super().__init__(weight.T, bits, group_size)
        self.in_features, self.out_features = weight.shape
        self.bias = None if bias is None else _frozen(bias)

    @classmethod
    def from_linear(cls, linear, bits: int, group_size=None) -> "QuantizedLinear":
        """The quantised twin of a ``Linear`` (its weight and bias)."""
        bias = None if linear.bias is None else linear.bias.data
        return cls(linear.weight.data, bias, bits, group_size)

    def forward(self, x):
        """x [..., in] -> [..., out]."""
        return quantized_linear_forward(x, self.qweight.data, self.scales.data,
                                        None if self.bias is None else self.bias.data)

    def __repr__(self):
        return (f"QuantizedLinear({self.in_features}, {self.out_features}, "
                f"bias={self.bias is not None}, {self._extra_repr()})")


class QuantizedEmbedding(_QuantizedWeight):
    """A table [V, D] stored quantised, one row per token."""

    def __init__(self, table, bits: int, group_size=None):
        """``table`` [V, D] (a float array)."""
        super().__init__(table, bits, group_size)
        self.num_embeddings, self.dim = table.shape

    def forward(self, ids):
        """ids [...] int -> the rows [..., D] in the scales' dtype."""
        check_ids(ids, self.num_embeddings, "quantized embedding", "ids", "token id",
                  f"The table has {self.num_embeddings} rows; encode with the model's own "
                  "tokenizer.")
        return quantized_embedding_forward(ids, self.qweight.data, self.scales.data)

    def attend(self, x):
        """x [..., D] -> x M^T [..., V]: the output head that shares this table."""
        return quantized_linear_forward(x, self.qweight.data, self.scales.data)

    def __repr__(self):
        return f"QuantizedEmbedding({self.num_embeddings}, {self.dim}, {self._extra_repr()})"


def is_quantized(model: Module) -> bool:
    """Whether ``model`` holds any quantised layer."""
    return any(isinstance(m, _QuantizedWeight) for _, m in model.named_modules())


def refuse_backward_if_quantized(model: Module) -> None:
    """A model's backward calls this first: a quantised model cannot be trained."""
    if is_quantized(model):
        raise RuntimeError(f"{type(model).__name__} is weight-only quantised (tinylm quantize) "
                           "and has no backward; train the float model and quantise it again.")


def weight_bytes(model: Module) -> int:
    """Bytes of every parameter's values (codes, scales and float tensors alike)."""
    return sum(int(p.data.nbytes) for p in model.parameters())

