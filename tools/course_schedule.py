"""The course schedule, as measured: a markdown table from ``benchmarks/results/course.json``.

``make bench-course`` runs every notebook through papermill in each profile and writes
``benchmarks/results/course.json``: a list of rows ::

    {"notebook": "02_fine_tuning", "profile": "workshop", "wall_s": 412.0, "cpu_s": 380.5,
     "peak_mb": 1420.0, "machine": {"cpus": 2, "gpu": null}, "measured": "2026-12-01"}

This module renders them for the instructor guide (the site builds the guide with it),
and works out how many learners a hub node holds from the measured peak memory::

    python -m tools.course_schedule                          # the schedule, as markdown
    python -m tools.course_schedule --node-ram-gb 128        # for another node size
    python -m tools.course_schedule --results other.json

Without the file, the page says that the schedule has not been measured and how to
measure it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "course.json"

__all__ = ["LAB_MB", "PROFILES", "RESULTS", "SYSTEM_RESERVE_GB", "learners_per_node", "load",
           "render", "render_schedule"]

PROFILES = ("smoke", "quick", "workshop")
#: Allowance for the JupyterLab server beside the kernel (the benchmark measures the kernel).
LAB_MB = 300
#: What a node keeps for itself (kubelet, system pods, page cache) before learners' pods.
SYSTEM_RESERVE_GB = 4
#: Memory requests are rounded up to this step.
STEP_MB = 256

_FIELDS = {"notebook": str, "profile": str, "wall_s": (int, float), "cpu_s": (int, float),
           "peak_mb": (int, float), "machine": dict, "measured": str}
_HOW = ("Measure it on the machine learners will use (`make bench-course` runs every "
        "notebook once in each profile):\n\n"
        "```bash\nmake bench-course      # writes benchmarks/results/course.json\n"
        "make site              # renders this page again from it\n```")


def load(path: str | Path = RESULTS) -> list[dict] | None:
    """The measured rows, checked; ``None`` when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); run `make bench-course` again") from err
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of rows, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        for key, kind in _FIELDS.items():
            if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
                raise ValueError(f"{path}: row {i} ({row.get('notebook', '?')}): field {key!r} "
                                 f"missing or not {getattr(kind, '__name__', 'a number')}")
        if row["profile"] not in PROFILES:
            raise ValueError(f"{path}: row {i}: profile {row['profile']!r} is not one of {PROFILES}")
        if not isinstance(row["machine"].get("cpus"), int):
            raise ValueError(f"{path}: row {i}: machine.cpus must be an integer")
        date.fromisoformat(row["measured"])  # ValueError names the bad date
    return rows


def _machine(m: dict) -> str:
    return f"{m['cpus']} CPU cores" + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def render_schedule(rows: list[dict]) -> str:
    """One table per machine and profile: wall and CPU minutes and peak memory per notebook."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        m = row["machine"]
        groups[(bool(m.get("gpu")), m["cpus"], _machine(m), row["profile"])].append(row)
    order = {p: i for i, p in enumerate(PROFILES)}
    out = []
    for (_, _, machine, profile), items in sorted(groups.items(),
                                                  key=lambda kv: (*kv[0][:3], -order[kv[0][3]])):
        items = sorted(items, key=lambda r: r["notebook"])
        dates = sorted({r["measured"] for r in items})
        out += [f"### `{profile}` profile, {machine}", "",
                f"Measured {' to '.join([dates[0], dates[-1]] if len(dates) > 1 else dates)}.",
                "", "| Notebook | Wall (min) | CPU (min) | Peak memory (MB) |",
                "|---|---:|---:|---:|"]
        out += [f"| `{r['notebook']}` | {_minutes(r['wall_s'])} | {_minutes(r['cpu_s'])} "
                f"| {r['peak_mb']:.0f} |" for r in items]
        out += [f"| **all {len(items)}** | **{_minutes(sum(r['wall_s'] for r in items))}** "
                f"| **{_minutes(sum(r['cpu_s'] for r in items))}** "
                f"| **{max(r['peak_mb'] for r in items):.0f}** (largest) |", ""]
    return "\n".join(out)


def learners_per_node(rows: list[dict], node_ram_gb: float) -> dict:
    """Learners whose pods fit on a node of ``node_ram_gb`` GiB, from the measured peaks.

    Each learner's memory request is the largest measured peak of the ``workshop``
    profile (or, when that profile was not measured, of the largest profile that was)
    on machines without a GPU (a CPU hub; GPU rows count only when there are no others)
    plus :data:`LAB_MB` for JupyterLab, rounded up to :data:`STEP_MB`; the node keeps
    :data:`SYSTEM_RESERVE_GB` for itself.
    """
    if node_ram_gb <= SYSTEM_RESERVE_GB:
        raise ValueError(f"node_ram_gb={node_ram_gb}: a node needs more than the "
                         f"{SYSTEM_RESERVE_GB} GiB it keeps for itself")
    rows = [r for r in rows if not r["machine"].get("gpu")] or rows
    measured = {r["profile"] for r in rows}
    profile = max(measured, key=PROFILES.index)
    peak = max(r["peak_mb"] for r in rows if r["profile"] == profile)
    worst = max((r for r in rows if r["profile"] == profile), key=lambda r: r["peak_mb"])
    request = math.ceil((peak + LAB_MB) / STEP_MB) * STEP_MB
    learners = int((node_ram_gb - SYSTEM_RESERVE_GB) * 1024 // request)
    return {"profile": profile, "peak_mb": peak, "notebook": worst["notebook"],
            "request_mb": request, "node_ram_gb": node_ram_gb, "learners": learners}


def render(rows: list[dict] | None, *, node_ram_gb: float = 64) -> str:
    """The schedule section of the guide: the tables, or how to measure them."""
    if not rows:
        return ("````{admonition} Not measured yet\n:class: warning\n\n"
                "The schedule has not been measured on this checkout: "
                "`benchmarks/results/course.json` does not exist. Until it does, use the "
                "lessons' own estimates.\n\n" + _HOW + "\n````\n\n"
                "(learners-per-node)=\n**Learners per node:** not known until the course "
                "has been measured (`make bench-course`); the number comes from the largest "
                "measured peak memory.\n")
    fit = learners_per_node(rows, node_ram_gb)
    return (render_schedule(rows) + "\n(learners-per-node)=\n"
            f"**Learners per node** (computed by `tools/course_schedule.py` from "
            f"`course.json`): the largest peak in the `{fit['profile']}` profile is "
            f"{fit['peak_mb']:.0f} MB (`{fit['notebook']}`); with {LAB_MB} MB for JupyterLab, "
            f"rounded up, each learner needs **{fit['request_mb']} MB**, so a node with "
            f"{fit['node_ram_gb']:g} GiB of memory ({SYSTEM_RESERVE_GB} GiB kept for the "
            f"system) holds **{fit['learners']} learners**. Another node size: "
            f"`python -m tools.course_schedule --node-ram-gb N`.\n\n" + _HOW + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.course_schedule",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="course.json to render")
    parser.add_argument("--node-ram-gb", type=float, default=64,
                        help="memory of one hub node in GiB (default 64)")
    args = parser.parse_args(argv)
    print(render(load(args.results), node_ram_gb=args.node_ram_gb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
