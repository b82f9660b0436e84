"""Tiny helper to write course notebooks from Python lists of cells (no outputs).

    from tools.nbbuild import md, code, write
    write("notebooks/00_start_here.ipynb", [md("# Title"), code("x = 1", tags=["parameters"])])
"""

from __future__ import annotations

import nbformat


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str, *, tags: list[str] | None = None, hidden: bool = False):
    cell = nbformat.v4.new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = tags
    if hidden:
        cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
    return cell


def solution(text: str):
    """An exercise solution, collapsed until the learner opens it."""
    return code(text, tags=["solution"], hidden=True)


def write(path: str, cells: list) -> None:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
    nbformat.validate(nb)
    nbformat.write(nb, path)
