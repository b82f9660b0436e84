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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
    """Execute ``notebooks/<name>`` in the smoke profile; return (notebook, recorded values).

    Recorded values are those the notebook passed to ``tlwidgets.notebook.record``.
    """
    import papermill

    from tlwidgets.notebook import read_records

    out_dir = tmp_path_factory.mktemp("executed")

    def run(name: str, **parameters):
        src = NOTEBOOKS / name
        dst = out_dir / name
        nb = papermill.execute_notebook(
            str(src),
            str(dst),
            parameters={"profile": "smoke", **parameters},
            cwd=str(NOTEBOOKS),
            kernel_name="python3",
            progress_bar=False,
            request_save_on_cell_execute=False,
            execution_timeout=600,
            log_output=False,
        )
        return nb, read_records(nb)

    return run


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "browser" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.browser)
        if "test_notebook" in item.nodeid:
            item.add_marker(pytest.mark.notebook)


def pytest_report_header(config):
    return [f"python: {sys.executable}", f"TLWIDGETS_DATA: {os.environ.get('TLWIDGETS_DATA')}"]
