"""The course benchmark's measuring, merging and table (no notebook is run here)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import run_notebooks as rn

ROOT = Path(__file__).resolve().parents[1]

HOST = {"cpus": 2, "gpu": None}
DAY = dt.date(2026, 12, 1)

# A grandchild that holds about 150 MiB, under a child that holds little: the peak is the
# grandchild's, as for papermill (small) and its kernel (large).
TREE = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
        "'import time; b = bytearray(150 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); "
        "time.sleep(0.2)'], check=True)")


def _row(notebook="02_fine_tuning", profile="workshop", peak=1400.0, **kw):
    return rn.make_row(notebook, profile, kw.get("wall", 300.04), kw.get("cpu", 280.0), peak,
                       kw.get("host", HOST), DAY)


def test_row_has_the_schema_the_site_reads():
    row = _row()
    assert row == {"notebook": "02_fine_tuning", "profile": "workshop", "wall_s": 300.0,
                   "cpu_s": 280.0, "peak_mb": 1400.0, "machine": {"cpus": 2, "gpu": None},
                   "measured": "2026-12-01"}
    assert rn.check_rows([row]) == [row]
    gpu = rn.make_row("06_x", "quick", 1, 1, 1, {"cpus": 16, "gpu": "NVIDIA H200"}, DAY)
    assert gpu["machine"] == {"cpus": 16, "gpu": "NVIDIA H200"}
    with pytest.raises(ValueError, match="profile must be one of"):
        rn.make_row("02", "fast", 1, 1, 1, HOST, DAY)


def test_merge_replaces_the_same_notebook_and_profile_and_keeps_the_rest():
    old = [_row("02_fine_tuning", "workshop", 1900.0), _row("02_fine_tuning", "quick", 900.0),
           _row("01_featurisers", "workshop", 1500.0)]
    new = [_row("02_fine_tuning", "workshop", 1400.0), _row("00_start_here", "workshop", 800.0)]
    merged = rn.merge(old, new)
    assert [(r["notebook"], r["profile"], r["peak_mb"]) for r in merged] == [
        ("00_start_here", "workshop", 800.0), ("01_featurisers", "workshop", 1500.0),
        ("02_fine_tuning", "quick", 900.0), ("02_fine_tuning", "workshop", 1400.0)]


def test_save_results_merges_into_the_file(tmp_path):
    path = tmp_path / "results" / "course.json"
    rn.save_results(path, [_row("02_fine_tuning", "workshop", 1900.0), _row("03_x", "quick")])
    rows = rn.save_results(path, [_row("02_fine_tuning", "workshop", 1400.0)])
    assert json.loads(path.read_text()) == rows
    assert [(r["notebook"], r["peak_mb"]) for r in rows] == [("02_fine_tuning", 1400.0),
                                                             ("03_x", 1400.0)]


@pytest.mark.parametrize("bad, message", [
    ({"notebook": "02"}, "exactly the keys"),
    ({**_row(), "peak_mb": -1}, "peak_mb must be a number"),
    ({**_row(), "profile": "fast"}, "unknown profile"),
    ({**_row(), "machine": {"cpus": 0, "gpu": None}}, "machine must be"),
])
def test_bad_rows_are_refused_with_what_is_wrong(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        rn.check_rows([bad])
    path = tmp_path / "course.json"
    path.write_text(json.dumps([bad]))
    with pytest.raises(ValueError, match=message):
        rn.load_results(path)
    path.write_text("[{")
    with pytest.raises(ValueError, match="not valid JSON"):
        rn.load_results(path)


def test_table_has_one_line_per_row_with_every_figure():
    text = rn.table([_row(), _row("06_x", "quick", 512.4, host={"cpus": 16, "gpu": "H200"})])
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[2] == "| 02_fine_tuning | workshop | 300 | 280 | 1400 | 2 CPU | 2026-12-01 |"
    assert "| 512 | 16 CPU, H200 |" in lines[3]


@pytest.mark.skipif(not shutil.which("time", path="/usr/bin"), reason="needs /usr/bin/time")
def test_peak_memory_agrees_with_usr_bin_time():
    # From a fresh, small process, as `make bench-course` runs it: a child forked from this
    # (possibly large) pytest process would inherit its high-water mark.
    probe = ("import json, sys; from tools import run_notebooks as rn; "
             "print(json.dumps(rn.measure_command([sys.executable, '-c', sys.argv[1]])))")
    done = subprocess.run([sys.executable, "-c", probe, TREE], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    code, cpu, peak = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == 0 and cpu > 0
    assert 150 < peak < 400  # the grandchild's 150 MiB plus an interpreter
    out = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", TREE],
                         capture_output=True, text=True, check=True).stderr
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out).group(1))
    assert peak == pytest.approx(kib / 1024, rel=0.1)


def test_a_failing_child_reports_its_exit_code():
    code, _, _ = rn.measure_command([sys.executable, "-c", "raise SystemExit(3)"])
    assert code == 3


LESSON = '''# %% tags=["parameters"]
profile = "workshop"

# %%
from tlwidgets.notebook import record

block = bytearray(200 * 2**20)
block[::4096] = b"x" * len(block[::4096])
record("profile", profile)
'''


@pytest.mark.notebook
def test_run_executes_a_lesson_in_a_child_and_measures_its_kernel(tmp_path):
    source = tmp_path / "98_memory.py"
    source.write_text(LESSON)
    row = rn.run(source, "smoke", tmp_path, host=HOST, today=DAY)
    assert rn.check_rows([row]) and row["notebook"] == "98_memory"
    assert row["profile"] == "smoke" and row["wall_s"] > 0 and row["cpu_s"] > 0
    assert row["peak_mb"] > 200  # the kernel's 200 MiB block, not papermill's own size
    records = json.loads((tmp_path / "98_memory.records.json").read_text())
    assert records["profile"] == "smoke"
