"""Per-learner resources for a JupyterHub, derived from the measured course table.

    python -m tools.hub_values                    # the derivation, and learners per node
    python -m tools.hub_values --node 8 32        # for one node size (vCPU, GiB)
    python -m tools.hub_values --check            # does deploy/jupyterhub/values.yaml agree?

From ``benchmarks/results/course.json`` (``make bench-course``), workshop profile:

* memory **limit** = the largest notebook peak + :data:`SERVER_OVERHEAD_MIB` (the
  single-user server: JupyterLab, the hub's ``jupyterhub-singleuser``, nbgitpuller),
  rounded up to :data:`STEP_MIB`;
* memory **guarantee** = the limit: in a workshop every learner runs the same
  notebook at the same time, so the node must hold every learner's peak at once
  (a lower guarantee would pack more learners until the kernels all reach their
  peak together, and then some are killed);
* CPU **limit** = the cores the table was measured on (the measured times assume
  them; more do not help a learner who waits on one cell);
* CPU **guarantee** = the largest mean use of cores over a notebook's time slot in the
  schedule (its CPU seconds / the minutes its lesson announces, "**Time:** about N
  minutes"), rounded up to half a core. Wall times are not used: on a shared machine
  they measure the load. When every learner runs at once each still gets the
  guarantee, so a notebook's computing takes at most ``cpu_s / guarantee`` seconds.

Learners per node = what a node can allocate after Kubernetes' own reservations
(:func:`allocatable`, GKE's published formula) divided by the guarantees.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from tools.run_notebooks import RESULTS, load_results

ROOT = Path(__file__).resolve().parents[1]
VALUES = ROOT / "deploy" / "jupyterhub" / "values.yaml"
#: RSS of the single-user server beside the kernel, MiB. Measured: ``jupyter lab`` idle
#: after serving /lab holds 92 MiB (VmHWM, JupyterLab 4, 2 CPU); the rest is room for
#: a terminal, the git pull of nbgitpuller and the server's growth with open notebooks.
SERVER_OVERHEAD_MIB = 256
STEP_MIB = 256
#: Node sizes (vCPU, GiB) shown by default: common 4:1 general-purpose machines.
NODE_SIZES = ((4, 16), (8, 32), (16, 64), (32, 128))
#: Pods on every user node besides the learners (the continuous image puller, kube-proxy,
#: the log and metrics agents of a managed cluster): CPU cores, MiB.
DAEMONSETS = (0.2, 512)


@dataclass(frozen=True)
class Resources:
    """One learner's server: memory in MiB, CPU in cores, and where they come from."""

    memory_limit_mib: int
    memory_guarantee_mib: int
    cpu_limit: float
    cpu_guarantee: float
    max_peak_mib: float
    max_peak_notebook: str
    cpu_use: float

    def z2jh(self) -> dict:
        """The ``singleuser.memory`` and ``singleuser.cpu`` values (z2jh's ``M`` is MiB)."""
        return {"memory": {"limit": f"{self.memory_limit_mib}M",
                           "guarantee": f"{self.memory_guarantee_mib}M"},
                "cpu": {"limit": self.cpu_limit, "guarantee": self.cpu_guarantee}}


def _round_up(value: float, step: float) -> float:
    return math.ceil(value / step - 1e-9) * step


def lesson_minutes() -> dict[str, int]:
    """Each lesson's time slot in minutes, from its "**Time:** about N minutes" line."""
    from tools.build_notebooks import lesson_sources

    found = {}
    for source in lesson_sources():
        match = re.search(r"\*\*Time:\*\* about (\d+) minutes", source.read_text())
        if match:
            found[source.stem] = int(match.group(1))
    return found


def derive(rows: list[dict], profile: str = "workshop") -> Resources:
    """Per-learner resources from the course table's ``profile`` rows."""
    rows = [r for r in rows if r["profile"] == profile]
    if not rows:
        raise ValueError(f"The course table has no {profile!r} rows; measure them with "
                         f"`make bench-course PROFILE={profile}`.")
    top = max(rows, key=lambda r: r["peak_mb"])
    limit = int(_round_up(top["peak_mb"] + SERVER_OVERHEAD_MIB, STEP_MIB))
    cpus = max(r["machine"]["cpus"] for r in rows)
    slots = lesson_minutes()
    use = max((r["cpu_s"] / (60 * slots[r["notebook"]]) for r in rows if r["notebook"] in slots),
              default=0.0)
    guarantee = min(float(cpus), max(0.5, _round_up(use, 0.5)))
    return Resources(limit, limit, float(cpus), guarantee, top["peak_mb"], top["notebook"], use)


