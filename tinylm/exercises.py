"""Checked fill-in exercises: what ``tinylm check EXERCISE FILE`` runs.

A student copies a stub from ``exercises/stubs/`` (functions with their signatures and the
maths in their docstrings, bodies still to write), fills it in, and runs

    tinylm check layernorm my_layernorm.py

The checker loads the file by its path (importlib; nothing is installed or pickled), checks
that it defines every function the exercise asks for, and runs each check on fixed, seeded
float64 inputs. For a forward/backward pair (``PairCheck``) that is three comparisons:

    forward  vs tinylm               the student's forward against tinylm's own forward
    backward vs finite differences   the student's backward against central differences of
                                     the student's own forward (method: tinylm/gradcheck.py)
    backward vs tinylm               the student's backward against tinylm's backward

(the second finds a backward that does not match its forward, the third a forward and
backward that are consistent but both wrong). The optimizer exercise compares the student's
update step with tinylm's ``AdamW`` over several steps instead. Every error is the relative
error of tinylm/gradcheck.py, max|a - b| / max(max|a|, max|b|).

The report is a table (check, relative error, tolerance, result) and a last line naming what
to fix first. A function that still raises ``NotImplementedError`` shows as "not written
yet"; any other exception in the student's code shows its message and the line it came from.
tinylm's side runs its reference array-module code, the specification the stubs follow.
exercises/README.md lists the exercises and their chapters; chapter 03 explains the
gradient check ("Checking gradients").
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy

from tinylm.backend import KERNEL_ENV_VAR
from tinylm.functional import (cross_entropy_backward, cross_entropy_forward, embedding_backward,
                               embedding_forward, gelu_backward, gelu_forward,
                               layernorm_backward, layernorm_forward, linear_backward,
                               linear_forward, softmax_backward, softmax_forward)
from tinylm.functional.attention import (scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward)
from tinylm.functional.gru import gru_cell_backward, gru_cell_forward
from tinylm.functional.lstm import lstm_cell_backward, lstm_cell_forward
from tinylm.gradcheck import compare, numerical_gradient
from tinylm.nn.parameter import Parameter
from tinylm.optim import AdamW

FORWARD_TOLERANCE = 1e-9     # the same formula computed twice in float64
NUMERIC_TOLERANCE = 1e-7     # central differences with h = 1e-6 (tinylm/gradcheck.py)
REFERENCE_TOLERANCE = 1e-9   # two correct backwards agree to rounding
STEP_TOLERANCE = 1e-10       # one optimizer update, computed twice
SEED = 0


# -- what the student's code did ------------------------------------------------------------

class StudentCodeFailed(Exception):
    """A student's function could not give an answer: not written yet, raised an error, or
    returned something of the wrong form. ``problem`` is the table's short text, ``detail``
    the message and line printed under the table."""

    def __init__(self, function: str, problem: str, detail: str = ""):
        super().__init__(problem)
        self.function, self.problem, self.detail = function, problem, detail


def _where_in(path: Path, error: BaseException) -> str:
    """'file.py, line 12: <the line>' for the deepest frame of ``error`` in the student's
    file ('' when none is)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
    if not frames:
        return ""
    frame = frames[-1]
    return f"{path.name}, line {frame.lineno}: {(frame.line or '').strip()}"


def call_student(path: Path, name: str, function: Callable, *args):
    """``function(*args)``, with any failure turned into ``StudentCodeFailed``."""
    try:
        return function(*args)
    except NotImplementedError:
        raise StudentCodeFailed(name, f"not written yet: {name}") from None
    except Exception as error:  # noqa: BLE001 - the student's code may raise anything
        where = _where_in(path, error)
        message = f"{type(error).__name__}: {error}"
        raise StudentCodeFailed(name, f"error in {name}",
                                f"{name} raised {message}" + (f"\n    at {where}" if where
                                                              else "")) from None


# -- one row of the report ------------------------------------------------------------------

@dataclass
class Row:
    """One check: its relative error against ``tolerance``, or why it could not run."""

    check: str                     # e.g. "layernorm_backward: dgamma vs finite differences"
    tolerance: float
    rel_error: float | None = None
    problem: str = ""              # "not written yet: f", "error in f", "waits for f", ...
    fix: str = ""                  # what to do when this row is the first that fails
    detail: str = ""               # an error's message and line, printed under the table

    @property
    def passed(self) -> bool:
        return not self.problem and self.rel_error is not None and self.rel_error <= self.tolerance

    @property
    def result(self) -> str:
        if self.problem:
            return self.problem
        return "PASS" if self.passed else "FAIL"


