"""A trainable tensor and its gradient (layer 4).

``data`` holds the values, ``grad`` the accumulated dL/d(data): backward passes add into it
(``+=``), exactly as PyTorch does, and ``Module.zero_grad()`` clears it before each step.

``requires_grad = False`` freezes a parameter (fine-tuning only part of a model, chapter 09):
``accumulate`` then adds nothing, so its grad stays zero, layers may skip computing its
gradient at all (``Linear`` does), and ``Module.trainable_parameters()`` leaves it out of
what an optimizer is given.
"""

from __future__ import annotations

from tinylm.backend import get_array_module


class Parameter:
    """data [any shape] with grad [same shape]."""

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data):
        self.data = data
        self.grad = get_array_module(data).zeros_like(data)
        self.requires_grad = True

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return int(self.data.size)

    def accumulate(self, grad) -> None:
        """grad += the contribution of one use of this parameter (nothing if frozen)."""
        if not self.requires_grad:
            return
        if grad.shape != self.data.shape:
            raise ValueError(f"gradient of shape {grad.shape} does not match the "
                             f"parameter's shape {self.data.shape}.")
        self.grad += grad

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def assign(self, data) -> None:
        """Replace the values (and reset the gradient) with an array of a possibly new dtype
        or device."""
        self.data = data
        self.grad = get_array_module(data).zeros_like(data)

    def __repr__(self) -> str:
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={tuple(self.shape)}, dtype={self.dtype}{frozen})"
