"""Shortened copies of the course notebooks for the browser tests."""

from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def notebook_up_to(root: Path, notebook: str, marker: str, name: str) -> str:
    """Write ``root / name``: ``notebook`` in the smoke profile, cut after the first code cell
    whose source contains ``marker`` (the cells a browser test needs); return ``name``.

    The later cells are the notebook tests' to run."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    cells = []
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = 'profile = "smoke"'
        cells.append(cell)
        if cell.cell_type == "code" and marker in cell.source:
            break
    else:
        raise AssertionError(f"{notebook} has no code cell with {marker!r}")
    nb.cells = cells
    nbformat.write(nb, root / name)
    return name
