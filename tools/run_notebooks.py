"""Run the course notebooks in one or more profiles; report wall time, CPU time and peak memory.

    python -m tools.run_notebooks --profile quick                  # every notebook
    python -m tools.run_notebooks --profile quick 02 05            # some of them
    python -m tools.run_notebooks --profile quick --profile workshop \\
        --results benchmarks/results/course.json                  # make bench-course

Each notebook is built from its lesson (solutions as markdown, as a learner gets it)
and executed with papermill in a child process of its own; the executed notebook and
its recorded values (``NN_name.records.json``) go to ``--out``.

What is measured, per notebook:

* ``wall_s``: the papermill run (kernel start to kernel shutdown), timed in the child;
* ``cpu_s``: user + system time of the child and everything it reaped (the kernel);
* ``peak_mb``: ``ru_maxrss`` from ``wait4`` on the child, in MiB: the largest resident
  set reached by any one process of the notebook's process tree (the kernel, in
  practice). It is what ``/usr/bin/time -v`` reports as "Maximum resident set size"
  (it calls ``wait4`` too); ``tests/test_run_notebooks.py`` checks the two agree.

``--results FILE`` merges the rows into FILE (a JSON list; a row of the same notebook
and profile is replaced), with the machine (CPU cores usable, GPU name or null) and
the date of the measurement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

PROFILES = ("smoke", "quick", "workshop")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "course.json"
ROW_KEYS = ("notebook", "profile", "wall_s", "cpu_s", "peak_mb", "machine", "measured")


# --- measuring ---------------------------------------------------------------------------------

def execute(source: Path, profile: str, out: Path) -> float:
    """Build and execute one lesson with papermill in this process; return its wall time (s)."""
    import nbformat
    import papermill

    from tlwidgets.notebook import read_records
    from tools.build_notebooks import NOTEBOOKS, build

    built = out / f"{source.stem}.ipynb"
    nbformat.write(build(source), built)
    start = time.perf_counter()
    nb = papermill.execute_notebook(str(built), str(built), parameters={"profile": profile},
                                    cwd=str(NOTEBOOKS), kernel_name="python3",
                                    progress_bar=False, log_output=False,
                                    # saved after each cell: a run that is stopped still
                                    # shows each finished cell's time (papermill metadata)
                                    request_save_on_cell_execute=True, execution_timeout=3600)
    wall = time.perf_counter() - start
    (out / f"{source.stem}.records.json").write_text(json.dumps(read_records(nb), indent=1))
    return wall


def measure_command(argv: Sequence[str], **popen) -> tuple[int, float, float]:
    """Run ``argv`` as a child; return (exit code, CPU seconds, peak RSS in MiB) from ``wait4``.

    CPU is user + system of the child and its reaped descendants; the peak is the largest
    ``ru_maxrss`` among them (Linux reports KiB), as ``/usr/bin/time -v`` does. Call it
    from a small process, as this script is: Linux carries a parent's high-water mark into
    a child it forks, so a child of a large process (a long pytest worker) reports at least
    that process's peak.
    """
    proc = subprocess.Popen(list(argv), **popen)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return (proc.returncode, usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss * scale / 2**20)


def machine() -> dict:
    """The CPU cores this process may use and the first GPU's name (None without one)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = None
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            names = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"],
                                   capture_output=True, text=True, timeout=30).stdout.split("\n")
            gpu = names[0].strip() or None
        except (OSError, subprocess.SubprocessError):
            gpu = None
    return {"cpus": int(cpus or 1), "gpu": gpu}


def run(source: Path, profile: str, out: Path, *, host: dict | None = None,
        today: dt.date | None = None) -> dict:
    """Execute one lesson in a child process and return its course.json row."""
    timing = out / f"{source.stem}.{profile}.wall.json"
    code, cpu, peak = measure_command(
        [sys.executable, "-m", "tools.run_notebooks", "--child", str(source),
         "--profile", profile, "--out", str(out), "--wall-file", str(timing)], cwd=ROOT)
    if code != 0:
        raise RuntimeError(f"{source.stem} failed in profile {profile} (exit code {code}); "
                           f"the partly executed notebook is {out / (source.stem + '.ipynb')}.")
    wall = json.loads(timing.read_text())["wall_s"]
    return make_row(source.stem, profile, wall, cpu, peak, host or machine(), today)


# --- rows, merging, table (no notebooks run here; unit-tested) ---------------------------------