def _unavailable(row: Row, failure: StudentCodeFailed) -> Row:
    row.problem, row.detail = failure.problem, failure.detail
    row.fix = (f"write {failure.function} (its docstring in the stub gives the maths)"
               if failure.problem.startswith("not written") else
               f"fix the error in {failure.function} (shown above)")
    return row


def _waiting(row: Row, function: str) -> Row:
    row.problem = f"waits for {function}"
    return row


def _scored(row: Row, mine, reference, fix: str) -> Row:
    """Score ``mine`` against ``reference``; a wrong shape is a failure that says so, and
    a failure in lower precision names it."""
    dtype = getattr(mine, "dtype", None)
    if dtype is not None and dtype.kind == "f" and dtype != numpy.float64:
        fix = f"{fix} (it is {dtype}: keep the float64 of the inputs)"
    mine = numpy.asarray(mine, dtype=numpy.float64)
    reference = numpy.asarray(reference, dtype=numpy.float64)
    if mine.shape != reference.shape:
        row.problem = f"FAIL: shape {mine.shape}, expected {reference.shape}"
        row.fix = f"{fix} (it has shape {mine.shape}; it should be {reference.shape})"
        return row
    row.rel_error = compare(row.check, mine, reference, row.tolerance).rel_error
    row.fix = fix
    return row


# -- forward/backward pairs -----------------------------------------------------------------

def _copies(inputs: dict) -> list:
    """Fresh copies of the arrays (a student's forward may write into its arguments)."""
    return [v.copy() if isinstance(v, numpy.ndarray) else v for v in inputs.values()]


def _differentiable(inputs: dict) -> list:
    return [k for k, v in inputs.items() if isinstance(v, numpy.ndarray) and v.dtype.kind == "f"]


