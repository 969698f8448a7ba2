"""Composition: ``Sequential`` chains modules; ``ModuleList`` holds a list of them."""

from __future__ import annotations

from tinylm.nn.module import Module


class ModuleList(Module):
    """Children named '0', '1', ... so checkpoints read ``blocks.0.attn.weight``."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> None:
        setattr(self, str(len(self._modules)), module)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """forward applies the children in order; backward runs them in reverse."""

    def __init__(self, *modules: Module):
        super().__init__(modules)

    def forward(self, x):
        for m in self:
            x = m.forward(x)
        return x

    def backward(self, dy):
        for m in reversed(list(self)):
            dy = m.backward(dy)
        return dy
