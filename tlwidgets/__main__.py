"""Command line: ``python -m tlwidgets {doctor,fetch,list,clean}``."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from tlwidgets import assets


def _cmd_list(args: argparse.Namespace) -> int:
    ids = assets.pack(args.pack) if args.pack else assets.registered()
    for asset_id in ids:
        a = assets.get_asset(asset_id)
        size = a.download_size or a.file_size
        size_txt = f"{size / 1e6:7.1f} MB" if size else "      ? MB"
        print(f"{a.id:30} {size_txt}  {a.licence:20.20}  {a.title}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    ids = list(args.ids)
    if args.pack:
        ids += assets.pack(args.pack)
    if not ids:
        print("Nothing to fetch: name asset ids or --pack NAME "
              f"(packs: {', '.join(assets.PACKS)}).", file=sys.stderr)
        return 2
    failed = 0
    results = assets.fetch_many(ids, force=args.force, progress=not args.quiet)
    while True:
        try:
            asset_id, got = next(results)
        except StopIteration:
            break
        except Exception as exc:  # never a traceback: say it, and stop (the generator is done)
            print(f"FAILED   (unexpected {type(exc).__name__}: {exc})", file=sys.stderr)
            return 1
        if isinstance(got, assets.AssetError):
            failed += 1
            print(f"FAILED   {asset_id}: {got}", file=sys.stderr)
        else:
            print(f"ok       {asset_id}  ({got.source}: {got.path})")
    if failed:
        total = len(dict.fromkeys(ids))
        rest = "; the others are ready" if failed < total else ""
        print(f"{failed} of {total} assets failed{rest}.", file=sys.stderr)
    return 1 if failed else 0


def _cmd_clean(args: argparse.Namespace) -> int:
    from tlwidgets.doctor import clean, find_leftovers

    removed = clean()
    for path in removed:
        print(f"removed  {path}")
    kept = [item for item in find_leftovers() if item.path.exists()]
    for item in kept:
        print(f"kept     {item.path} ({item.why})")
    print(f"{len(removed)} removed, {len(kept)} kept.")
    return 0


def report_json(report) -> dict:
    """The doctor's report as plain data (``doctor --json``)."""
    rows = [{"id": r.asset.id, "state": r.state, "path": str(r.path) if r.path else None,
             "fix": r.fix} for r in report.assets]
    cache = {"path": report.cache_dir, "usable": report.cache_problem is None,
             "problem": report.cache_problem}
    left = [{"path": str(i.path), "kind": i.kind, "bytes": i.size, "stale": i.stale,
             "why": i.why} for i in report.leftovers]
    return {"device": report.device.as_dict(), "assets": rows, "cache": cache,
            "leftovers": left, "ready": report.ready, "fixes": report.fixes}


def _cmd_doctor(args: argparse.Namespace) -> int:
    from tlwidgets.doctor import diagnose, format_report

    report = diagnose(pack=args.pack)
    if args.json:
        print(json.dumps(report_json(report), indent=2, default=str))
    else:
        print(format_report(report))
    return 1 if args.strict and not report.ready else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tlwidgets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("doctor", help="what is installed, present, missing, and which device runs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--pack", default="workshop", choices=list(assets.PACKS))
    p.add_argument("--strict", action="store_true", help="exit 1 unless ready")
    p.set_defaults(func=_cmd_doctor)
    p = sub.add_parser("fetch", help="download assets into the cache, verified")
    p.add_argument("ids", nargs="*", help="asset ids (see `list`)")
    p.add_argument("--pack", choices=list(assets.PACKS), help="fetch a whole pack")
    p.add_argument("--force", action="store_true", help="download again even if present")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_fetch)
    p = sub.add_parser("clean", help="remove what killed downloads and cache writes left behind")
    p.set_defaults(func=_cmd_clean)
    p = sub.add_parser("list", help="the asset catalogue")
    p.add_argument("--pack", choices=list(assets.PACKS))
    p.set_defaults(func=_cmd_list)
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _say  # notices and warnings as one plain line each
        return args.func(args)


def _say(message, category, filename, lineno, file=None, line=None) -> None:
    from tlwidgets.notices import Notice

    label = "note" if issubclass(category, Notice) else "warning"
    print(f"{label}: {message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