@dataclass(frozen=True)
class PairCheck:
    """A forward/backward pair the student writes, checked three ways (module docstring).

    ``make_inputs(rng)`` gives the forward's arguments in order (float64 arrays are the ones
    differentiated); ``outputs`` names what the forward returns, one name per array, e.g.
    ``("h", "c")`` for a forward returning ((h, c), cache). The backward gets the upstream
    gradient in the same form (an array, a tuple of arrays, or a float for a scalar output)
    and returns one gradient per differentiable input, in order.
    """

    forward: str
    backward: str
    outputs: tuple
    make_inputs: Callable
    tinylm_forward: Callable
    tinylm_backward: Callable

    def rows(self, student, path: Path) -> list:
        inputs = self.make_inputs(numpy.random.default_rng(SEED))
        wrt = _differentiable(inputs)
        forward_rows = [Row(f"{self.forward}: {name} vs tinylm", FORWARD_TOLERANCE)
                        for name in self.outputs]
        numeric_rows = [Row(f"{self.backward}: d{name} vs finite differences",
                            NUMERIC_TOLERANCE) for name in wrt]
        reference_rows = [Row(f"{self.backward}: d{name} vs tinylm", REFERENCE_TOLERANCE)
                          for name in wrt]
        backward_rows = numeric_rows + reference_rows
        reference_out, upstream, reference_grads = self._tinylm_answers(inputs, wrt)
        forward, backward = getattr(student, self.forward), getattr(student, self.backward)

        def student_outputs():
            """The student's forward on (copies of) the current inputs -> (outputs, cache)."""
            result = call_student(path, self.forward, forward, *_copies(inputs))
            if not (isinstance(result, tuple) and len(result) == 2):
                raise StudentCodeFailed(self.forward, f"error in {self.forward}",
                                        f"{self.forward} must return (out, cache), a pair")
            return self._as_outputs(result[0], self.forward), result[1]

        try:
            out, cache = student_outputs()
        except StudentCodeFailed as failure:
            return ([_unavailable(r, failure) for r in forward_rows]
                    + [_waiting(r, self.forward) for r in backward_rows])
        for row, mine, theirs, name in zip(forward_rows, out, reference_out, self.outputs):
            _scored(row, mine, theirs, f"{self.forward} computes a different {name} from "
                                       "tinylm's; recheck the forward's maths")
        if any(o.shape != r.shape for o, r in zip(out, reference_out)):
            return forward_rows + [_waiting(r, self.forward) for r in backward_rows]

        try:
            grads = self._as_gradients(
                call_student(path, self.backward, backward,
                             self._dout([g.copy() for g in upstream]), cache), wrt, self.backward)
        except StudentCodeFailed as failure:
            return forward_rows + [_unavailable(r, failure) for r in backward_rows]

        def phi() -> float:
            """sum_k <out_k, upstream_k>: its gradient is what the backward returns."""
            outputs, _ = student_outputs()
            return float(sum((o * g).sum() for o, g in zip(outputs, upstream)))

        for name, row, mine in zip(wrt, numeric_rows, grads):
            try:
                numeric = numerical_gradient(phi, inputs[name])
            except StudentCodeFailed as failure:
                _unavailable(row, failure)
                continue
            _scored(row, mine, numeric, f"{self.backward} returns a wrong d{name}: it disagrees "
                                        f"with finite differences of your {self.forward}")
        for name, row, mine, theirs in zip(wrt, reference_rows, grads, reference_grads):
            _scored(row, mine, theirs, f"{self.backward}'s d{name} differs from tinylm's "
                                       "backward; recheck the derivation in the docstring")
        return forward_rows + backward_rows

    def _tinylm_answers(self, inputs: dict, wrt: list):
        """tinylm's outputs, the seeded upstream gradient (shaped like them) and tinylm's
        gradients for it: what the student's pair is measured against."""
        out, cache = self.tinylm_forward(*_copies(inputs))
        out = self._as_outputs(out)
        rng = numpy.random.default_rng(SEED + 1)
        upstream = [rng.standard_normal(o.shape) for o in out]
        grads = self._as_gradients(self.tinylm_backward(self._dout(upstream), cache), wrt)
        return out, upstream, grads

    def _as_outputs(self, out, function: str = "tinylm") -> list:
        """The forward's output as a list of arrays (in their own dtype, so that a report
        can name a lower precision), one per name in ``outputs``."""
        if len(self.outputs) == 1:
            out = (out,)
        elif not (isinstance(out, (tuple, list)) and len(out) == len(self.outputs)):
            raise StudentCodeFailed(function, f"error in {function}",
                                    f"{function} must return ({', '.join(self.outputs)}), "
                                    "cache")
        arrays = [numpy.asarray(o) for o in out]
        if any(a.dtype.kind not in "fiu" for a in arrays):
            raise StudentCodeFailed(function, f"error in {function}",
                                    f"{function} must return arrays of numbers as "
                                    f"{', '.join(self.outputs)}")
        return arrays

    def _dout(self, upstream: list):
        """The upstream gradient in the form the backward takes."""
        if len(upstream) > 1:
            return tuple(upstream)
        return float(upstream[0]) if upstream[0].shape == () else upstream[0]

    def _as_gradients(self, grads, wrt: list, function: str = "tinylm") -> list:
        grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
        if len(grads) != len(wrt):
            names = ", ".join(f"d{name}" for name in wrt)
            raise StudentCodeFailed(function, f"error in {function}",
                                    f"{function} returned {len(grads)} gradient(s); it must "
                                    f"return {len(wrt)}: {names}")
        return grads


# -- the optimizer exercise -----------------------------------------------------------------

ADAMW_SETTINGS = (
    ("", dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1), 1.0),
    # small gradients, so that sqrt(v_hat) ~ 1e-2 and where eps goes matters
    (" (eps=1e-3, no decay)", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.0),
     1e-2),
)
ADAMW_STEPS = 5


