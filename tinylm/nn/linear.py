"""``Linear``: y = x W + b around tinylm.functional.linear (chapter 03)."""

from __future__ import annotations

from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.nn import init
from tinylm.nn.module import Module
from tinylm.nn.parameter import Parameter


class Linear(Module):
    """W [in, out] ~ U(-1/sqrt(in), 1/sqrt(in)) and b [out] likewise, as PyTorch."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(init.uniform_fan_in((in_features, out_features), in_features, rng))
        self.bias = (Parameter(init.uniform_fan_in((out_features,), in_features, rng))
                     if bias else None)

    def forward(self, x):
        y, self._cache = linear_forward(x, self.weight.data,
                                        None if self.bias is None else self.bias.data)
        return y

    def backward(self, dy):
        dx, dW, db = linear_backward(dy, self._cache)
        self.weight.accumulate(dW)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None})"
