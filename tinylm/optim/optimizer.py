"""The base class of every optimizer: parameter groups, the step counter, checkpoints.

An optimizer holds ``Parameter`` objects (not arrays), so it follows a parameter whose data
is replaced (``Module.to(device)``). ``step()`` reads ``p.grad`` and updates ``p.data`` in
place; subclasses write only the per-parameter update rule ``_update``.

Parameter groups, as in PyTorch::

    AdamW([{"params": matrices, "weight_decay": 0.1},
           {"params": biases_and_norms, "weight_decay": 0.0}], lr=6e-4)

Every group carries its own hyperparameters (missing ones come from the constructor's
arguments). ``opt.lr = x`` sets the learning rate of every group, which is what a schedule
does before each step.

State dict: a flat ``dict[str, numpy.ndarray]`` of host arrays that ``numpy.savez`` can
store without pickle::

    "step"                  0-d int64, the number of steps taken
    "group{g}.{name}"       each hyperparameter of group g ("group0.lr", "group1.betas", ...)
    "group{g}.num_params"   how many parameters group g holds
    "shape.{i}"             the shape of parameter i (counted across groups, in order)
    "{buffer}.{i}"          per-parameter state ("exp_avg.3", "momentum_buffer.0", ...)

``load_state_dict`` restores all of it exactly, so a resumed run continues bit for bit. It
first checks every entry and names the one that is wrong: each buffer has its parameter's
shape and a floating dtype, the step is a 0-d integer >= 0, every setting is finite. The
update rules check their buffers' shapes again (``check_same_shape``) before any kernel
runs: the numba kernels index arrays without bounds checks. Chapter 04.
"""

from __future__ import annotations

import math

from tinylm.backend import get_array_module, to_numpy
from tinylm.nn.parameter import Parameter


