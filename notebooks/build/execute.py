"""Builds each notebook from its builder and executes it in place, so that the committed
notebooks show their outputs (figures included) on the repository's page.

    .venv/bin/python notebooks/build/execute.py            # the notebooks whose builder changed
    .venv/bin/python notebooks/build/execute.py --all      # every notebook
    .venv/bin/python notebooks/build/execute.py 03 07      # the ones named

(``make notebooks-execute`` runs the first form; ``make notebooks-execute ALL=1`` the second.)
A notebook counts as changed when its cells (type and source) differ from its builder's, when
it has no outputs yet, or when its mode below differs from the one its outputs come from.

Each notebook runs in the mode of the table MODES: ``full`` where its full run takes at most
about 3 minutes on a 2-core CPU, ``fast`` (``TINYLM_FAST=1``, the test suite's settings)
otherwise. The script inserts a markdown cell after the title saying which mode the outputs
come from; tests/test_docs.py ignores that cell, the outputs and the execution counts when it
checks that a notebook is what its builder writes.

The kernel runs in a fresh temporary directory (what a notebook writes under ``runs/`` goes
there), with one BLAS thread, the inline matplotlib backend (figures become PNG outputs) and
no ``TINYLM_FIGURES_DIR``; the chapters' figures are left as they were. Cell ids are numbered
and timing metadata is not recorded, so that running again changes little but the outputs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell

BUILD = Path(__file__).resolve().parent
NOTEBOOKS = BUILD.parent
ROOT = NOTEBOOKS.parent
FIGURES = ROOT / "chapters" / "figures"

# The mode each notebook's committed outputs come from, chosen by timing its full run on the
# 2-core CPU (seconds, with other jobs sharing the machine): full where that took at most about
# 3 minutes, fast otherwise.
MODES = {
    "01": "full",    # full run  64 s
    "02": "full",    # full run  27 s
    "03": "full",    # full run  30 s
    "04": "full",    # full run  13 s
    "05": "full",    # full run 138 s
    "06": "fast",    # full run over 250 s (stopped)
    "07": "fast",    # full run over 200 s (stopped)
    "08": "full",    # full run  93 s
    "09": "full",    # full run  33 s
    "10": "fast",    # full run 254 s
    "11": "full",    # full run 158 s
}

MODE_TAG = "execution-mode"          # the tag of the inserted cell (tests/test_docs.py skips it)
MODE_TEXT = {
    "fast": "fast mode (`TINYLM_FAST=1`: small settings, the test suite's)",
    "full": "full mode (`TINYLM_FAST` unset: the chapter's settings)",
}


def load_builder(number: str):
    path = BUILD / f"build_{number}.py"
    sys.path.insert(0, str(BUILD))
    try:
        spec = importlib.util.spec_from_file_location(f"_execute_build_{number}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BUILD))
    return module


def cells_of(notebook) -> list[tuple[str, str]]:
    """(type, source) of every cell but the inserted mode cell."""
    return [(c.cell_type, c.source) for c in notebook.cells
            if MODE_TAG not in c.get("metadata", {}).get("tags", [])]


def executed_mode(notebook) -> str | None:
    return notebook.metadata.get("tinylm", {}).get("executed_mode")


def is_stale(number: str) -> bool:
    module = load_builder(number)
    out = Path(module.OUT)
    if not out.exists():
        return True
    committed = nbformat.read(out, as_version=4)
    return (cells_of(committed) != cells_of(module.build_notebook(module.CELLS))
            or executed_mode(committed) != MODES[number])


def mode_cell(mode: str):
    cell = new_markdown_cell(
        f"*Outputs below were produced by `make notebooks-execute` in {MODE_TEXT[mode]} on a "
        "2-core CPU, in a fresh working directory; your timings will differ, and so will "
        "whatever depends on them.*")
    cell.metadata["tags"] = [MODE_TAG]
    return cell


def _snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}


def _restore(folder: Path, before: dict[Path, bytes]) -> None:
    """Put back the chapters' figures a full run redrew, remove any it added."""
    for path, data in _snapshot(folder).items():
        if path not in before:
            path.unlink()
        elif data != before[path]:
            path.write_bytes(before[path])


def _scrub(notebook, workdir: str) -> None:
    """Volatile things out of the outputs and metadata: the temporary directory's name, the
    checkout's place (paths read as if the notebook ran in notebooks/, as JupyterLab runs it),
    timing and widget metadata."""
    replace = [(os.path.relpath(ROOT, workdir) + os.sep, ".." + os.sep), (workdir, "."),
               (str(Path(workdir).resolve()), "."), (str(ROOT), "<tinylm>")]

    def clean(text: str) -> str:
        for old, new in replace:
            text = text.replace(old, new)
        return text

    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:02d}"
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            if "text" in output:
                output.text = clean(output.text)
            if "traceback" in output:
                output.traceback = [clean(line) for line in output.traceback]
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/") and isinstance(value, str):
                    output.data[kind] = clean(value)
            output.get("metadata", {}).pop("execution", None)
    notebook.metadata.pop("widgets", None)


def execute(number: str, timeout: int, mode: str | None = None) -> float:
    import nbclient

    mode = mode or MODES[number]
    module = load_builder(number)
    notebook = module.build_notebook(module.CELLS)
    notebook.cells.insert(1, mode_cell(mode))
    env = {"OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    saved = {k: os.environ.get(k) for k in [*env, "TINYLM_FAST", "TINYLM_FIGURES_DIR"]}
    os.environ.update(env)
    os.environ.pop("TINYLM_FIGURES_DIR", None)
    if mode == "fast":
        os.environ["TINYLM_FAST"] = "1"
    else:
        os.environ.pop("TINYLM_FAST", None)
    figures = _snapshot(FIGURES)
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix=f"tinylm-nb{number}-") as workdir:
            client = nbclient.NotebookClient(
                notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                resources={"metadata": {"path": workdir}})
            client.execute()
            _scrub(notebook, workdir)
    finally:
        seconds = time.perf_counter() - start
        _restore(FIGURES, figures)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    notebook.metadata["tinylm"] = {"executed_mode": mode}
    nbformat.write(notebook, module.OUT)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("numbers", nargs="*", help="notebook numbers (01 ... 11); default: the "
                        "stale ones")
    parser.add_argument("--all", action="store_true", help="every notebook")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--mode", choices=["fast", "full"],
                        help="override the table MODES (to measure a notebook's run time)")
    args = parser.parse_args()
    unknown = [n for n in args.numbers if n not in MODES]
    if unknown:
        parser.error(f"no builder for {unknown}; known: {' '.join(MODES)}")
    numbers = args.numbers or [n for n in MODES if args.all or is_stale(n)]
    if not numbers:
        print("every notebook's outputs are up to date with its builder (--all reruns them)")
    for number in numbers:
        print(f"{number}: executing in {args.mode or MODES[number]} mode ...", flush=True)
        seconds = execute(number, args.timeout, args.mode)
        print(f"{number}: {seconds:.0f} s, wrote {Path(load_builder(number).OUT).name}",
              flush=True)
    sizes = sorted(NOTEBOOKS.glob("*.ipynb"))
    total = sum(p.stat().st_size for p in sizes)
    print(f"committed notebooks: {len(sizes)} files, {total / 1e6:.2f} MB in all")


if __name__ == "__main__":
    main()
