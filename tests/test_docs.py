"""Docs that cannot go stale: every chapter, file and test the text names exists, and every
committed notebook is exactly what its builder in notebooks/build/ writes.

Each failure lists the stale references as ``file:line: reference``, so a renamed module or a
moved function shows up with every place that still cites the old name.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
BUILD = ROOT / "notebooks" / "build"

# Where a chapter may be cited: the code, the tests, the notebook builders, README, chapters.
CITING_FILES = sorted([*(ROOT / "tinylm").rglob("*.py"), *(ROOT / "tests").rglob("*.py"),
                       *BUILD.glob("*.py"), ROOT / "README.md", *CHAPTERS.glob("*.md"),
                       *(CHAPTERS / "solutions").glob("*.md")])
# Where a file, module or test may be cited: the prose for readers (README, the chapters and
# their solutions, and the notebooks' text, which lives in their builders).
PROSE_FILES = sorted([ROOT / "README.md", *CHAPTERS.glob("*.md"),
                      *(CHAPTERS / "solutions").glob("*.md"), *BUILD.glob("build_*.py")])

# The project numbers its chapters with two digits ("chapter 03", "ch. 07", "chapters 07 and
# 10"); a single digit ("chapter 6.5", "its chapter 6") is a chapter of a cited book.
CHAPTER_REF = re.compile(r"\b(?:chapters?|ch\.)\s+(\d\d\b(?:\s*(?:,|and|/|or|-|–)\s*\d\d\b)*)",
                         re.IGNORECASE)
TWO_DIGITS = re.compile(r"\b\d\d\b")
FILE_REF = re.compile(r"(?<![\w/.])((?:tinylm|tests)/[\w/.*-]*[\w/*])(?:::(\w+))?")
MODULE_REF = re.compile(r"(?<![\w/.])(tinylm(?:\.\w+)+)")


def _lines(path: Path):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        yield number, line


def _where(path: Path, number: int) -> str:
    return f"{path.relative_to(ROOT)}:{number}"


def _written_chapters() -> set[str]:
    return {p.name[:2] for p in CHAPTERS.glob("[0-9][0-9]-*.md")}


def test_every_cited_chapter_exists():
    """A chapter that is planned but not written yet must not be cited as if it existed."""
    written = _written_chapters()
    stale = []
    for path in CITING_FILES:
        if path == Path(__file__).resolve():
            continue
        for number, line in _lines(path):
            for match in CHAPTER_REF.finditer(line):
                for nn in TWO_DIGITS.findall(match.group(1)):
                    if nn not in written:
                        stale.append(f"{_where(path, number)}: cites chapter {nn} "
                                     f"({match.group(0)!r}), but there is no chapters/{nn}-*.md")
    assert not stale, ("citations of chapters that do not exist (written: "
                       f"{', '.join(sorted(written))}):\n" + "\n".join(stale))


def _test_names(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"^\s*(?:async\s+)?def\s+(test_\w+)", text, re.MULTILINE)) | \
        set(re.findall(r"^class\s+(Test\w+)", text, re.MULTILINE))


def _file_exists(ref: str) -> bool:
    if "*" in ref:
        return any(ROOT.glob(ref))
    return (ROOT / ref.rstrip("/")).exists()


def test_every_cited_file_and_test_exists():
    """`tinylm/...py`, `tinylm/.../`, `tests/test_x.py` and `tests/test_x.py::test_name`, in
    the prose and in the code's docstrings and comments alike (a moved module leaves both)."""
    stale = []
    for path in CITING_FILES:
        if path == Path(__file__).resolve():
            continue
        for number, line in _lines(path):
            for match in FILE_REF.finditer(line):
                ref, test_name = match.group(1), match.group(2)
                if not _file_exists(ref):
                    stale.append(f"{_where(path, number)}: {ref} does not exist")
                elif test_name and test_name not in _test_names(ROOT / ref):
                    stale.append(f"{_where(path, number)}: {ref} has no test {test_name}")
    assert not stale, "cited files that do not exist:\n" + "\n".join(stale)


def _resolves(dotted: str) -> bool:
    """``tinylm.a.b.c``: the longest importable module prefix, then attributes for the rest."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except (ImportError, ValueError):
            continue
        obj = importlib.import_module(name)
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_cited_module_exists():
    """Dotted names such as ``tinylm.evaluate.evaluate_lm`` import and resolve."""
    stale = []
    for path in PROSE_FILES:
        for number, line in _lines(path):
            for match in MODULE_REF.finditer(line):
                if not _resolves(match.group(1)):
                    stale.append(f"{_where(path, number)}: {match.group(1)} does not resolve")
    assert not stale, "cited modules or names that do not exist:\n" + "\n".join(stale)


BUILDERS = sorted(BUILD.glob("build_[0-9][0-9].py"))


def _execute():
    """notebooks/build/execute.py, the one place that loads builders and compares cells
    (it needs nbformat, so it is imported only by the tests that use it)."""
    pytest.importorskip("nbformat")
    sys.path.insert(0, str(BUILD))
    try:
        import execute
    finally:
        sys.path.remove(str(BUILD))
    return execute


def _load_builder(path: Path):
    """Import a builder as a module (its ``__main__`` block, which writes files, does not run)."""
    return _execute().load_builder(path.stem.removeprefix("build_"))


@pytest.mark.parametrize("builder", BUILDERS, ids=[p.stem for p in BUILDERS])
def test_committed_notebook_matches_its_builder(builder):
    """The committed notebook's cells (type and source; not outputs, execution counts or the
    inserted mode cell) are those its builder writes, and it was executed (it has outputs).
    Rebuild and execute with ``make notebooks-execute`` (notebooks/build/execute.py)."""
    nbformat = pytest.importorskip("nbformat")
    module = _load_builder(builder)
    committed_path = Path(module.OUT)
    assert committed_path.exists(), f"{builder.name} writes {committed_path.name}, not committed"
    execute = _execute()
    cells_of, mode_tag = execute.cells_of, execute.MODE_TAG
    built = cells_of(module.build_notebook(module.CELLS))
    executed = nbformat.read(committed_path, as_version=4)
    committed = cells_of(executed)
    where = f"{committed_path.relative_to(ROOT)} (built by notebooks/build/{builder.name})"
    assert len(built) == len(committed), \
        f"{where}: the builder writes {len(built)} cells, the notebook has {len(committed)}"
    stale = []
    for index, ((kind_b, src_b), (kind_c, src_c)) in enumerate(zip(built, committed)):
        if kind_b != kind_c:
            stale.append(f"cell {index}: builder writes a {kind_b} cell, notebook has {kind_c}")
        elif src_b != src_c:
            first = next((n for n, (a, b) in enumerate(zip(src_b.splitlines() + [""],
                                                           src_c.splitlines() + [""]), 1)
                          if a != b), 1)
            stale.append(f"cell {index}, line {first}: builder "
                         f"{(src_b.splitlines() + [''])[first - 1]!r} vs notebook "
                         f"{(src_c.splitlines() + [''])[first - 1]!r}")
    assert not stale, (f"{where} is stale; rerun `make notebooks-execute`:\n"
                       + "\n".join(stale))
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code") \
        and any(mode_tag in c.get("metadata", {}).get("tags", []) for c in executed.cells), \
        f"{where} has no outputs: run `make notebooks-execute` (not only the builder)"


def test_every_notebook_has_a_builder():
    pytest.importorskip("nbformat")                  # the builders import it
    built = {Path(_load_builder(b).OUT).name for b in BUILDERS}
    committed = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert committed <= built, f"notebooks without a builder: {sorted(committed - built)}"
