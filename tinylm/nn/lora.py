"""LoRA adapters on a model's linear layers: ``LoRALinear``, ``apply_lora``, ``merge_lora``
(chapter 09; the maths is tinylm/functional/lora.py).

    model.load_state_dict(pretrained)                   # the base model first
    report = apply_lora(model, rank=8, alpha=16)        # everything frozen, adapters added
    opt = AdamW(model.trainable_parameters(), lr=1e-3)  # only the lora_A / lora_B tensors
    ...                                                 # train as usual
    merge_lora(model)                                   # plain Linears again, W' = W + s A B

A ``LoRALinear`` keeps the ``Linear``'s own ``weight`` [I, O] and ``bias`` [O] Parameters
under those names, frozen, and adds ``lora_A`` [I, r] and ``lora_B`` [r, O], so a LoRA
model's checkpoint names ``h.0.attn.c_attn.weight``, ``h.0.attn.c_attn.lora_A``, ... and the
base tensors load from (or into) a plain model's checkpoint under their usual names. It has
Linear's interface (``forward(x)``, ``backward(dy) -> dx``), so the attention and MLP modules
run it unchanged, the KV-cache path included.

Initialisation, from ``rng``: A ~ U(-1/sqrt(I), 1/sqrt(I)) (Hugging Face PEFT's
Kaiming-uniform), B = 0, so that the adapted model starts as the base model exactly; the
update is scaled by s = alpha / r. After ``apply_lora`` callers may unfreeze more (say a
classification head, ``head.requires_grad_(True)``); a LoRALinear whose base weight is
unfrozen again computes its dW as well.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from tinylm.backend import default_rng, get_array_module
from tinylm.functional.lora import lora_linear_backward, lora_linear_forward
from tinylm.nn import init
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module
from tinylm.nn.parameter import Parameter

DEFAULT_TARGETS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


def check_lora_settings(rank, alpha, in_features: int, out_features: int,
                        layer: str = "LoRALinear") -> None:
    """Raise ValueError naming ``layer`` unless 1 <= rank <= min(I, O) and alpha > 0."""
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or rank < 1:
        raise ValueError(f"{layer}: LoRA rank={rank!r} must be an integer >= 1 (typical: 4 "
                         "to 64).")
    if rank > min(in_features, out_features):
        raise ValueError(f"{layer}: LoRA rank larger than the layer: rank={rank} > "
                         f"min(in, out) = min({in_features}, {out_features}); a rank-{rank} "
                         "update cannot be low-rank here. Choose rank <= "
                         f"{min(in_features, out_features)}, or leave this layer out of the "
                         "targets.")
    if not (isinstance(alpha, numbers.Real) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"{layer}: LoRA alpha={alpha!r} must be a positive number (the "
                         "update is scaled by alpha / rank; alpha = rank or 2 * rank is "
                         "usual).")


class LoRALinear(Module):
    """y = x W + b + (alpha / r) (x A) B around a pre-trained ``Linear``, whose weight and
    bias it shares and freezes."""

    def __init__(self, base: Linear, rank: int, alpha: float, rng=None,
                 name: str = "LoRALinear"):
        super().__init__()
        I, O = base.in_features, base.out_features
        check_lora_settings(rank, alpha, I, O, name)
        self.in_features, self.out_features = I, O
        self.rank, self.alpha, self.scale = int(rank), float(alpha), float(alpha) / int(rank)
        self.weight = base.weight                                      # [I, O], frozen
        self.bias = base.bias                                          # [O] or None, frozen
        base.requires_grad_(False)
        xp, dtype = get_array_module(base.weight.data), base.weight.dtype
        self.lora_A = Parameter(xp.asarray(init.uniform_fan_in((I, rank), I, rng, dtype)))
        self.lora_B = Parameter(xp.zeros((rank, O), dtype=dtype))
        self.train(base.training)

    def _base_trainable(self) -> bool:
        return self.weight.requires_grad or (self.bias is not None and self.bias.requires_grad)

    def forward(self, x):
        """x [..., I] -> [..., O]."""
        y, self._cache = lora_linear_forward(
            x, self.weight.data, None if self.bias is None else self.bias.data,
            self.lora_A.data, self.lora_B.data, self.scale,
            frozen_base=not self._base_trainable())
        return y

    def backward(self, dy):
        """dy [..., O] -> dx [..., I]; dA and dB into the adapter, dW and db only for a base
        that is not frozen."""
        dx, dW, db, dA, dB = lora_linear_backward(dy, self._cache)
        if dW is not None:
            self.weight.accumulate(dW)
            if self.bias is not None:
                self.bias.accumulate(db)
        self.lora_A.accumulate(dA)
        self.lora_B.accumulate(dB)
        return dx

    def merged_weight(self):
        """W' = W + s A B [I, O]: the weight of the plain Linear computing the same function."""
        W = self.weight.data
        return W + (self.lora_A.data @ self.lora_B.data) * W.dtype.type(self.scale)

    def __repr__(self):
        return (f"LoRALinear({self.in_features}, {self.out_features}, "
                f"bias={self.bias is not None}, rank={self.rank}, alpha={self.alpha})")


