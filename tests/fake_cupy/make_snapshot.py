"""Write ``cupy_api.json``: the names and signatures of the CuPy API that the fake device
(tests/fake_cupy) may imitate, read from an installed CuPy. Run it once, by hand, where CuPy
is installed (it imports without a GPU), and commit the JSON; the suite then checks the fake
against it without CuPy (tests/test_fake_cupy.py).

    python -m venv /tmp/cupy && /tmp/cupy/bin/pip install numpy cupy-cuda12x==14.2.0
    /tmp/cupy/bin/python tests/fake_cupy/make_snapshot.py

Recorded for every public name of the namespaces below: its kind (function, ufunc, class,
module, type or constant) and, where CuPy states one, its signature -- from
``inspect.signature`` for Python functions, from the first docstring line for Cython ones
(which is how CuPy's compiled functions describe themselves). Classes record their public
methods the same way; ufuncs record ``nin``, ``nout`` and their methods.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path

import cupy
import cupyx.scipy.special
import numpy

OUT = Path(__file__).with_name("cupy_api.json")
NAMESPACES = {"cupy": cupy, "cupy.random": cupy.random, "cupy.linalg": cupy.linalg,
              "cupy.cuda": cupy.cuda, "cupy.cuda.runtime": cupy.cuda.runtime,
              "cupyx.scipy.special": cupyx.scipy.special}
CLASSES = {"cupy.ndarray": cupy.ndarray, "cupy.random.Generator": cupy.random.Generator,
           "cupy.random.XORWOW": cupy.random.XORWOW,
           "cupy.random.Philox4x3210": cupy.random.Philox4x3210,
           "cupy.cuda.Device": cupy.cuda.Device}
UFUNC_METHODS = ("at", "reduce", "accumulate", "outer", "reduceat")
_DOC_SIGNATURE = re.compile(r"^[\w.]*?(\w+)\((.*)\)(\s*->.*)?$")


def _from_docstring(obj) -> str | None:
    """'(self, a, b=None)' from a Cython docstring's first line 'Name.f(self, a, b=None)'."""
    first = (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
    match = _DOC_SIGNATURE.match(first[0]) if first else None
    if not match:
        return None
    text = f"({match.group(2)})"  # Cython docstrings carry no annotations
    try:  # keep it only if Python can read it back as a parameter list
        inspect.signature(eval(f"lambda {text[1:-1]}: 0", {"numpy": numpy, "cupy": cupy}))
    except Exception:  # noqa: BLE001 - an unparsable docstring states no signature
        return None
    return text


def signature_of(obj) -> str | None:
    """The parameter list without annotations (CuPy annotates some functions, not others)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return _from_docstring(obj)
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def _kind(obj) -> str:
    if isinstance(obj, cupy.ufunc):
        return "ufunc"
    if inspect.ismodule(obj):
        return "module"
    if isinstance(obj, type):
        return "class"
    if callable(obj):
        return "function"
    return "constant"


def describe(obj) -> dict:
    entry = {"kind": _kind(obj)}
    if entry["kind"] == "ufunc":
        entry.update(nin=obj.nin, nout=obj.nout, methods={
            m: signature_of(getattr(obj, m)) for m in UFUNC_METHODS if hasattr(obj, m)})
    elif entry["kind"] in ("function", "class"):
        entry["signature"] = signature_of(obj)
    return entry


def describe_class(cls) -> dict:
    """Every attribute (dunders included: the fake's operators are checked too)."""
    members = {}
    for name in dir(cls):
        value = inspect.getattr_static(cls, name)
        if callable(value) or isinstance(value, (staticmethod, classmethod)):
            members[name] = {"kind": "method", "signature": signature_of(getattr(cls, name))}
        else:
            members[name] = {"kind": "attribute"}
    return members


def main() -> None:
    snapshot = {"cupy_version": cupy.__version__, "numpy_version": numpy.__version__,
                "python": sys.version.split()[0], "namespaces": {}, "classes": {}}
    for ns_name, module in NAMESPACES.items():
        snapshot["namespaces"][ns_name] = {
            name: describe(getattr(module, name)) for name in sorted(dir(module))
            if not name.startswith("_")}
    for cls_name, cls in CLASSES.items():
        snapshot["classes"][cls_name] = describe_class(cls)
    OUT.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} (CuPy {cupy.__version__})")


if __name__ == "__main__":
    main()
