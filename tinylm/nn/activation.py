"""Activation layers wrapping tinylm.functional.activations (chapter 03)."""

from __future__ import annotations

from tinylm.functional import activations as F
from tinylm.nn.module import Module


class _Elementwise(Module):
    _forward = _backward = None

    def forward(self, x):
        y, self._cache = type(self)._forward(x)
        return y

    def backward(self, dy):
        return type(self)._backward(dy, self._cache)


class Tanh(_Elementwise):
    _forward, _backward = staticmethod(F.tanh_forward), staticmethod(F.tanh_backward)


class Sigmoid(_Elementwise):
    _forward, _backward = staticmethod(F.sigmoid_forward), staticmethod(F.sigmoid_backward)


class ReLU(_Elementwise):
    _forward, _backward = staticmethod(F.relu_forward), staticmethod(F.relu_backward)


class GELU(Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        y, self._cache = F.gelu_forward(x, self.approximate)
        return y

    def backward(self, dy):
        return F.gelu_backward(dy, self._cache)

    def __repr__(self):
        return f"GELU(approximate={self.approximate!r})"