class Optimizer:
    """Holds parameter groups and per-parameter state; subclasses define ``_update``."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups = _make_groups(params, self.defaults, type(self).__name__)
        for group in self.param_groups:
            self._check_hyperparameters(group)
        self.step_count = 0
        self.state = [dict() for _ in self.params]     # per-parameter buffers, made lazily
        self._scratch_buffers = {}

    # -- the parameters and their learning rate -------------------------------------------
    @property
    def params(self) -> list:
        """Every parameter, group after group (the index used by the state dict)."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def lr(self) -> float:
        """The learning rate of the first group (set ``opt.lr`` to change every group)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        _check_nonnegative(type(self).__name__, "lr", value)
        for group in self.param_groups:
            group["lr"] = float(value)

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    # -- one step --------------------------------------------------------------------------
    def step(self) -> None:
        """Apply one update to every parameter from its current ``grad``."""
        self.step_count += 1
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                if not self.state[i]:
                    self.state[i] = self._new_state(p, group)
                self._update(p, self.state[i], group, self.step_count)
                i += 1

    def _update(self, p, state: dict, group: dict, t: int) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update().")

    def _state_names(self, group: dict) -> tuple:
        """Names of the per-parameter buffers this group's parameters carry."""
        return ()

    def _new_state(self, p, group: dict) -> dict:
        xp = get_array_module(p.data)
        return {name: xp.zeros_like(p.data) for name in self._state_names(group)}

    def _check_hyperparameters(self, group: dict) -> None:
        _check_finite(type(self).__name__, group)
        _check_nonnegative(type(self).__name__, "lr", group["lr"])
        _check_nonnegative(type(self).__name__, "weight_decay", group["weight_decay"])

    def _scratch(self, p):
        """A work array shaped like ``p`` (a view into one buffer per dtype and device, sized
        to the largest parameter), so that the updates allocate nothing per step."""
        xp = get_array_module(p.data)
        key = (xp.__name__, p.data.dtype.str)
        buf = self._scratch_buffers.get(key)
        if buf is None or buf.size < p.data.size:
            buf = self._scratch_buffers[key] = xp.empty(p.data.size, dtype=p.data.dtype)
        return buf[:p.data.size].reshape(p.data.shape)

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Host copies of the step count, every group's hyperparameters and all buffers."""
        out = {"step": to_numpy(self.step_count)}
        for g, group in enumerate(self.param_groups):
            for name, value in group.items():
                if name != "params":
                    out[f"group{g}.{name}"] = to_numpy(value)
            out[f"group{g}.num_params"] = to_numpy(len(group["params"]))
        for i, (p, state) in enumerate(zip(self.params, self.state)):
            out[f"shape.{i}"] = to_numpy(list(p.shape))
            for name, buf in state.items():
                out[f"{name}.{i}"] = to_numpy(buf).copy()
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict()``; every mismatch is reported, naming the entry, before
        anything changes. Each buffer must have its parameter's shape and a floating dtype:
        the numba Adam kernel indexes it element by element without bounds checks, so a
        wrong shape would write outside the array instead of raising."""
        owner = f"{type(self).__name__}.load_state_dict"
        _check_keys(owner, state)
        self._check_layout(state)
        groups = [self._restored_group(state, g, group)
                  for g, group in enumerate(self.param_groups)]
        step = int(_scalar(owner, state, "step", "iu", "an integer step count"))
        if step < 0:
            raise ValueError(f"{owner}: entry 'step' is {step}; the number of steps taken "
                             "is an integer >= 0.")
        expected = self._expected_keys(groups, step)
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise KeyError(f"{owner}: missing entries {missing}, "
                           f"unexpected entries {unexpected}; was the state saved by another "
                           "optimizer?")
        new_state, i = [], 0
        for group in groups:
            names = self._state_names(group) if step > 0 else ()
            for p in group["params"]:
                new_state.append({n: _buffer(owner, state, f"{n}.{i}", p, i) for n in names})
                i += 1
        self.param_groups, self.state, self.step_count = groups, new_state, step

    def _check_layout(self, state: dict) -> None:
        """Same number of groups, same number of parameters, same shapes, index by index."""
        name, params = type(self).__name__, self.params
        owner = f"{name}.load_state_dict"
        n_groups = len({k.split(".")[0] for k in state if k.startswith("group")})
        if n_groups != len(self.param_groups):
            raise ValueError(f"{owner}: the state has {n_groups} parameter "
                             f"groups but this optimizer has {len(self.param_groups)}; build "
                             "the optimizer with the same groups as the saved run.")
        n_saved = sum(1 for k in state if k.startswith("shape."))
        if n_saved != len(params):
            raise ValueError(f"{owner}: the state holds {n_saved} parameters "
                             f"but this optimizer has {len(params)}; was it saved for a model "
                             "with a different configuration?")
        for i, p in enumerate(params):
            saved = _shape_entry(owner, state, f"shape.{i}")
            if saved != tuple(p.shape):
                raise ValueError(f"{owner}: parameter {i} has shape "
                                 f"{tuple(p.shape)} but the state was saved for shape {saved}; "
                                 "the model configuration differs from the saved one.")

    def _expected_keys(self, groups: list, step: int) -> set:
        keys, i = {"step"}, 0
        for g, group in enumerate(groups):
            keys |= {f"group{g}.{k}" for k in group if k != "params"}
            keys.add(f"group{g}.num_params")
            for _ in group["params"]:
                keys.add(f"shape.{i}")
                if step > 0:
                    keys |= {f"{n}.{i}" for n in self._state_names(group)}
                i += 1
        return keys

    def _restored_group(self, state: dict, g: int, group: dict) -> dict:
        owner = f"{type(self).__name__}.load_state_dict"
        saved = int(_scalar(owner, state, f"group{g}.num_params", "iu", "an integer count"))
        if saved != len(group["params"]):
            raise ValueError(f"{owner}: group {g} was saved with "
                             f"{saved} parameters but now has {len(group['params'])}.")
        restored = dict(group)
        for k, current in group.items():
            key = f"group{g}.{k}"
            if k != "params" and key in state:
                restored[k] = _hyperparameter(owner, state, key, current)
        self._check_hyperparameters(restored)
        return restored

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for g, group in enumerate(self.param_groups):
            hyper = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {g}: {len(group['params'])} parameters, {hyper}")
        return "\n".join(lines + [")"])


def _make_groups(params, defaults: dict, name: str) -> list:
    """Normalise a list of Parameters or of group dicts into a list of complete groups."""
    if hasattr(params, "named_parameters"):
        raise TypeError(f"{name}: pass model.parameters() (a list of Parameters), not the "
                        "model itself.")
    params = list(params)
    if not params:
        raise ValueError(f"{name}: got an empty parameter list; pass model.parameters() of a "
                         "model that has parameters.")
    raw = params if isinstance(params[0], dict) else [{"params": params}]
    groups, seen = [], set()
    for g, entry in enumerate(raw):
        if not isinstance(entry, dict) or "params" not in entry:
            raise TypeError(f"{name}: parameter group {g} must be a dict with a 'params' key "
                            "(do not mix Parameters and group dicts).")
        unknown = sorted(set(entry) - set(defaults) - {"params"})
        if unknown:
            raise ValueError(f"{name}: parameter group {g} has unknown settings {unknown}; "
                             f"valid ones are {sorted(defaults)}.")
        group = {k: _as_float(v) for k, v in {**defaults, **entry}.items() if k != "params"}
        group["params"] = list(entry["params"])
        for p in group["params"]:
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: expected tinylm.nn.Parameter objects, got "
                                f"{type(p).__name__}; wrap arrays as Parameter(array).")
            if id(p) in seen:
                raise ValueError(f"{name}: a parameter of shape {tuple(p.shape)} appears twice; "
                                 "each parameter may belong to one group only.")
            seen.add(id(p))
        groups.append(group)
    if not seen:
        raise ValueError(f"{name}: got an empty parameter list; pass model.parameters() of a "
                         "model that has parameters.")
    return groups


def check_same_shape(owner: str, p, **buffers) -> None:
    """Raise unless every buffer (gradient, moments, ...) has the parameter's shape: the
    numba kernels are only ever called on arrays whose shapes were checked."""
    for name, a in buffers.items():
        if a.shape != p.shape:
            raise ValueError(f"{owner}: {name} has shape {tuple(a.shape)} but the parameter "
                             f"has shape {tuple(p.shape)}; every buffer of an update must be "
                             "shaped like its parameter.")


def _check_nonnegative(owner: str, name: str, value) -> None:
    if not (value >= 0.0 and math.isfinite(value)):     # also rejects NaN and inf
        raise ValueError(f"{owner}: {name}={value} is invalid; it must be a finite number "
                         ">= 0.")


def _as_float(value):
    """Numbers become floats (lr=1 -> 1.0) so that checkpoints restore the same types."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(float(v) for v in value)
    return float(value)