def make_row(notebook: str, profile: str, wall_s: float, cpu_s: float, peak_mb: float,
             host: dict, today: dt.date | None = None) -> dict:
    """One course.json row, numbers rounded (seconds to 0.1 s, memory to 1 MiB)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}.")
    gpu = host.get("gpu")
    return {"notebook": str(notebook), "profile": profile, "wall_s": round(float(wall_s), 1),
            "cpu_s": round(float(cpu_s), 1), "peak_mb": round(float(peak_mb), 0),
            "machine": {"cpus": int(host["cpus"]), "gpu": None if gpu is None else str(gpu)},
            "measured": (today or dt.date.today()).isoformat()}


def check_rows(rows: object, where: str = "course results") -> list[dict]:
    """The rows, checked against the course.json schema (a clear error says what is wrong)."""
    if not isinstance(rows, list):
        raise ValueError(f"{where} must be a JSON list of rows, not {type(rows).__name__}.")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != set(ROW_KEYS):
            got = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise ValueError(f"{where}: row {i} must have exactly the keys {list(ROW_KEYS)}, "
                             f"got {got}.")
        if row["profile"] not in PROFILES:
            raise ValueError(f"{where}: row {i} has unknown profile {row['profile']!r}.")
        for key in ("wall_s", "cpu_s", "peak_mb"):
            if not isinstance(row[key], int | float) or isinstance(row[key], bool) or row[key] < 0:
                raise ValueError(f"{where}: row {i} {key} must be a number >= 0, not "
                                 f"{row[key]!r}.")
        host = row["machine"]
        if (not isinstance(host, dict) or set(host) != {"cpus", "gpu"}
                or not isinstance(host["cpus"], int) or host["cpus"] < 1
                or not (host["gpu"] is None or isinstance(host["gpu"], str))):
            raise ValueError(f"{where}: row {i} machine must be {{'cpus': int >= 1, "
                             f"'gpu': str or null}}, not {host!r}.")
        dt.date.fromisoformat(row["measured"])
    return rows


def _order(row: dict) -> tuple:
    return (row["notebook"], PROFILES.index(row["profile"]))


def merge(existing: Iterable[dict], new: Iterable[dict]) -> list[dict]:
    """``existing`` with ``new`` rows added; a new row replaces one of the same notebook and
    profile. Sorted by notebook, then profile (smoke, quick, workshop)."""
    rows = {(r["notebook"], r["profile"]): r for r in existing}
    rows.update({(r["notebook"], r["profile"]): r for r in new})
    return sorted(rows.values(), key=_order)


def load_results(path: Path) -> list[dict]:
    """The rows stored in ``path`` ([] when it does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); fix or delete it.") from None
    return check_rows(rows, str(path))


def save_results(path: Path, new: Iterable[dict]) -> list[dict]:
    """Merge ``new`` into the rows of ``path`` and write them back; return all rows."""
    path = Path(path)
    rows = merge(load_results(path), check_rows(list(new), "new rows"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def table(rows: Iterable[dict]) -> str:
    """The rows as a Markdown table: notebook, profile, wall, CPU, peak memory, machine."""
    lines = ["| notebook | profile | wall s | CPU s | peak MiB | machine | measured |",
             "|---|---|--:|--:|--:|---|---|"]
    for r in rows:
        host = f"{r['machine']['cpus']} CPU" + (f", {r['machine']['gpu']}"
                                                 if r["machine"]["gpu"] else "")
        lines.append(f"| {r['notebook']} | {r['profile']} | {r['wall_s']:.0f} | "
                     f"{r['cpu_s']:.0f} | {r['peak_mb']:.0f} | {host} | {r['measured']} |")
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.run_notebooks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="append", choices=PROFILES,
                        help="profile to run (repeat for several; default quick)")
    parser.add_argument("--out", type=Path, default=None, help="folder for executed notebooks")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"merge the rows into this JSON file (e.g. {RESULTS.relative_to(ROOT)})")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--wall-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("notebooks", nargs="*", help="notebook numbers or names (default: all)")
    args = parser.parse_args(argv)
    profiles = args.profile or ["quick"]
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    if args.child:  # one notebook, in the child process that run() measures
        wall = execute(args.child, profiles[0], args.out)
        args.wall_file.write_text(json.dumps({"wall_s": wall}))
        return 0

    from tools.build_notebooks import lesson_sources

    sources = [s for s in lesson_sources()
               if not args.notebooks or any(s.stem.startswith(n) for n in args.notebooks)]
    if not sources:
        parser.error(f"no lesson matches {' '.join(args.notebooks)}")
    out = args.out or Path(tempfile.mkdtemp(prefix="tlwidgets-runs-"))
    out.mkdir(parents=True, exist_ok=True)
    host = machine()
    print(f"Executed notebooks go to {out}. Machine: {host['cpus']} CPU cores, "
          f"GPU {host['gpu'] or 'none'}.", flush=True)
    print(f"{'notebook':<28}{'profile':<10}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}", flush=True)
    rows = []
    for profile in profiles:
        for source in sources:
            row = run(source, profile, out, host=host)
            rows.append(row)
            print(f"{row['notebook']:<28}{profile:<10}{row['wall_s']:>8.0f}{row['cpu_s']:>8.0f}"
                  f"{row['peak_mb']:>10.0f}", flush=True)
            if args.results:  # saved after each notebook: an interrupted run keeps its rows
                save_results(args.results, [row])
    print()
    print(table(rows))
    if args.results:
        print(f"\nMerged into {args.results}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
