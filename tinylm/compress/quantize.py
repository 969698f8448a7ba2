"""Post-training weight-only quantisation of a whole language model (chapter 11; the maths
is tinylm/functional/quantize.py, the layers tinylm/nn/quantized.py).

    report = quantize_model(model, bits=4, group_size=32)     # in place
    print(report)        # the layers, and the weights' bytes before and after

What is quantised, per family:

    GPT               every Linear of the blocks (attn.c_attn, attn.c_proj, mlp.c_fc,
                      mlp.c_proj) and the token table wte, which is also the tied output head:
                      it becomes one QuantizedEmbedding whose rows feed the lookup and whose
                      x wte^T gives the logits, so the head stays tied to the embedding
                      (quantising them apart would store the table twice and let the two
                      copies disagree).
    recurrent LMs     the embedding and the output weight w_out (or, tied, the one table);
                      the recurrent weights W_x, W_h stay float32: they are 14 % of the PTB
                      "small" model, and the cell's time loop multiplies by them through its
                      own kernels (tinylm/functional/lstm.py), which have no quantised path.

Biases, layer norms and GPT's position table wpe stay in float: they are small, and a bias
error is not averaged away over a dot product. Every setting is checked before the model
changes: bits other than 8 and 4, a group size that does not split every quantised matrix's
input width (the error lists the sizes that do), a model family without a quantised path, or
a model that is already quantised raise ValueError and leave it as it was.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from tinylm.functional.quantize import BITS, DEFAULT_INT4_GROUP, valid_group_sizes
from tinylm.models.gpt import GPT
from tinylm.models.rnn_lm import RecurrentLM
from tinylm.nn.embedding import Embedding
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module
from tinylm.nn.quantized import QuantizedEmbedding, QuantizedLinear, is_quantized, weight_bytes


@dataclass(frozen=True)
class QuantizationReport:
    """What ``quantize_model`` did, and the bytes of the model's weights before and after."""

    bits: int
    group_size: int | None      # None: one scale per output channel (int8)
    layers: tuple               # dotted names of the quantised matrices
    float_bytes: int            # every parameter's bytes before
    quantized_bytes: int        # after: codes, scales and the tensors kept in float

    @property
    def ratio(self) -> float:
        return self.float_bytes / self.quantized_bytes

    def __str__(self) -> str:
        grouping = "per channel" if self.group_size is None else f"groups of {self.group_size}"
        return (f"int{self.bits} ({grouping}) on {len(self.layers)} matrices: weights "
                f"{self.float_bytes:,} -> {self.quantized_bytes:,} bytes "
                f"({self.ratio:.2f}x smaller)")


def _tables(model: Module) -> dict:
    """name -> input width C of the matrices that are not Linear or Embedding modules: GPT's
    tied wte [V, D], a recurrent LM's w_out [H, V] (M = w_out^T [V, H])."""
    if isinstance(model, GPT):
        return {"wte": model.config.n_embd}
    if isinstance(model, RecurrentLM) and not model.config.tie_weights:
        return {"w_out": model.config.n_hidden}
    return {}


def _targets(model: Module) -> dict:
    """name -> input width C of every matrix ``quantize_model`` replaces."""
    widths = {name: m.in_features for name, m in model.named_modules() if isinstance(m, Linear)}
    widths.update({name: m.dim for name, m in model.named_modules() if isinstance(m, Embedding)})
    widths.update(_tables(model))
    return widths


def check_settings(model: Module, bits, group_size) -> dict:
    """Raise ValueError unless ``model`` can be quantised with these settings; -> its
    targets (name -> input width)."""
    owner = type(model).__name__
    if not isinstance(model, (GPT, RecurrentLM)):
        raise ValueError(f"quantize: {owner} has no quantised path; GPT and the recurrent "
                         "language models (rnn, lstm, gru) have.")
    if is_quantized(model):
        raise ValueError(f"quantize: this {owner} is already quantised; quantise the float "
                         "run instead (rounding twice only adds error).")
    if isinstance(bits, bool) or bits not in BITS:
        raise ValueError(f"quantize: bits={bits!r}; choose 8 (int8, one scale per output "
                         "channel) or 4 (int4, one scale per group of inputs).")
    widths = _targets(model)
    if group_size is None:
        return widths
    valid = sorted(set.intersection(*(set(valid_group_sizes(bits, C)) for C in widths.values())))
    if (isinstance(group_size, bool) or not isinstance(group_size, numbers.Integral)
            or group_size not in valid):
        misfits = sorted({C for C in widths.values()
                          if not (isinstance(group_size, numbers.Integral) and group_size > 0
                                  and C % group_size == 0)})
        reason = (f"it does not divide the input widths {misfits}" if misfits
                  else "int4 groups must be even (two codes a byte)")
        raise ValueError(f"quantize: group size {group_size!r} does not fit {owner}: {reason}. "
                         f"Valid group sizes for int{bits} here: {valid}.")
    return widths


def _replace(model: Module, name: str, new: Module) -> None:
    """Set the child or parameter at dotted ``name`` to ``new``."""
    parent_name, _, attr = name.rpartition(".")
    parent = dict(model.named_modules())[parent_name]
    setattr(parent, attr, new)


def _quantized_twin(model: Module, name: str, bits: int, group_size) -> Module:
    """The quantised layer that replaces the matrix at ``name``."""
    if name in _tables(model):                        # GPT's wte, an RNN's w_out: Parameters
        table = getattr(model, name).data
        return (QuantizedEmbedding(table, bits, group_size) if name == "wte"
                else QuantizedLinear(table, None, bits, group_size))
    module = dict(model.named_modules())[name]
    if isinstance(module, Linear):
        return QuantizedLinear.from_linear(module, bits, group_size)
    return QuantizedEmbedding(module.weight.data, bits, group_size)


def quantize_model(model: Module, bits: int, group_size: int | None = None
                   ) -> QuantizationReport:
    """Replace ``model``'s weight matrices by quantised ones (in place; the module docstring
    says which) and put it in eval mode. ``group_size`` None: per channel for int8, groups
    of DEFAULT_INT4_GROUP for int4."""
    if bits == 4 and group_size is None:
        group_size = DEFAULT_INT4_GROUP
    widths = check_settings(model, bits, group_size)
    before = weight_bytes(model)
    for name in widths:
        _replace(model, name, _quantized_twin(model, name, bits, group_size))
    model.eval()
    return QuantizationReport(bits, group_size, tuple(widths), before, weight_bytes(model))
