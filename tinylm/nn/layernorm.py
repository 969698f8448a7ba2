"""``LayerNorm`` over the last axis (chapter 03 / 07)."""

from __future__ import annotations

from tinylm.functional.layernorm import layernorm_backward, layernorm_forward
from tinylm.nn import init
from tinylm.nn.module import Module
from tinylm.nn.parameter import Parameter


class LayerNorm(Module):
    """weight (gamma) [dim] = 1, bias (beta) [dim] = 0, eps = 1e-5, as PyTorch."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = Parameter(init.ones((dim,)))
        self.bias = Parameter(init.zeros((dim,)))

    def forward(self, x):
        y, self._cache = layernorm_forward(x, self.weight.data, self.bias.data, self.eps)
        return y

    def backward(self, dy):
        dx, dgamma, dbeta = layernorm_backward(dy, self._cache)
        self.weight.accumulate(dgamma)
        self.bias.accumulate(dbeta)
        return dx

    def __repr__(self):
        return f"LayerNorm({self.dim}, eps={self.eps})"
