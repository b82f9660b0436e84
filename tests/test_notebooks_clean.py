"""Every notebook is built from its lesson source, stored clean, and runs clean.

Static checks read ``notebooks/*.ipynb`` and ``lessons/*.py``; the executed checks
reuse the session's smoke run of each notebook (``run_notebook``, with the exercise
solutions run as code cells, so their self-checks are tested too).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from tlwidgets.exercises import EXERCISES, record_key
from tlwidgets.notebook import RECORD_MIME
from tools.build_notebooks import SOLUTION_TAG, build, lesson_sources, notebook_for, render

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOURCES = lesson_sources()
CHECK_CALL = re.compile(r'\bcheck\(\s*"(\d\d[a-z]?-\d+)"')


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_there_are_notebooks():
    assert any(nb.name == "00_start_here.ipynb" for nb in NOTEBOOKS)


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    built = {notebook_for(s).name for s in SOURCES}
    stored = {p.name for p in NOTEBOOKS}
    assert stored - built == set(), f"notebooks without a lesson source: {stored - built}"
    assert built - stored == set(), f"lessons never built (run `make notebooks`): {built - stored}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_notebook_equals_the_build_of_its_source(source):
    target = notebook_for(source)
    assert target.exists(), f"run `make notebooks` to build {target.name}"
    assert target.read_text() == render(build(source)), (
        f"{target.name} differs from lessons/{source.name}: edit the lesson, then run "
        "`make notebooks`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells)
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_has_a_profile_parameter_cell(path):
    cells = json.loads(path.read_text())["cells"]
    params = [c for c in cells if "parameters" in _tags(c)]
    assert len(params) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    assert "profile" in "".join(params[0]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_has_objectives_time_and_key_points(path):
    cells = json.loads(path.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown").lower()
    assert "time" in text.split("\n## ")[0], f"{path.name}: state the estimated time up front"
    assert "key points" in text, f"{path.name}: end with key points"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_has_a_smoke_test(path):
    stem = path.stem
    tests = list((ROOT / "tests").glob(f"test_notebook_{stem}.py"))
    assert tests, f"add tests/test_notebook_{stem}.py that runs {path.name} in the smoke profile"
    assert f'"{path.name}"' in tests[0].read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_run_all_cannot_execute_a_solution(path):
    nb = nbformat.read(path, as_version=4)
    solutions = [c for c in nb.cells if SOLUTION_TAG in _tags(c)]
    assert all(c.cell_type == "markdown" for c in solutions), f"{path.name}: a solution is code"
    for cell in solutions:
        assert cell.source.startswith("<details><summary>Show a solution</summary>")
        assert "```python\n" in cell.source and cell.source.endswith("</details>")


def _exercises(source: Path) -> list[tuple[str, list, int]]:
    """(exercise id, the cells before its solution, solution index) for each solution."""
    nb = build(source, solutions=True)
    found = []
    for i, cell in enumerate(nb.cells):
        if SOLUTION_TAG in _tags(cell):
            ids = CHECK_CALL.findall(cell.source)
            assert len(ids) == 1, f"{source.name}: solution cell {i} calls check() {len(ids)} times"
            found.append((ids[0], nb.cells[:i], i))
    return found


@pytest.mark.parametrize("source", [s for s in SOURCES if not s.name.startswith("00_")],
                         ids=lambda p: p.name)
def test_every_exercise_has_an_attempt_cell_a_self_check_and_a_solution(source):
    exercises = _exercises(source)
    number = source.name.split("_")[0]
    expected = sorted(k for k in EXERCISES if k.startswith(number + "-"))
    assert sorted(e for e, _, _ in exercises) == expected, (
        f"{source.name}: solutions check {[e for e, _, _ in exercises]}; "
        f"tlwidgets.exercises has {expected}")
    for exercise, before, _ in exercises:
        attempt = before[-1]
        assert "attempt" in _tags(attempt) and attempt.cell_type == "code", (
            f"{source.name}: exercise {exercise} needs an attempt cell (tag 'attempt') "
            "right before its solution")
        assert all(line.startswith("#") or not line.strip()
                   for line in attempt.source.splitlines()), "the attempt cell starts empty"
        question = next(c for c in reversed(before) if c.cell_type == "markdown")
        assert f'check("{exercise}"' in question.source, (
            f"{source.name}: exercise {exercise}'s text should show its self-check call")


@pytest.mark.parametrize("source", [s for s in SOURCES if not s.name.startswith("00_")],
                         ids=lambda p: p.name)
def test_every_solution_passes_its_self_check(run_notebook, source, shared_assets):
    _, rec = run_notebook(notebook_for(source).name)
    for exercise, _, _ in _exercises(source):
        assert rec.get(record_key(exercise)) is True, f"exercise {exercise}'s solution fails its check"


NUMPY_REPR = re.compile(r"\bnp\.(?:u?int|float|bool_|str_)\w*\(")
USER_WARNING = re.compile(r"^\S+:\d+: UserWarning: ", re.M)


def _problems(nb) -> tuple[list[str], list[str]]:
    """What a learner should not see in an executed notebook: (problems, notices).

    ``notices`` are UserWarnings on stderr: the library's notices (stand-ins,
    conversions) that do not go through ``tlwidgets.notices`` yet.
    """
    found, notices = [], []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream" and out.get("name") == "stderr":
                text = out["text"]
                warnings_only = USER_WARNING.sub("", text) != text and all(
                    USER_WARNING.match(line) or line.startswith("  ")
                    for line in text.splitlines() if line.strip())
                (notices if warnings_only else found).append(
                    f"cell {i} writes to stderr: {text[:300]!r}")
            elif kind == "error":
                found.append(f"cell {i} raised {out.get('ename')}: {out.get('evalue', '')[:200]}")
            data = out.get("data", {})
            text = out.get("text", "") if kind == "stream" else data.get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            if "<Figure size" in text and "image/png" not in data:
                found.append(f"cell {i} shows a figure as text: {text[:80]!r}")
            if NUMPY_REPR.search(text):
                found.append(f"cell {i} prints a NumPy repr: {NUMPY_REPR.search(text).group()}...")
    return found, notices


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_clean(run_notebook, path, shared_assets):
    """No stderr (log lines, warnings, tracebacks), no figure as text, no NumPy reprs."""
    nb, _ = run_notebook(path.name)
    problems, notices = _problems(nb)
    assert not problems, f"{path.name}:\n" + "\n".join(problems + notices)
    if notices:
        pytest.xfail(f"{path.name}: {len(notices)} library notices still arrive as UserWarnings "
                     "on stderr (assets.resolve's stand-in, featurize's conversions): they "
                     "should go through tlwidgets.notices.notice. First: " + notices[0])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_only_solutions_check_exercises(run_notebook, path, shared_assets):
    """In the executed run (solutions as code), every exercise outcome comes from a cell
    tagged ``solution``: the stored notebook holds those as markdown, so Run All never
    executes a solution."""
    nb, _ = run_notebook(path.name)
    stored = {c.id: c for c in nbformat.read(path, as_version=4).cells}  # papermill adds a cell
    for i, cell in enumerate(nb.cells):
        recorded = [k for out in cell.get("outputs", [])
                    for k in out.get("data", {}).get(RECORD_MIME, {})
                    if k.startswith("exercise ")]
        if recorded:
            assert SOLUTION_TAG in _tags(cell), f"{path.name}: cell {i} checks {recorded}"
            assert stored[cell.id].cell_type == "markdown", f"{path.name}: {cell.id} would run"
