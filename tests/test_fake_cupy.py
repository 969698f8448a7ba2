"""The fake device itself (tests/fake_cupy): every name it exposes is CuPy's, with a
signature CuPy accepts (checked against the committed snapshot of CuPy's API, so no CuPy is
needed), and it refuses what CuPy refuses.

Compatible signatures: each parameter the fake declares is one of CuPy's, of the same kind
(positional-only, positional-or-keyword, keyword-only, ``*args``, ``**kwargs``), at the
same position if positional, with the same default; the fake may leave trailing ones out
(a call that uses one then fails loudly instead of being accepted by the fake alone).
"""

from __future__ import annotations

import inspect
import json
import types
from pathlib import Path

import numpy as np
import pytest

import fake_cupy

SNAPSHOT = json.loads((Path(fake_cupy.__file__).parent / "cupy_api.json").read_text())
FAKE_ONLY = {"SyncLog", "syncs", "UFUNCS", "cupyx_modules"}    # the suite's own helpers
NAMESPACES = {"cupy": fake_cupy, "cupy.random": fake_cupy.random,
              "cupy.linalg": fake_cupy.linalg, "cupy.cuda": fake_cupy.cuda,
              "cupy.cuda.runtime": fake_cupy.cuda.runtime,
              "cupyx.scipy.special": fake_cupy.cupyx_modules()["cupyx.scipy.special"]}
CLASSES = {"cupy.ndarray": fake_cupy.ndarray,
           "cupy.random.Generator": fake_cupy.random.Generator,
           "cupy.random.XORWOW": fake_cupy.random.XORWOW,
           "cupy.random.Philox4x3210": fake_cupy.random.Philox4x3210,
           "cupy.cuda.Device": fake_cupy.cuda.Device}


def _exposed(namespace):
    """The public names of a fake namespace (not the modules it imports, nor helpers)."""
    own_modules = {m for m in vars(namespace).values()
                   if isinstance(m, types.ModuleType) and m.__name__.startswith("fake_cupy.")}
    return sorted(name for name, value in vars(namespace).items()
                  if not name.startswith("_") and name not in FAKE_ONLY
                  and not (isinstance(value, types.ModuleType) and value not in own_modules))


def _params(text: str, drop_self: bool):
    params = list(inspect.signature(eval(f"lambda {text.strip()[1:-1]}: 0")).parameters.values())
    return params[1:] if drop_self and params and params[0].name in ("self", "cls") else params


def _incompatible(fake_sig: inspect.Signature, cupy_text: str | None, method: bool) -> str:
    """Why the fake's signature is not CuPy's (empty when it is), per the module docstring.
    CuPy states no signature for a few compiled functions: then only the name is checked."""
    if cupy_text is None:
        return ""
    real = _params(cupy_text.replace("<class 'float'>", "float")
                   .replace("<class 'numpy.float64'>", "None")
                   .replace("<class 'numpy.int64'>", "None"), drop_self=method)
    by_name = {p.name: (i, p) for i, p in enumerate(real)}
    fake = list(fake_sig.parameters.values())
    if method and fake and fake[0].name == "self":
        fake = fake[1:]
    for i, p in enumerate(fake):
        if p.name not in by_name:
            return f"parameter {p.name!r} is not CuPy's {cupy_text}"
        j, q = by_name[p.name]
        if p.kind != q.kind:
            return f"parameter {p.name!r} is {p.kind.description}, CuPy's is {q.kind.description}"
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and i != j:
            return f"parameter {p.name!r} is at position {i}, CuPy's at {j}"
        if p.default is not p.empty and q.default is not q.empty and \
                not isinstance(q.default, (type, type(None))) and p.default != q.default:
            return f"parameter {p.name!r} defaults to {p.default!r}, CuPy's to {q.default!r}"
    return ""


def _signature(value):
    try:
        return inspect.signature(value)
    except (TypeError, ValueError):
        return None


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_every_fake_name_is_cupys_with_a_compatible_signature(namespace):
    real = SNAPSHOT["namespaces"][namespace]
    problems = []
    for name in _exposed(NAMESPACES[namespace]):
        value = getattr(NAMESPACES[namespace], name)
        if name not in real:
            problems.append(f"{namespace}.{name}: CuPy {SNAPSHOT['cupy_version']} has no such name")
            continue
        entry = real[name]
        if entry["kind"] == "ufunc":
            if not isinstance(value, fake_cupy.ufunc) or (value.nin, value.nout) != (
                    entry["nin"], entry["nout"]):
                problems.append(f"{namespace}.{name}: CuPy's is a ufunc with nin={entry['nin']}")
        elif entry["kind"] == "function" and callable(value) and _signature(value) is not None:
            why = _incompatible(_signature(value), entry["signature"], method=False)
            problems.append(f"{namespace}.{name}: {why}") if why else None
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("cls_name", sorted(CLASSES))
def test_every_fake_method_is_cupys_with_a_compatible_signature(cls_name):
    real = SNAPSHOT["classes"][cls_name]
    problems = []
    for name, value in vars(CLASSES[cls_name]).items():
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
            continue
        if name in ("__module__", "__doc__", "__slots__", "__dict__", "__weakref__",
                    "__qualname__", "__firstlineno__", "__static_attributes__"):
            continue
        if name not in real:
            problems.append(f"{cls_name}.{name}: CuPy's class has no such attribute")
        elif callable(value) and not name.startswith("__") and real[name]["kind"] == "method":
            why = _incompatible(inspect.signature(value), real[name]["signature"], method=True)
            problems.append(f"{cls_name}.{name}: {why}") if why else None
    assert not problems, "\n".join(problems)


