"""Build the course notebooks from their sources in ``lessons/``.

Each lesson is a jupytext percent file, ``lessons/NN_name.py`` (ruff lints it; edit it
like any script, or open it as a notebook in JupyterLab with jupytext). The build
writes ``notebooks/NN_name.ipynb`` without outputs, with stable cell ids and the
course's kernelspec::

    python -m tools.build_notebooks            # rebuild every notebook
    python -m tools.build_notebooks --check    # fail if a notebook differs from its source

A code cell tagged ``solution`` is an exercise solution. In the built notebook it is
a collapsed markdown block (``<details>``), so Run All never executes it;
``build(source, solutions=True)`` keeps it as a code cell (tests run it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
NOTEBOOKS = ROOT / "notebooks"
SOLUTION_TAG = "solution"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

__all__ = ["SOLUTION_TAG", "build", "lesson_sources", "notebook_for", "main"]


def lesson_sources() -> list[Path]:
    """Every lesson source, in course order."""
    return sorted(LESSONS.glob("[0-9][0-9]*_*.py"))


def notebook_for(source: Path) -> Path:
    """Where the notebook built from ``source`` is stored."""
    return NOTEBOOKS / f"{Path(source).stem}.ipynb"


def _solution_markdown(code: str) -> str:
    return (f"<details><summary>Show a solution</summary>\n\n```python\n{code}\n```\n\n"
            "</details>")


def build(source: str | Path, *, solutions: bool = False) -> nbformat.NotebookNode:
    """The notebook of one lesson source.

    ``solutions=True`` keeps exercise solutions as code cells (to run them in tests);
    by default they become collapsed markdown blocks that Run All does not execute.
    """
    source = Path(source)
    parsed = jupytext.read(source, fmt="py:percent")
    cells = []
    for cell in parsed.cells:
        text = cell.source.strip("\n")
        tags = list(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and SOLUTION_TAG in tags and not solutions:
            new = nbformat.v4.new_markdown_cell(_solution_markdown(text))
        elif cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(text)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(text)
        else:
            raise ValueError(f"{source.name}: unexpected {cell.cell_type} cell; "
                             "lessons hold only code and markdown cells.")
        if tags:
            new.metadata["tags"] = tags
        cells.append(new)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
    nbformat.validate(nb)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """The notebook's file contents, exactly as :func:`main` writes them."""
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.build_notebooks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail if a notebook differs from its source")
    parser.add_argument("lessons", nargs="*", type=Path,
                        help="lesson sources to build (default: all of lessons/)")
    args = parser.parse_args(argv)
    sources = args.lessons or lesson_sources()
    stale = []
    for source in sources:
        target = notebook_for(source)
        text = render(build(source))
        current = target.read_text() if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(target)
        else:
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"out of date: {names}; run `make notebooks`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