def _check_finite(owner: str, group: dict) -> None:
    """Every number of a group's settings must be finite (inf and NaN pass ``>= 0``)."""
    for name, value in group.items():
        if name == "params" or isinstance(value, bool):
            continue
        if not all(math.isfinite(v) for v in (value if isinstance(value, tuple) else (value,))):
            raise ValueError(f"{owner}: {name}={value} is invalid; it must be finite.")


# -- reading a state dict: every entry checked and named ------------------------------------

def _check_keys(owner: str, state) -> None:
    if not isinstance(state, dict):
        raise TypeError(f"{owner}: expected a dict of arrays (as state_dict() returns), got "
                        f"{type(state).__name__}.")
    odd = [k for k in state if not isinstance(k, str)]
    if odd:
        raise ValueError(f"{owner}: entry names must be strings, got {odd[:3]}; pass the dict "
                         "that state_dict() returned.")


def _entry(owner: str, state: dict, key: str):
    """state[key] as a host array; raises naming the entry when it is absent or no array."""
    if key not in state:
        raise KeyError(f"{owner}: entry {key!r} is missing; was the state saved by another "
                       "optimizer?")
    value = state[key]
    if not (isinstance(value, (bool, int, float)) or hasattr(value, "dtype")):
        raise ValueError(f"{owner}: entry {key!r} is a {type(value).__name__}, not an array; "
                         "an optimizer state holds the arrays state_dict() returned.")
    return to_numpy(value)


def _scalar(owner: str, state: dict, key: str, kinds: str, what: str):
    """A 0-d entry whose dtype kind is one of ``kinds`` ('iu' integer, 'f' float, 'b' bool)."""
    a = _entry(owner, state, key)
    if a.shape != () or a.dtype.kind not in kinds:
        raise ValueError(f"{owner}: entry {key!r} must be {what} (a 0-d array), got shape "
                         f"{a.shape} and dtype {a.dtype}.")
    return a[()]


def _shape_entry(owner: str, state: dict, key: str) -> tuple:
    a = _entry(owner, state, key)
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise ValueError(f"{owner}: entry {key!r} must be a 1-D integer array (a parameter's "
                         f"shape), got shape {a.shape} and dtype {a.dtype}.")
    return tuple(int(d) for d in a)


def _hyperparameter(owner: str, state: dict, key: str, current):
    """A saved setting, checked against the Python type of the current one and returned as
    that type (a 0-d or 1-d array back to a float, bool or tuple of floats)."""
    if isinstance(current, bool):
        return bool(_scalar(owner, state, key, "b", "a boolean"))
    a = _entry(owner, state, key)
    shape = (len(current),) if isinstance(current, tuple) else ()
    if a.shape != shape or a.dtype.kind not in "iuf":
        what = f"{len(current)} real numbers" if shape else "a real number"
        raise ValueError(f"{owner}: entry {key!r} must be {what} (an array of shape {shape}), "
                         f"got shape {a.shape} and dtype {a.dtype}.")
    values = tuple(float(x) for x in a.reshape(-1))
    if not all(math.isfinite(x) for x in values):
        raise ValueError(f"{owner}: entry {key!r} is {values if shape else values[0]}; "
                         "a setting must be finite. The saved run had diverged or the "
                         "file is damaged.")
    return values if shape else values[0]


def _buffer(owner: str, state: dict, key: str, p, i: int):
    """The buffer ``key`` of parameter i, checked against it, as a C-ordered copy of
    p's dtype on p's device."""
    a = _entry(owner, state, key)
    if a.shape != tuple(p.shape):
        raise ValueError(f"{owner}: entry {key!r} has shape {a.shape} but parameter {i} has "
                         f"shape {tuple(p.shape)}; the state is damaged or belongs to another "
                         "model.")
    if a.dtype.kind != "f":
        raise ValueError(f"{owner}: entry {key!r} has dtype {a.dtype}, but optimizer buffers "
                         f"are floating point like parameter {i} ({p.dtype}); the state is "
                         "damaged.")
    return get_array_module(p.data).array(a, dtype=p.dtype)