@dataclass(frozen=True)
class AdamWCheck:
    """The student's ``adamw_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay)
    -> (param, m, v)``, run for ``ADAMW_STEPS`` steps next to ``tinylm.optim.AdamW``, in each
    of ``ADAMW_SETTINGS``: the parameter after the first step, and the parameter and both
    moments after the last."""

    function: str = "adamw_step"

    def rows(self, student, path: Path) -> list:
        rows = []
        for label, settings, grad_scale in ADAMW_SETTINGS:
            rows += self._rows_for(student, path, label, settings, grad_scale)
        return rows

    def _rows_for(self, student, path, label, settings, grad_scale) -> list:
        rng = numpy.random.default_rng(SEED)
        start = rng.standard_normal((3, 4))
        grads = [grad_scale * rng.standard_normal((3, 4)) for _ in range(ADAMW_STEPS)]
        expected = self._tinylm_run(start, grads, settings)
        n = ADAMW_STEPS
        checks = [("param", 1), ("m", n), ("v", n), ("param", n)]
        rows = [Row(f"{self.function}: {what} after step {t}{label}", STEP_TOLERANCE)
                for what, t in checks]
        try:
            mine = self._student_run(student, path, start, grads, settings)
        except StudentCodeFailed as failure:
            return [_unavailable(r, failure) for r in rows]
        for row, (what, t) in zip(rows, checks):
            _scored(row, mine[t][what], expected[t][what],
                    f"{self.function}: {what} differs from tinylm's AdamW after step {t}"
                    f"{label}; recheck the update's order in the docstring")
        return rows

    @staticmethod
    def _tinylm_run(start, grads, settings) -> dict:
        """{t: {"param", "m", "v"}} after each step t of tinylm's AdamW."""
        param = Parameter(start.copy())
        optimizer = AdamW([param], **settings)
        states = {}
        for t, grad in enumerate(grads, 1):
            param.grad[...] = grad
            optimizer.step()
            moments = optimizer.state[0]
            states[t] = {"param": param.data.copy(), "m": moments["exp_avg"].copy(),
                         "v": moments["exp_avg_sq"].copy()}
        return states

    def _student_run(self, student, path, start, grads, settings) -> dict:
        step = getattr(student, self.function)
        (beta1, beta2), lr = settings["betas"], settings["lr"]
        param, m, v = start.copy(), numpy.zeros_like(start), numpy.zeros_like(start)
        states = {}
        for t, grad in enumerate(grads, 1):
            result = call_student(path, self.function, step, param.copy(), grad.copy(),
                                  m.copy(), v.copy(), t, lr, beta1, beta2, settings["eps"],
                                  settings["weight_decay"])
            if not (isinstance(result, tuple) and len(result) == 3):
                raise StudentCodeFailed(self.function, f"error in {self.function}",
                                        f"{self.function} must return (param, m, v)")
            param, m, v = (numpy.asarray(a, dtype=numpy.float64) for a in result)
            states[t] = {"param": param, "m": m, "v": v}
        return states


# -- the exercises --------------------------------------------------------------------------

@dataclass(frozen=True)
class Exercise:
    """An exercise: the functions the student writes (name -> the stub's parameters) and
    the checks that score them."""

    name: str
    chapter: str
    summary: str
    functions: dict
    checks: tuple

    @property
    def stub(self) -> str:
        return f"exercises/stubs/{self.name}.py"


def _small(rng, *shape, scale=1.0):
    return scale * rng.standard_normal(shape)


def _repeated_ids(rng):
    """ids [2, 5] drawn from 4 values (so ids repeat) for a table of 6 rows (so some rows are
    never used and get a zero gradient)."""
    return {"ids": rng.integers(0, 4, size=(2, 5)), "W": _small(rng, 6, 3)}


def _lstm_inputs(rng, B=3, I=4, H=5):
    return {"x": _small(rng, B, I), "h_prev": _small(rng, B, H, scale=0.5),
            "c_prev": _small(rng, B, H, scale=0.5), "W_x": _small(rng, I, 4 * H, scale=0.5),
            "W_h": _small(rng, H, 4 * H, scale=0.5), "b": _small(rng, 4 * H, scale=0.1)}


def _gru_inputs(rng, B=3, I=4, H=5):
    return {"x": _small(rng, B, I), "h_prev": _small(rng, B, H, scale=0.5),
            "W_x": _small(rng, I, 3 * H, scale=0.5), "W_h": _small(rng, H, 3 * H, scale=0.5),
            "b_x": _small(rng, 3 * H, scale=0.1), "b_h": _small(rng, 3 * H, scale=0.1)}


def _tinylm_gelu_tanh(x):
    return gelu_forward(x, approximate="tanh")


def _tinylm_causal_attention(q, k, v):
    return scaled_dot_product_attention_forward(q, k, v, causal=True)


