"""The house rules that keep tinylm layered, checked on the source (ast, nothing imported).

(a) In tinylm/functional, nn, models and optim, array maths goes through the dispatched module
    (``xp = get_array_module(...)``) so CuPy arrays flow through: no ``import numpy`` and no
    ``np.``/``numpy.`` attribute use. A line that truly must use NumPy on the host says why
    with a ``# host-side: <reason>`` comment (there are none today).
(b) Imports only run downward: a module may import its own layer or lower ones, never higher.
(c) No module-level ``import torch`` anywhere in tinylm (benchmarks import it inside
    functions), and no pickle: no ``import pickle`` and no ``allow_pickle=True``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinylm"
SOURCES = sorted(PACKAGE.rglob("*.py"))

# Layer of each top-level module or package of tinylm: 1 backend, 2 kernels, 3 functional,
# 4 nn and models, 5 optim/data/evaluate/generate/checkpoint and train, 6 the commands.
# Within a layer, half steps order the pieces that build on each other: models on nn,
# train on optim/data/evaluate/generate/checkpoint.
LAYERS = {
    "backend": 1, "gradcheck": 1, "reference": 1, "typed_config": 1, "files": 1, "bleu": 1,
    "kernels": 2,
    "functional": 3,
    "nn": 4, "models": 4.5,
    "optim": 5, "data": 5, "evaluate": 5, "generate": 5, "beam_search": 5, "checkpoint": 5,
    "embeddings": 5, "interop": 5, "distributed": 5,
    "train": 5.5,
    "classify": 5.5, "compress": 5.5, "exercises": 5.5,
    "bench": 6, "commands": 6, "cli": 6, "__main__": 6,
}
NUMPY_FREE = ("functional", "nn", "models", "optim")
HOST_SIDE_MARKER = "# host-side:"
PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib"}


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top(dotted: str) -> str | None:
    """'tinylm.nn.linear' -> 'nn'; 'tinylm' itself -> None."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "tinylm" else None


def _imported_modules(tree: ast.AST, path: Path):
    """(line, dotted name) for every tinylm import, relative ones resolved; ``from tinylm
    import x`` yields tinylm.x."""
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "tinylm":
                for alias in node.names:
                    yield node.lineno, f"tinylm.{alias.name}"
            else:
                yield node.lineno, module


def _module_level(tree: ast.AST):
    """Every node executed at import time (function bodies excluded)."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _import_names(node) -> list:
    return [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("path", [p for p in SOURCES if _top(_module_name(p)) in NUMPY_FREE],
                         ids=_relative)
def test_array_maths_goes_through_the_dispatched_module(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    offending_lines = set()
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            uses = any(a.name == "numpy" or a.name.startswith("numpy.") for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            uses = (node.module or "").split(".")[0] == "numpy" and not node.level
        elif isinstance(node, ast.Attribute):
            uses = isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy")
        else:
            continue
        if uses and HOST_SIDE_MARKER not in lines[node.lineno - 1]:
            offending_lines.add(node.lineno)
    offences = [f"{_relative(path)}:{n}: {lines[n - 1].strip()}" for n in sorted(offending_lines)]
    assert not offences, ("use xp = get_array_module(...) (tinylm.backend) instead of NumPy, or "
                          f"mark a genuine host-side line with '{HOST_SIDE_MARKER} <reason>':\n"
                          + "\n".join(offences))


@pytest.mark.parametrize("path", SOURCES, ids=_relative)
def test_imports_only_run_downward(path):
    own = _top(_module_name(path))
    if own is None:                                   # tinylm/__init__.py: imports nothing
        return
    assert own in LAYERS, f"{_relative(path)}: add {own!r} to LAYERS in tests/test_layering.py"
    offences = []
    for line, module in _imported_modules(_parse(path), path):
        target = _top(module)
        if target is None:
            continue
        assert target in LAYERS, f"{_relative(path)}:{line} imports unknown tinylm.{target}"
        if LAYERS[target] > LAYERS[own]:
            offences.append(f"{_relative(path)}:{line}: {own} (layer {LAYERS[own]}) imports "
                            f"{module} (layer {LAYERS[target]})")
    assert not offences, "imports must run downward:\n" + "\n".join(offences)


@pytest.mark.parametrize("path", SOURCES, ids=_relative)
def test_no_module_level_torch_and_no_pickle(path):
    tree = _parse(path)
    offences = []
    for node in _module_level(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(n.split(".")[0] == "torch" for n in _import_names(node)):
                offences.append(f"{node.lineno}: module-level torch import (import it inside "
                                "the function that needs it; tinylm never requires torch)")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(n.split(".")[0] in PICKLERS for n in _import_names(node)):
                offences.append(f"{node.lineno}: pickle import (use .npz with "
                                "allow_pickle=False and JSON)")
        elif isinstance(node, ast.keyword) and node.arg == "allow_pickle":
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                offences.append(f"{getattr(node.value, 'lineno', '?')}: allow_pickle must be False")
    assert not offences, f"{_relative(path)}:\n" + "\n".join(offences)


def test_the_rules_see_every_package():
    tops = {_top(_module_name(p)) for p in SOURCES} - {None}
    assert {"backend", "kernels", "functional", "nn"} <= tops
    assert tops <= set(LAYERS), f"unknown parts of tinylm: {sorted(tops - set(LAYERS))}"
