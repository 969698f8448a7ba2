"""Composition: ``Sequential`` chains modules; ``ModuleList`` holds a list of them."""

from __future__ import annotations

from tinylm.nn.module import Module


class ModuleList(Module):
    """Children named '0', '1', ... in the order appended, so parameter and checkpoint names
    carry the index: ``GPT.h`` is a ModuleList and its first block's QKV weight is
    ``h.0.attn.c_attn.weight``. Indexing (``blocks[i]``, slices give a plain list), ``len``
    and iteration follow that order. A ModuleList has no forward of its own."""

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
    """``forward(x)`` feeds x through the children in order (each takes one input and returns
    one output); ``backward(dy)`` calls their ``backward`` in reverse order and returns the
    gradient of the input. Each child keeps its own cache from its last forward."""

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
