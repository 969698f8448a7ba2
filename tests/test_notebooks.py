"""Every notebook runs top to bottom, headless, in fast mode (TINYLM_FAST=1), so none can rot."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("TINYLM_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} produced errors: {errors}"


def test_every_chapter_has_a_notebook():
    chapters = {p.stem for p in (NOTEBOOK_DIR.parent / "chapters").glob("[0-9][0-9]-*.md")}
    notebooks = {p.stem for p in NOTEBOOKS}
    assert chapters <= notebooks, \
        f"chapters without a notebook: {sorted(chapters - notebooks)}"
