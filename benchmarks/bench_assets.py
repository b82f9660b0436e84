"""Asset resolution: first (checksummed) look-up vs later look-ups in the same process."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tlwidgets import assets

FIXTURE_IDS = ("mobilenet-0.25-224-no-top", "hymenoptera", "pneumoniamnist-balanced",
               "glove-6b-50d-top20k", "ud-en-ewt-train", "ud-en-ewt-dev", "ud-en-ewt-test",
               "uner-en-ewt-dev", "uner-en-ewt-test")


def main(quick: bool = False) -> list[dict]:
    shared = Path(__file__).resolve().parents[2] / "shared" / "assets"
    os.environ.setdefault("TLWIDGETS_DATA", str(shared))
    assets._memo.clear()
    t0 = time.perf_counter()
    for asset_id in FIXTURE_IDS:
        assets.resolve(asset_id, download=False, standin=False)
    cold = time.perf_counter() - t0
    reps = 20 if quick else 200
    t0 = time.perf_counter()
    for _ in range(reps):
        for asset_id in FIXTURE_IDS:
            assets.resolve(asset_id, download=False, standin=False)
    warm = (time.perf_counter() - t0) / reps
    size = sum(f.stat().st_size for i in FIXTURE_IDS
               for f in [assets.locate(i).path] if f.is_file())
    return [
        {"metric": "first resolve of the fixtures (sha256 verified)", "value": cold * 1e3,
         "unit": "ms", "target": f"{size / 1e6:.0f} MB hashed"},
        {"metric": "later resolve of the fixtures (memoised)", "value": warm * 1e3, "unit": "ms"},
        {"metric": "speed-up of a later resolve", "value": cold / warm, "unit": "x",
         "target": ">= 10", "ok": cold / warm >= 10},
    ]
