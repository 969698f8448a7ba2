"""The base class of every layer and model (layer 4).

A ``Module`` owns ``Parameter``s and child ``Module``s, registered automatically when they
are assigned as attributes. ``named_parameters()`` (and so every checkpoint) lists a module's
own parameters first, then each child's, each group in assignment order -- PyTorch's order, so
a PyTorch twin's parameters line up one for one. There is no autograd: a module's ``forward``
keeps what its ``backward`` needs, and ``backward(dout)`` adds into each parameter's
``grad`` and returns the gradient of its input.

    logits = model.forward(x)        # caches activations
    dx = model.backward(dlogits)     # fills p.grad for every parameter
"""

from __future__ import annotations

from tinylm.backend import get_array_module, to_device, to_numpy
from tinylm.nn.parameter import Parameter


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               f"before assigning {name!r}.")
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value          # a replacement keeps its place
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    # -- computation -------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward().")

    def backward(self, dout):
        raise NotImplementedError(f"{type(self).__name__} must implement backward().")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- traversal ---------------------------------------------------------------------
    def children(self):
        return iter(self._modules.values())

    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = ""):
        """Yield (dotted name, Parameter) once per parameter, even if it is shared."""
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def trainable_parameters(self) -> list:
        """The parameters with ``requires_grad`` (what an optimizer of a partly frozen model
        is given)."""
        return [p for p in self.parameters() if p.requires_grad]

    def requires_grad_(self, flag: bool = True):
        """Freeze (False) or unfreeze (True) every parameter of this module."""
        for p in self.parameters():
            p.requires_grad = flag
        return self

    # -- modes and gradients -------------------------------------------------------------
    def train(self, mode: bool = True):
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    # -- dtype, device, checkpoints --------------------------------------------------------
    def to(self, dtype=None, device: str | None = None):
        """Cast every parameter to ``dtype`` and/or move it to ``device`` ('cpu' or 'gpu')."""
        for p in self.parameters():
            data = p.data if device is None else to_device(p.data, device)
            p.assign(data if dtype is None else data.astype(dtype))
        return self

    def state_dict(self) -> dict:
        """Host (NumPy) copies of every parameter, keyed by dotted name."""
        return {name: to_numpy(p.data).copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into the parameters; every mismatch (name, shape, dtype) is reported by
        tensor name before any parameter changes."""
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"state dict does not match {type(self).__name__}: missing tensors "
                           f"{missing}, unexpected tensors {unexpected}. Was the checkpoint "
                           "saved from a model with a different configuration?")
        loaded = {name: p for name, p in own.items() if name in state}
        for name, p in loaded.items():
            _check_loadable(name, state[name], p)
        for name, p in loaded.items():
            xp = get_array_module(p.data)
            p.assign(xp.asarray(state[name], dtype=p.dtype))

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        lines.append(")")
        return "\n".join(lines) if self._modules else f"{type(self).__name__}()"


def _check_loadable(name: str, value, p: Parameter) -> None:
    """Raise naming the tensor unless ``value`` is an array of p's shape whose dtype can
    become p's: a floating parameter takes floating arrays only (an int, bool, complex or
    object array is not a set of weights, and casting it would hide the damage)."""
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise ValueError(f"tensor {name!r}: the checkpoint holds a {type(value).__name__}, not "
                         "an array; a state dict maps tensor names to arrays, as state_dict() "
                         "returns them.")
    if tuple(value.shape) != tuple(p.shape):
        raise ValueError(f"tensor {name!r}: checkpoint shape {tuple(value.shape)} != "
                         f"model shape {tuple(p.shape)}; the model configuration "
                         "differs from the one the checkpoint was saved with.")
    if p.dtype.kind == "f" and value.dtype.kind != "f":
        raise ValueError(f"tensor {name!r}: checkpoint dtype {value.dtype} cannot load into "
                         f"the model's {p.dtype} parameter; only floating-point arrays load "
                         "into floating-point parameters. The checkpoint is damaged or not a "
                         "tinylm state dict.")