EXERCISES = {exercise.name: exercise for exercise in [
    Exercise("linear", "03", "the affine layer y = x W + b",
             {"linear_forward": ("x", "W", "b"), "linear_backward": ("dy", "cache")},
             (PairCheck("linear_forward", "linear_backward", ("y",),
                        lambda rng: {"x": _small(rng, 4, 3), "W": _small(rng, 3, 5),
                                     "b": _small(rng, 5)},
                        linear_forward, linear_backward),)),
    Exercise("gelu", "03", "the GELU activation in GPT-2's tanh form",
             {"gelu_forward": ("x",), "gelu_backward": ("dout", "cache")},
             (PairCheck("gelu_forward", "gelu_backward", ("y",),
                        lambda rng: {"x": _small(rng, 3, 7, scale=2.0)},
                        _tinylm_gelu_tanh, gelu_backward),)),
    Exercise("softmax_cross_entropy", "03", "softmax, and softmax fused with cross-entropy",
             {"softmax_forward": ("z",), "softmax_backward": ("dp", "cache"),
              "cross_entropy_forward": ("logits", "targets"),
              "cross_entropy_backward": ("dloss", "cache")},
             (PairCheck("softmax_forward", "softmax_backward", ("p",),
                        lambda rng: {"z": _small(rng, 4, 6, scale=2.0)},
                        softmax_forward, softmax_backward),
              PairCheck("cross_entropy_forward", "cross_entropy_backward", ("loss",),
                        lambda rng: {"logits": _small(rng, 5, 7, scale=2.0),
                                     "targets": rng.integers(0, 7, size=5)},
                        cross_entropy_forward, cross_entropy_backward))),
    Exercise("layernorm", "03", "layer normalisation over the features of each row",
             {"layernorm_forward": ("x", "gamma", "beta", "eps"),
              "layernorm_backward": ("dy", "cache")},
             (PairCheck("layernorm_forward", "layernorm_backward", ("y",),
                        lambda rng: {"x": _small(rng, 4, 6), "gamma": _small(rng, 6),
                                     "beta": _small(rng, 6), "eps": 1e-5},
                        layernorm_forward, layernorm_backward),)),
    Exercise("embedding", "03", "table lookup, and its scatter-add backward",
             {"embedding_forward": ("ids", "W"), "embedding_backward": ("dout", "cache")},
             (PairCheck("embedding_forward", "embedding_backward", ("out",), _repeated_ids,
                        embedding_forward, embedding_backward),)),
    Exercise("adam", "04", "one AdamW update step (decoupled weight decay)",
             {"adamw_step": ("param", "grad", "m", "v", "t", "lr", "beta1", "beta2", "eps",
                             "weight_decay")},
             (AdamWCheck(),)),
    Exercise("lstm_cell", "06", "one step of an LSTM, forward and backward",
             {"lstm_cell_forward": ("x", "h_prev", "c_prev", "W_x", "W_h", "b"),
              "lstm_cell_backward": ("dout", "cache")},
             (PairCheck("lstm_cell_forward", "lstm_cell_backward", ("h", "c"), _lstm_inputs,
                        lstm_cell_forward, lstm_cell_backward),)),
    Exercise("gru_cell", "06", "one step of a GRU (PyTorch's variant), forward and backward",
             {"gru_cell_forward": ("x", "h_prev", "W_x", "W_h", "b_x", "b_h"),
              "gru_cell_backward": ("dh", "cache")},
             (PairCheck("gru_cell_forward", "gru_cell_backward", ("h",), _gru_inputs,
                        gru_cell_forward, gru_cell_backward),)),
    Exercise("attention", "07", "causal scaled dot-product attention, forward and backward",
             {"causal_attention_forward": ("q", "k", "v"),
              "causal_attention_backward": ("dout", "cache")},
             (PairCheck("causal_attention_forward", "causal_attention_backward", ("out",),
                        lambda rng: {"q": _small(rng, 2, 4, 3), "k": _small(rng, 2, 4, 3),
                                     "v": _small(rng, 2, 4, 2)},
                        _tinylm_causal_attention, scaled_dot_product_attention_backward),)),
]}


def get_exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise KeyError(f"no exercise named {name!r}; the exercises are: "
                       f"{', '.join(EXERCISES)} (tinylm check --list describes them).")
    return EXERCISES[name]


# -- loading the student's file -------------------------------------------------------------

