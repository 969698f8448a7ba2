"""``Linear``: y = x W + b around tinylm.functional.linear (chapter 03).

Initialisation, drawn from ``rng`` (weight first, then bias):

    W [in, out] ~ U(-1/sqrt(in), 1/sqrt(in)),  b [out] likewise     (default, as PyTorch)
    W [in, out] ~ N(0, weight_std^2)                                 (``weight_std`` given: GPT-2)
    b [out] = 0                                                      (``zero_bias=True``)
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.nn import init
from tinylm.nn.module import Module
from tinylm.nn.parameter import Parameter


class Linear(Module):
    """W [in, out] and b [out] (or no bias), initialised by ``reset_parameters``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng=None,
                 weight_std: float | None = None, zero_bias: bool = False):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(init.zeros((in_features, out_features)))
        self.bias = Parameter(init.zeros((out_features,))) if bias else None
        self.reset_parameters(rng, weight_std, zero_bias)

    def reset_parameters(self, rng=None, weight_std: float | None = None,
                         zero_bias: bool = False) -> None:
        """Draw new values as the module docstring says (keeping dtype and device)."""
        shape, fan_in = (self.in_features, self.out_features), self.in_features
        dtype = self.weight.dtype
        w = (init.uniform_fan_in(shape, fan_in, rng, dtype) if weight_std is None
             else init.normal(shape, weight_std, rng, dtype))
        self.weight.assign(self._on_device(w))
        if self.bias is not None:
            b = (init.zeros((self.out_features,), dtype) if zero_bias
                 else init.uniform_fan_in((self.out_features,), fan_in, rng, dtype))
            self.bias.assign(self._on_device(b))

    def _on_device(self, host_array):
        """A host array moved to the device the weight lives on."""
        return get_array_module(self.weight.data).asarray(host_array)

    def forward(self, x):
        y, self._cache = linear_forward(x, self.weight.data,
                                        None if self.bias is None else self.bias.data)
        return y

    def backward(self, dy):
        """dy [..., out] -> dx [..., in]; dW and db only for a layer that is not frozen."""
        trainable = self.weight.requires_grad or (self.bias is not None
                                                  and self.bias.requires_grad)
        dx, dW, db = linear_backward(dy, self._cache, weight_grads=trainable)
        if trainable:
            self.weight.accumulate(dW)
            if self.bias is not None:
                self.bias.accumulate(db)
        return dx

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None})"
