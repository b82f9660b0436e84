"""Shared fixtures: isolated cache, offline by default, the notebook runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SHARED_ASSETS = ROOT.parent / "shared" / "assets"


def pytest_configure(config):
    # Kernels started by notebook and browser tests import this checkout's tlwidgets.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    if not os.environ.get("TLWIDGETS_DATA") and SHARED_ASSETS.is_dir():
        os.environ["TLWIDGETS_DATA"] = str(SHARED_ASSETS)
    # No test may depend on the network; the asset tests serve files themselves.
    os.environ["TLWIDGETS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TLWIDGETS_CACHE", str(tmp_path_factory.getbasetemp() / "tlwidgets-cache"))


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    if not SHARED_ASSETS.is_dir():
        pytest.fail(f"The real fixtures are expected at {SHARED_ASSETS} (../shared/assets).")
    return SHARED_ASSETS


@pytest.fixture(scope="session")
def run_notebook(tmp_path_factory):
    """Execute a notebook in the smoke profile; return (executed notebook, recorded values).

    ``run_notebook("NN_name.ipynb")`` builds the notebook from ``lessons/NN_name.py``
    with its exercise solutions as code cells (``solutions=False``: as stored, with
    solutions as collapsed markdown), executes it once per session and returns a copy
    of that run to every test that asks again. Recorded values are those the notebook
    passed to ``tlwidgets.notebook.record`` (exercise self-checks record
    ``exercise NN-k``).
    """
    import copy

    import nbformat
    import papermill

    from tlwidgets.notebook import read_records
    from tools.build_notebooks import LESSONS, build

    out_dir = tmp_path_factory.mktemp("executed")
    runs: dict = {}

    def run(name: str, *, solutions: bool = True, **parameters):
        key = (name, solutions, tuple(sorted(parameters.items())))
        if key not in runs:
            stem = Path(name).stem
            source = out_dir / f"{stem}.{'solutions' if solutions else 'stored'}.ipynb"
            nbformat.write(build(LESSONS / f"{stem}.py", solutions=solutions), source)
            nb = papermill.execute_notebook(
                str(source),
                str(source.with_suffix(".executed.ipynb")),
                parameters={"profile": "smoke", **parameters},
                cwd=str(NOTEBOOKS),
                kernel_name="python3",
                progress_bar=False,
                request_save_on_cell_execute=False,
                execution_timeout=600,
                log_output=False,
            )
            runs[key] = nb
        nb = copy.deepcopy(runs[key])
        return nb, read_records(nb)

    return run


def pytest_collection_modifyitems(config, items):
    # Under pytest-xdist (make test: -n 2 --dist loadgroup) the browser tests share one
    # JupyterLab and the notebook tests one set of executed notebooks: each group stays on
    # one worker, and the other tests spread over both.
    for item in items:
        browser = "browser" in item.nodeid.split("/")
        notebook = "run_notebook" in getattr(item, "fixturenames", ())
        if browser:
            item.add_marker(pytest.mark.browser)
        if notebook:
            item.add_marker(pytest.mark.notebook)
        if browser or notebook:
            item.add_marker(pytest.mark.xdist_group("browser" if browser else "notebooks"))


def pytest_report_header(config):
    return [f"python: {sys.executable}", f"TLWIDGETS_DATA: {os.environ.get('TLWIDGETS_DATA')}"]
