"""Gradient checking: compare a hand-written backward with central finite differences.

For a forward ``out, cache = f(**inputs)`` and a fixed random upstream gradient ``G`` of
out's shape, the scalar ``phi(inputs) = sum(out * G)`` has gradient ``backward(G, cache)``.
Each input element x_i is nudged both ways and

    numeric_i = (phi(x_i + h) - phi(x_i - h)) / (2 h)          (error O(h^2))

is compared with the analytic value. Everything runs in float64, where h = 1e-6 leaves
about 1e-10 of rounding noise, so a correct backward agrees to ~1e-8 or better and a wrong
one is off by O(1).

The error reported per tensor is

    rel_error = max_i |analytic_i - numeric_i| / max(max_i |analytic_i|, max_i |numeric_i|)

(the largest disagreement measured against the tensor's scale, so a single tiny entry cannot
blow it up). Chapter 03, section "Checking gradients".

``GradcheckCase`` bundles a forward/backward pair with a recipe for its inputs; the modules
of tinylm.functional declare theirs in a ``gradcheck_cases()`` function, and
``tinylm gradcheck`` (tinylm/commands/gradcheck.py) runs them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy

from tinylm.backend import default_rng, get_array_module, to_device, to_numpy


@dataclass
class TensorCheck:
    name: str
    shape: tuple
    max_abs_error: float
    rel_error: float
    passed: bool


@dataclass
class GradcheckReport:
    """Result of one gradient check; ``str(report)`` is a readable table."""

    title: str
    tolerance: float
    tensors: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tensors)

    @property
    def max_rel_error(self) -> float:
        return max((t.rel_error for t in self.tensors), default=0.0)

    def __str__(self) -> str:
        lines = [f"{self.title}  (tolerance {self.tolerance:.0e})",
                 f"  {'tensor':<18}{'shape':<18}{'max abs err':>13}{'rel err':>12}  ok"]
        for t in self.tensors:
            lines.append(f"  {t.name:<18}{str(t.shape):<18}{t.max_abs_error:>13.2e}"
                         f"{t.rel_error:>12.2e}  {'yes' if t.passed else 'NO'}")
        return "\n".join(lines)


def _is_array(value) -> bool:
    """A NumPy or a CuPy array."""
    return isinstance(value, numpy.ndarray) or get_array_module(value) is not numpy


def _as_float64(value):
    """A fresh C-ordered float64 copy of a floating array (so that nudging its flat view
    nudges the array, and the caller's array is never touched); anything else unchanged."""
    if _is_array(value) and value.dtype.kind == "f":
        return value.astype(numpy.float64, order="C")
    return value


def _differentiable(inputs: dict) -> list:
    return [k for k, v in inputs.items() if _is_array(v) and v.dtype.kind == "f"]


def numerical_gradient(phi, x, h: float = 1e-6) -> numpy.ndarray:
    """Central-difference gradient of the scalar function ``phi()`` w.r.t. ``x`` (in place;
    x on either device, the gradient on the host)."""
    grad = numpy.zeros(x.shape, dtype=x.dtype)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h
        plus = phi()
        flat[i] = saved - h
        minus = phi()
        flat[i] = saved
        gflat[i] = (plus - minus) / (2.0 * h)
    return grad


def compare(name: str, analytic, numeric, tolerance: float) -> TensorCheck:
    """Score one tensor's analytic gradient against its numeric gradient."""
    analytic = numpy.zeros_like(numeric) if analytic is None else to_numpy(analytic)
    if analytic.shape != numeric.shape:
        raise ValueError(f"gradcheck: backward returned shape {analytic.shape} for {name!r}, "
                         f"whose shape is {numeric.shape}.")
    abs_err = float(numpy.max(numpy.abs(analytic - numeric), initial=0.0))
    scale = max(float(numpy.max(numpy.abs(analytic), initial=0.0)),
                float(numpy.max(numpy.abs(numeric), initial=0.0)))
    rel = abs_err / scale if scale > 0 else abs_err
    return TensorCheck(name, tuple(numeric.shape), abs_err, rel, rel <= tolerance)


def _as_one_array(out):
    """A forward's output as one float64 array on its device: a tuple of outputs (h and c
    of an LSTM cell) stacked on a new first axis, a Python scalar as a 0-d array."""
    if isinstance(out, (tuple, list)):
        xp = get_array_module(*out)
        return xp.stack([xp.asarray(o, dtype=numpy.float64) for o in out])
    return get_array_module(out).asarray(out, dtype=numpy.float64)


def check_gradients(forward, backward, inputs: dict, wrt=None, title: str | None = None,
                    tolerance: float = 1e-6, h: float = 1e-6, seed: int = 0) -> GradcheckReport:
    """Check ``backward`` against finite differences of ``forward``.

    forward(**inputs) -> (out, cache); backward(G, cache) -> the gradients of the forward's
    floating-point array arguments, in the order ``inputs`` lists them (one array, or a
    tuple). ``wrt`` names the subset to check (default: all floating-point arrays).
    """
    inputs = {k: _as_float64(v) for k, v in inputs.items()}
    floating = _differentiable(inputs)
    wrt = floating if wrt is None else list(wrt)
    out, cache = forward(**inputs)
    out = _as_one_array(out)
    xp = get_array_module(out)
    upstream = xp.asarray(default_rng(seed).standard_normal(out.shape))
    grads = backward(upstream if out.shape else float(upstream), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) < len(floating):
        raise ValueError(f"gradcheck: backward returned {len(grads)} gradients for "
                         f"{len(floating)} floating inputs {floating}.")
    analytic = dict(zip(floating, grads))

    def phi():
        return float(xp.sum(_as_one_array(forward(**inputs)[0]) * upstream))

    report = GradcheckReport(title or getattr(forward, "__name__", "forward"), tolerance)
    for name in wrt:
        numeric = numerical_gradient(phi, inputs[name], h)
        report.tensors.append(compare(name, analytic[name], numeric, tolerance))
    return report


def _moved(value, device: str):
    """``value`` with every NumPy array in it, through tuples and NamedTuples (a CSR
    matrix), moved to ``device``."""
    if isinstance(value, numpy.ndarray):
        return to_device(value, device)
    if isinstance(value, tuple):
        items = [_moved(v, device) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


@dataclass(frozen=True)
class GradcheckCase:
    """One entry of the gradient-check suite: a forward/backward pair and its inputs.

    ``make_inputs(rng)`` builds the forward's keyword arguments from a NumPy generator
    (small arrays: every element costs two forward passes). ``name`` is what
    ``tinylm gradcheck --only`` selects: the pair's name, then an optional variant in
    brackets, e.g. ``"linear[3-D input]"``.

    ``seeded=True`` is for a forward that draws random numbers (dropout) from an ``rng``
    argument: the inputs then hold an integer ``seed`` instead, and every evaluation of the
    forward gets a fresh ``default_rng(seed)``, so all the finite-difference evaluations see
    the same mask (with one generator shared between calls the function would change under
    them).
    """

    name: str
    forward: Callable
    backward: Callable
    make_inputs: Callable
    wrt: tuple | None = None
    tolerance: float = 1e-7
    seeded: bool = False

    @property
    def base_name(self) -> str:
        return self.name.split("[", 1)[0]

    def forward_to_check(self, device: str = "cpu") -> Callable:
        """The forward as the checker calls it: with a fresh generator per call if seeded
        (on ``device``, where the forward draws its mask)."""
        if not self.seeded:
            return self.forward

        def with_fresh_generator(*args, seed: int, **kwargs):
            return self.forward(*args, rng=default_rng(seed, device), **kwargs)
        return with_fresh_generator

    def run(self, seed: int = 0, device: str = "cpu") -> GradcheckReport:
        """Check the case with inputs drawn on the host and moved to ``device``: on "gpu"
        the arithmetic is the device's (the same numbers to rounding, except a seeded
        case's mask, which the device's generator draws)."""
        inputs = self.make_inputs(default_rng(seed))
        if self.seeded and "seed" not in inputs:
            raise ValueError(f"gradcheck case {self.name!r} is seeded: its inputs need an "
                             "integer 'seed' for the forward's generator.")
        inputs = {k: _moved(v, device) for k, v in inputs.items()}
        return check_gradients(self.forward_to_check(device), self.backward, inputs,
                               wrt=self.wrt, title=self.name, tolerance=self.tolerance,
                               seed=seed)


def check_model_gradients(model, idx, targets, tolerance: float = 1e-6, h: float = 1e-6,
                          max_entries: int = 0, seed: int = 0) -> GradcheckReport:
    """Check a whole model: ``loss = model.forward(idx, targets)[1]``, ``model.backward()``.

    The model must already be float64 (``model.to(numpy.float64)``); any carried recurrent
    state is reset before every forward. ``max_entries`` > 0 checks only that many randomly
    chosen entries of each parameter (for large models).
    """
    def loss() -> float:
        model.reset_state()
        return float(model.forward(idx, targets)[1])

    model.zero_grad()
    loss()
    model.backward()
    analytic = {name: to_numpy(p.grad).copy() for name, p in model.named_parameters()}
    rng = default_rng(seed)
    report = GradcheckReport(f"{type(model).__name__} (all parameters)", tolerance)
    for name, p in model.named_parameters():
        flat = p.data.reshape(-1)
        chosen = (rng.choice(flat.size, size=min(max_entries, flat.size), replace=False)
                  if max_entries else numpy.arange(flat.size))
        numeric = numpy.zeros(chosen.size)
        for j, i in enumerate(chosen):
            saved = float(flat[i])
            flat[i] = saved + h
            plus = loss()
            flat[i] = saved - h
            minus = loss()
            flat[i] = saved
            numeric[j] = (plus - minus) / (2.0 * h)
        report.tensors.append(compare(name, analytic[name].reshape(-1)[chosen], numeric, tolerance))
    model.reset_state()
    return report
