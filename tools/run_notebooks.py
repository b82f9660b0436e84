"""Run the course notebooks in one profile and report their wall and CPU time.

    python -m tools.run_notebooks --profile quick            # every notebook
    python -m tools.run_notebooks --profile quick 02 05      # some of them
    python -m tools.run_notebooks --profile workshop --out /tmp/runs

Each notebook is built from its lesson (solutions as markdown, as a learner gets it)
and executed with papermill; the executed notebook and its recorded values
(``NN_name.records.json``) go to ``--out``. CPU time is the kernel's (user + system),
measured from this process's reaped children.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from tools.build_notebooks import NOTEBOOKS, build, lesson_sources


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(source: Path, profile: str, out: Path) -> dict:
    import papermill

    from tlwidgets.notebook import read_records

    built = out / f"{source.stem}.ipynb"
    nbformat.write(build(source), built)
    wall, cpu = time.perf_counter(), _children_cpu()
    nb = papermill.execute_notebook(str(built), str(built), parameters={"profile": profile},
                                    cwd=str(NOTEBOOKS), kernel_name="python3",
                                    progress_bar=False, log_output=False,
                                    request_save_on_cell_execute=False, execution_timeout=3600)
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    records = read_records(nb)
    (out / f"{source.stem}.records.json").write_text(json.dumps(records, indent=1))
    return {"notebook": source.stem, "wall_s": round(wall), "cpu_s": round(cpu)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.run_notebooks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick", choices=("smoke", "quick", "workshop"))
    parser.add_argument("--out", type=Path, default=None, help="folder for executed notebooks")
    parser.add_argument("notebooks", nargs="*", help="notebook numbers or names (default: all)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix=f"tlwidgets-{args.profile}-"))
    out.mkdir(parents=True, exist_ok=True)
    sources = [s for s in lesson_sources()
               if not args.notebooks or any(s.stem.startswith(n) for n in args.notebooks)]
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    print(f"{'notebook':<28}{'wall s':>8}{'CPU s':>8}   (profile {args.profile}; output in {out})")
    for source in sources:
        row = run(source, args.profile, out)
        print(f"{row['notebook']:<28}{row['wall_s']:>8}{row['cpu_s']:>8}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