def load_student_file(path: Path, exercise: Exercise):
    """Import ``path`` as a module (by its path: no install, no pickle) and check that it
    defines each of the exercise's functions, callable with the stub's arguments."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file; copy {exercise.stub} and pass the "
                                "path of your copy.")
    module_name = f"tinylm_exercise_{exercise.name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module            # dataclasses in the file look themselves up
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise ValueError(f"{path.name}, line {error.lineno}: {error.msg}; fix the syntax "
                         "error first.") from None
    except Exception as error:  # noqa: BLE001 - the student's module may raise anything
        where = _where_in(path, error)
        raise ValueError(f"{path} raised {type(error).__name__}: {error} when loaded"
                         + (f" (at {where})" if where else "")) from None
    finally:
        del sys.modules[module_name]
    problems = [_signature_problem(module, name, params)
                for name, params in exercise.functions.items()]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(f"{path.name} does not define what exercise {exercise.name!r} asks "
                         "for:\n  " + "\n  ".join(problems)
                         + f"\n(copy the signatures from {exercise.stub}).")
    return module


def _signature_problem(module, name: str, params: tuple) -> str:
    """'' when ``module.name`` can be called with ``params`` positionally, else why not."""
    expected = f"{name}({', '.join(params)})"
    function = getattr(module, name, None)
    if function is None:
        return f"missing function {expected}"
    if not callable(function):
        return f"{name} is not a function; define {expected}"
    try:
        inspect.signature(function).bind(*params)
    except TypeError:
        return (f"{name}{inspect.signature(function)} cannot be called as {expected}")
    except ValueError:                         # a builtin without a signature: trust it
        return ""
    return ""


# -- the report -----------------------------------------------------------------------------

@dataclass
class CheckReport:
    """Every row of one exercise checked on one file; ``str(report)`` is the table."""

    exercise: Exercise
    path: Path
    rows: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    def __str__(self) -> str:
        width = max(len(r.check) for r in self.rows) + 2
        lines = [f"exercise {self.exercise.name} (chapter {self.exercise.chapter}: "
                 f"{self.exercise.summary}) on {self.path.name}",
                 f"  {'check':<{width}}{'rel error':>10}{'tolerance':>11}  result"]
        for r in self.rows:
            error = "-" if r.rel_error is None else f"{r.rel_error:.1e}"
            lines.append(f"  {r.check:<{width}}{error:>10}{r.tolerance:>11.0e}  {r.result}")
        details = list(dict.fromkeys(r.detail for r in self.rows if r.detail))
        lines += [""] + details if details else []
        lines.append(self.verdict())
        return "\n".join(lines)

    def verdict(self) -> str:
        """The last line: all right, or what to fix first."""
        passing = sum(r.passed for r in self.rows)
        count = f"{passing}/{len(self.rows)} checks pass"
        if self.passed:
            return f"PASSED: {count}; your {self.exercise.name} is right."
        unwritten = list(dict.fromkeys(r.problem.split(": ", 1)[1] for r in self.rows
                                       if r.problem.startswith("not written yet")))
        if unwritten and all(r.passed or r.problem.startswith(("not written", "waits"))
                             for r in self.rows):
            return (f"NOT DONE: {count}; write {', '.join(unwritten)} next "
                    "(the docstrings give the maths).")
        first = next(r for r in self.rows if not r.passed and not r.problem.startswith("waits"))
        return f"FAILED: {count}; next, {first.fix}."


@contextlib.contextmanager
def _reference_kernels():
    """tinylm's side runs its plain array-module reference (no kernel compilation)."""
    saved = os.environ.get(KERNEL_ENV_VAR)
    os.environ[KERNEL_ENV_VAR] = "reference"
    try:
        yield
    finally:
        if saved is None:
            del os.environ[KERNEL_ENV_VAR]
        else:
            os.environ[KERNEL_ENV_VAR] = saved


def check(name: str, path) -> CheckReport:
    """Check the student's file ``path`` for exercise ``name``."""
    exercise = get_exercise(name)
    path = Path(path).resolve()
    student = load_student_file(path, exercise)
    report = CheckReport(exercise, path)
    with _reference_kernels(), numpy.errstate(all="ignore"):
        for pair in exercise.checks:
            report.rows += pair.rows(student, path)
    return report