def allocatable(vcpus: float, gib: float) -> tuple[float, float]:
    """(cores, MiB) a node offers to pods: GKE's reservations, less the eviction threshold
    (100 MiB) and :data:`DAEMONSETS`."""
    memory = gib * 1024
    reserved, left = 0.0, memory
    for size, share in ((4096, 0.25), (4096, 0.20), (8192, 0.10), (114688, 0.06),
                        (math.inf, 0.02)):
        take = min(left, size)
        reserved += take * share
        left -= take
    cores_reserved, left = 0.0, float(vcpus)
    for size, share in ((1, 0.06), (1, 0.01), (2, 0.005), (math.inf, 0.0025)):
        take = min(left, size)
        cores_reserved += take * share
        left -= take
    return (vcpus - cores_reserved - DAEMONSETS[0], memory - reserved - 100 - DAEMONSETS[1])


def learners_per_node(res: Resources, vcpus: float, gib: float) -> tuple[int, str]:
    """How many learners fit on a node of ``vcpus`` cores and ``gib`` GiB, and what limits it."""
    cores, memory = allocatable(vcpus, gib)
    by_memory = int(memory // res.memory_guarantee_mib)
    by_cpu = int(cores // res.cpu_guarantee)
    return max(0, min(by_memory, by_cpu)), ("memory" if by_memory <= by_cpu else "CPU")


# --- values.yaml ------------------------------------------------------------------------------

def check_values(res: Resources, values: dict) -> list[str]:
    """What in a z2jh values mapping disagrees with ``res`` (empty when all agree)."""
    want = res.z2jh()
    single = values.get("singleuser", {})
    problems = []
    for group in ("memory", "cpu"):
        for key, expected in want[group].items():
            got = single.get(group, {}).get(key)
            if str(got) != str(expected):
                problems.append(f"singleuser.{group}.{key} is {got!r}; the course table gives "
                                f"{expected!r}")
    return problems


def mib(quantity: str | int | float) -> float:
    """A z2jh/KubeSpawner byte quantity (``"2304M"``, ``"2G"``, bytes) in MiB."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)\s*", str(quantity))
    if not match:
        raise ValueError(f"{quantity!r} is not a byte quantity such as '2304M' or '2G' "
                         "(KubeSpawner takes K, M, G, T: powers of 1024).")
    power = {"": -2, "K": -1, "M": 0, "G": 1, "T": 2}[match.group(2)]
    return float(match.group(1)) * 1024.0 ** power


def nbgitpuller_link(notebook: str, *, hub: str = "https://HUB.example.org",
                     repo: str = "https://github.com/tlwidgets/tlwidgets", branch: str = "main",
                     target: str = "work/tlwidgets") -> str:
    """A link that copies (or updates) the course into ``~/target`` and opens ``notebook``
    (a path in the repository, e.g. ``notebooks/02_fine_tuning.ipynb``) in JupyterLab."""
    query = urllib.parse.urlencode({"repo": repo, "branch": branch,
                                    "urlpath": f"lab/tree/{target}/{notebook}",
                                    "targetpath": target}, quote_via=urllib.parse.quote)
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def report(res: Resources, nodes=NODE_SIZES) -> str:
    lines = [
        f"Largest workshop peak: {res.max_peak_mib:.0f} MiB ({res.max_peak_notebook}); "
        f"server overhead {SERVER_OVERHEAD_MIB} MiB; rounded up to {STEP_MIB} MiB:",
        f"  singleuser.memory.limit = guarantee = {res.memory_limit_mib}M",
        f"  singleuser.cpu.limit = {res.cpu_limit:g} (cores measured on), guarantee = "
        f"{res.cpu_guarantee:g} (the heaviest notebook uses {res.cpu_use:.2f} cores over its "
        "time slot; rounded up to 0.5)",
        "",
        "| node (vCPU, GiB) | allocatable (cores, GiB) | learners per node | limited by |",
        "|---|---|--:|---|",
    ]
    for vcpus, gib in nodes:
        cores, alloc = allocatable(vcpus, gib)
        n, by = learners_per_node(res, vcpus, gib)
        lines.append(f"| {vcpus} vCPU, {gib} GiB | {cores:.2f}, {alloc / 1024:.1f} | {n} | {by} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import yaml

    parser = argparse.ArgumentParser(prog="python -m tools.hub_values",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--values", type=Path, default=VALUES)
    parser.add_argument("--node", nargs=2, type=float, action="append", metavar=("VCPU", "GIB"),
                        help="a node size (repeat for several)")
    parser.add_argument("--links", metavar="HUB_URL", help="print nbgitpuller links to "
                        "every notebook for this hub (with --repo)")
    parser.add_argument("--repo", default="https://github.com/tlwidgets/tlwidgets")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the values file disagrees with the course table")
    args = parser.parse_args(argv)
    if args.links:
        from tools.build_notebooks import lesson_sources, notebook_for

        for source in lesson_sources():
            path = notebook_for(source).relative_to(ROOT).as_posix()
            print(f"- {source.stem}: <{nbgitpuller_link(path, hub=args.links, repo=args.repo)}>")
        return 0
    res = derive(load_results(args.results))
    print(report(res, args.node or NODE_SIZES))
    if args.check:
        problems = check_values(res, yaml.safe_load(args.values.read_text()))
        for problem in problems:
            print(f"{args.values}: {problem}", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