def test_ufunc_methods_are_cupys():
    add = SNAPSHOT["namespaces"]["cupy"]["add"]["methods"]
    for method in ("at", "reduce", "accumulate", "outer"):
        why = _incompatible(inspect.signature(getattr(fake_cupy.add, method)), add[method],
                            method=True)
        assert not why, f"ufunc.{method}: {why}"


def test_the_snapshot_records_a_cupy_with_what_tinylm_uses():
    """cupy.add.at exists from CuPy 12; the device generator's state is a method."""
    assert SNAPSHOT["namespaces"]["cupy"]["add"]["methods"]["at"]
    assert SNAPSHOT["classes"]["cupy.random.XORWOW"]["state"]["kind"] == "method"
    assert "permutation" not in SNAPSHOT["classes"]["cupy.random.Generator"]
    assert "frompyfunc" not in SNAPSHOT["namespaces"]["cupy"]


# -- what the fake refuses, as CuPy does ----------------------------------------------------

def test_no_implicit_conversion_to_numpy():
    a = fake_cupy.arange(3)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.array([1.0, 2.0])[:] = a  # noqa: B015 - assigning a device array into host memory


@pytest.mark.parametrize("mix", [lambda d, h: d + h, lambda d, h: h * d,
                                 lambda d, h: fake_cupy.where(d > 0, h, d),
                                 lambda d, h: fake_cupy.concatenate([d, h]),
                                 lambda d, h: np.maximum(h, d),
                                 lambda d, h: fake_cupy.add.at(d, [0], h[:1])])
def test_device_and_host_arrays_do_not_mix(mix):
    with pytest.raises(TypeError, match="Unsupported type"):
        mix(fake_cupy.arange(3.0), np.arange(3.0))


def test_scalars_mix_and_numpy_functions_dispatch_to_the_device():
    d = fake_cupy.arange(3.0)
    assert isinstance(d * np.float32(2) + 1, fake_cupy.ndarray)
    assert isinstance(np.exp(d), fake_cupy.ndarray)           # NEP 13, as CuPy's
    assert isinstance(np.concatenate([d, d]), fake_cupy.ndarray)  # NEP 18
    assert isinstance(d.sum(), fake_cupy.ndarray) and d.sum().ndim == 0


def test_cupys_known_restrictions():
    d = fake_cupy.arange(3)
    with pytest.raises(ValueError, match="repeats"):
        fake_cupy.repeat(d, d)
    with pytest.raises(TypeError):
        [1, 2, 3][d[0]]                          # no __index__ on CuPy's arrays
    with pytest.raises(AttributeError):
        fake_cupy.random.default_rng(0).permutation(3)
    with pytest.raises(AttributeError):
        fake_cupy.frompyfunc
    assert isinstance(fake_cupy.random.default_rng(0).bit_generator.state(), int)


def test_synchronisations_are_counted_where_they_are_asked_for():
    d = fake_cupy.arange(4)
    fake_cupy.syncs.clear()
    int(d[0]), float(d.sum()), bool(d.any()), d.item() if d.size == 1 else d[1].item()
    d[d > 1], fake_cupy.asnumpy(d), fake_cupy.nonzero(d), d.tolist()
    kinds = [kind for kind, _ in fake_cupy.syncs.events]
    assert kinds == ["int()", "float()", "bool()", "item()", "boolean mask index", "asnumpy()",
                     "nonzero()", "tolist()"]
    assert all("test_fake_cupy.py" in where for _, where in fake_cupy.syncs.events)
    fake_cupy.syncs.clear()
    d + d, d[1:], d[fake_cupy.asarray([0, 2])], fake_cupy.take(d, d), d.reshape(2, 2)
    assert len(fake_cupy.syncs) == 0


def test_in_place_operations_and_views_write_through():
    d = fake_cupy.zeros((2, 3))
    d[0] += 1.0
    d.reshape(-1)[5] = 7.0
    fake_cupy.add.at(d, (fake_cupy.asarray([1, 1]), fake_cupy.asarray([0, 0])), 2.0)
    np.testing.assert_array_equal(fake_cupy.asnumpy(d), [[1, 1, 1], [4, 0, 7]])


def test_the_fixture_puts_the_fake_where_tinylm_finds_cupy(fake_gpu):
    from tinylm import backend
    assert backend.gpu_available()
    a = backend.to_device(np.arange(3), "gpu")
    assert isinstance(a, fake_gpu.ndarray) and backend.get_array_module(a) is fake_gpu
    assert backend.device_of(a) == "gpu" and backend.device_of(np.arange(3)) == "cpu"
    assert isinstance(backend.default_rng(0, "gpu").random(2), fake_gpu.ndarray)
