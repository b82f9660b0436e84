"""Run the course's benchmarks and print their measured ratios in one table.

Each ``benchmarks/bench_<topic>.py`` defines ``main(quick: bool) -> list[dict]``;
each dict is one row: ``metric``, ``value`` (float), ``unit``, and optionally
``target`` (text such as ">= 0.9") and ``ok`` (bool). Ratios are measured in
the same run, so they hold on any machine.

    python benchmarks/run.py              # every benchmark
    python benchmarks/run.py featurize    # only bench_featurize.py
    python benchmarks/run.py --quick      # smaller sizes, for a smoke check
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
# Like the tests: the real fixtures beside the checkout, when nothing else is set.
_SHARED = HERE.parent.parent / "shared" / "assets"
if not os.environ.get("TLWIDGETS_DATA") and _SHARED.is_dir():
    os.environ["TLWIDGETS_DATA"] = str(_SHARED)


def discover(names: list[str]) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if names:
        found = [p for p in found if any(n in p.stem for n in names)]
    return found


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fmt_row(topic: str, row: dict) -> str:
    ok = row.get("ok")
    mark = "" if ok is None else ("PASS" if bool(ok) else "FAIL")
    value = row["value"]
    vtxt = f"{value:.3g}" if isinstance(value, float) else str(value)
    return (f"| {topic} | {row['metric']} | {vtxt} {row.get('unit', '')} | "
            f"{row.get('target', '')} | {mark} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only benchmarks whose file name contains these")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    paths = discover(args.names)
    if not paths:
        print("No benchmarks matched.", file=sys.stderr)
        return 2
    print("| benchmark | metric | measured | target | |\n|---|---|---|---|---|")
    results, failed = [], False
    for path in paths:
        topic = path.stem.removeprefix("bench_")
        t0 = time.perf_counter()
        try:
            rows = load(path).main(quick=args.quick)
        except Exception:
            traceback.print_exc()
            print(f"| {topic} | (crashed) | | | FAIL |")
            failed = True
            continue
        for row in rows:
            print(fmt_row(topic, row), flush=True)
            results.append({"benchmark": topic, **row})
            failed |= row.get("ok") is not None and not bool(row["ok"])
        print(f"| {topic} | wall time of this benchmark | {time.perf_counter() - t0:.1f} s | | |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
