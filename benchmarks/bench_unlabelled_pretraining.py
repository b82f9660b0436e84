"""Notebook 06's X-ray section: unlabelled pretraining and the comparison of starts, CPU time.

The target is CPU seconds (not wall: a shared machine inflates wall time): the
section must fit notebook 06's budget, about 3 CPU minutes at the workshop profile.

    python benchmarks/run.py unlabelled_pretraining [--quick]
    python benchmarks/bench_unlabelled_pretraining.py [smoke|quick|workshop]   # + the tables
"""

from __future__ import annotations

import resource
import sys
import time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(profile: str) -> dict:
    """Pretrain every source, score them (LogME, kNN), then measure the curves."""
    from tlwidgets.data import load_pneumoniamnist
    from tlwidgets.unlabelled_pretraining import (
        compare_pretraining,
        predicted_transferability,
        pretrain_sources,
    )

    train = load_pneumoniamnist("train", rgb=False)
    test = load_pneumoniamnist("test", rgb=False)
    t0, w0 = _cpu(), time.perf_counter()
    built = []
    encoders = pretrain_sources(train.images, profile=profile,
                                progress=lambda r: built.append(r) if "cpu_seconds" in r else 0)
    t1 = _cpu()
    predicted = predicted_transferability({"pixels": None, **encoders}, train.images,
                                          train.labels)
    t2 = _cpu()
    rows = compare_pretraining(train.images, train.labels, test.images, test.labels,
                               profile=profile, sources=encoders)
    t3 = _cpu()
    return {"profile": profile, "rows": rows, "predicted": predicted, "built": built,
            "cpu": {"pretraining": t1 - t0, "LogME and kNN": t2 - t1, "curves": t3 - t2,
                    "total": t3 - t0},
            "wall": time.perf_counter() - w0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(quick: bool = False) -> list[dict]:
    out = run("quick" if quick else "workshop")
    cpu = out["cpu"]
    rows = [{"metric": f"X-ray section ({out['profile']}): {part}, CPU", "value": cpu[part],
             "unit": "s"} for part in ("pretraining", "LogME and kNN", "curves")]
    rows.append({"metric": f"X-ray section ({out['profile']}): total CPU", "value": cpu["total"],
                 "unit": "s", "target": "<= 180", "ok": cpu["total"] <= 180})
    rows.append({"metric": "X-ray section: peak resident memory", "value": out["peak_rss_mb"],
                 "unit": "MB", "target": "<= 1500", "ok": out["peak_rss_mb"] <= 1500})
    return rows


def report(out: dict) -> None:
    from tlwidgets.learning_curves import size_label, summarise_curves
    from tlwidgets.unlabelled_pretraining import negative_transfer

    print(f"profile {out['profile']}: CPU s", {k: round(v, 1) for k, v in out["cpu"].items()},
          f"wall {out['wall']:.0f} s, peak RSS {out['peak_rss_mb']:.0f} MB")
    for b in out["built"]:
        print(f"  built {b['source']}: {b['cpu_seconds']:.1f} CPU s")
    print("\nPredicted (all training images, before any labelled training):")
    for p in out["predicted"]:
        print(f"  {p['source']:28s} LogME {p['logme']:+.4f}  kNN {p['knn']:.3f}  "
              f"({p['n_features']} features)")
    print("\nMeasured test accuracy (mean ± std over repeats; size = labelled images per class):")
    for method, by_size in summarise_curves(out["rows"]).items():
        cells = "  ".join(f"{size_label(s)}: {v['mean']:.3f}±{v['std']:.3f}"
                          for s, v in by_size.items())
        print(f"  {method:50s} {cells}")
    print("\nAgainst the random start of the same architecture:")
    for f in negative_transfer(out["rows"]):
        print(f"  {f['method']:50s} {size_label(f['size']):>4s}  gap {f['gap']:+.3f}  "
              f"spread {f['spread']:.3f}  {'NEGATIVE TRANSFER' if f['negative'] else ''}")


if __name__ == "__main__":
    report(run(sys.argv[1] if len(sys.argv) > 1 else "workshop"))
