"""Shared by the notebook builders: turns a list of ("md" | "code", source) cells into a
notebook without outputs (the test suite runs each notebook headless)."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def build_notebook(cells) -> nbformat.NotebookNode:
    """cells: [("md" or "code", source), ...] -> a Python 3 notebook."""
    notebook = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src)
                                   for kind, src in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    return notebook