@dataclass(frozen=True)
class LoRAReport:
    """What ``apply_lora`` did: the adapted layers' names and the parameter counts after it."""

    layers: tuple              # dotted names of the adapted Linears
    trainable: int             # parameters with requires_grad (the adapters' r (I + O) each)
    total: int                 # every parameter, the adapters included

    @property
    def fraction(self) -> float:
        return self.trainable / self.total

    def __str__(self) -> str:
        return (f"LoRA on {len(self.layers)} layers: {self.trainable:,} trainable of "
                f"{self.total:,} parameters ({100 * self.fraction:.2f} %)")


def _matches(name: str, targets: tuple) -> bool:
    """``name`` ends with one of the targets at a dot boundary ('h.0.attn.c_attn' matches
    'attn.c_attn', 'h.0.xattn.c_attn' does not)."""
    return any(name == t or name.endswith("." + t) for t in targets)


def _lora_layers(model: Module) -> list:
    return [name for name, m in model.named_modules() if isinstance(m, LoRALinear)]


def _replace(model: Module, name: str, new: Module) -> None:
    """Set the child at dotted ``name`` (ModuleList children are '0', '1', ...) to ``new``."""
    parent_name, _, attr = name.rpartition(".")
    parent = dict(model.named_modules())[parent_name]
    setattr(parent, attr, new)


def apply_lora(model: Module, rank: int, alpha: float, targets=DEFAULT_TARGETS,
               rng=None) -> LoRAReport:
    """Freeze every parameter of ``model``, then replace each ``Linear`` whose dotted name
    ends with one of ``targets`` by a ``LoRALinear`` of this rank and alpha (in place).

    ``rng`` (a NumPy generator, default ``default_rng(0)``) draws the A matrices, layer after
    layer. Every setting is checked before the model changes: a bad rank or alpha, targets
    that match no Linear, or a model that already has adapters raise ValueError and leave
    the model as it was.
    """
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    owner = type(model).__name__
    existing = _lora_layers(model)
    if existing:
        raise ValueError(f"apply_lora: {owner} already has LoRA adapters ({existing[0]}, ... "
                         f"{len(existing)} layers); applying LoRA twice would stack adapters "
                         "on adapters. Call merge_lora(model) first, or start from the base "
                         "model.")
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, Linear)]
    chosen = [(name, m) for name, m in linears if _matches(name, targets)]
    if not chosen:
        raise ValueError(f"apply_lora: no Linear of {owner} matches the targets {targets}; "
                         f"its Linear layers are {[name for name, _ in linears]}. Give "
                         "targets that end such a name, e.g. 'attn.c_attn'.")
    for name, m in chosen:
        check_lora_settings(rank, alpha, m.in_features, m.out_features, name)
    rng = default_rng(0) if rng is None else rng
    model.requires_grad_(False)
    for name, m in chosen:
        _replace(model, name, LoRALinear(m, rank, alpha, rng, name))
    return LoRAReport(tuple(name for name, _ in chosen),
                      sum(p.size for p in model.trainable_parameters()),
                      model.num_parameters())


def merge_lora(model: Module) -> Module:
    """Replace each ``LoRALinear`` of ``model`` by a plain ``Linear`` with W' = W + s A B
    and the same bias (in place), for inference and export: the state dict then has the
    base names only. The merged weight and bias keep the base's ``requires_grad`` (frozen
    after ``apply_lora``). Returns the model."""
    names = _lora_layers(model)
    if not names:
        raise ValueError(f"merge_lora: {type(model).__name__} has no LoRA layers to merge; "
                         "apply_lora(model, ...) adds them.")
    modules = dict(model.named_modules())
    for name in names:
        lora = modules[name]
        plain = Linear(lora.in_features, lora.out_features, bias=lora.bias is not None)
        plain.weight.assign(lora.merged_weight())
        plain.weight.requires_grad = lora.weight.requires_grad
        if lora.bias is not None:
            plain.bias.assign(lora.bias.data)
            plain.bias.requires_grad = lora.bias.requires_grad
        plain.train(lora.training)
        _replace(model, name, plain)
    return model
