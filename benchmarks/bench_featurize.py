"""Featuriser speed and memory, as ratios measured in one run.

* throughput vs the bare ``model.predict`` of the cut model on the same batches
  (preprocessed beforehand, outside the timer): target >= 0.9x;
* vs a per-image eager loop (``model(x[None])`` per image): target >= 5x;
* a cached re-run vs the first run (array input, and a folder), in wall and CPU
  time: target >= 100x;
* peak memory featurising 20,000 images of 128 px from a folder: < 1.5 GB.
  The 20,000 images are synthesised from the 397 real ants/bees fixture images
  (random crops and flips, written as JPEG files to a temporary folder) and
  featurised in a fresh process, whose peak RSS (TensorFlow included) is reported.

Images are real fixture photos (hymenoptera), cycled with flips to the sizes
needed. Timings are best-of-3, alternating the methods compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not os.environ.get("TLWIDGETS_DATA") and (ROOT.parent / "shared" / "assets").is_dir():
    os.environ["TLWIDGETS_DATA"] = str(ROOT.parent / "shared" / "assets")


def _images(n: int, size: int) -> np.ndarray:
    from tlwidgets.data import load_hymenoptera

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = np.concatenate([load_hymenoptera(s, image_size=size).images for s in ("train", "val")])
    reps = []
    i = 0
    while sum(len(r) for r in reps) < n:
        block = base if i % 2 == 0 else base[:, :, ::-1]  # flipped copies: distinct images
        reps.append(np.roll(block, i // 2, axis=0))
        i += 1
    return np.ascontiguousarray(np.concatenate(reps)[:n])


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _throughput_rows(quick: bool) -> list[dict]:
    return _throughput_at(224, quick) + _throughput_at(128, quick)


def _throughput_at(size: int, quick: bool) -> list[dict]:
    import tensorflow as tf

    from tlwidgets.backbones import load_backbone
    from tlwidgets.featurize import Featuriser

    n = 128 if quick else 512
    x = _images(n, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bb = load_backbone("auto", input_size=size)
    model = bb.model
    xp = bb.preprocess(x)  # the bare predict gets preprocessed input, prepared untimed
    feat = Featuriser(bb, cache=False, progress=False, batch_size=32).fit()
    feat.transform(x[:64])  # compile once
    model.predict(xp[:64], batch_size=32, verbose=0)
    t_feat, t_pred = [], []
    for _ in range(3):  # alternate, keep the best of each
        t_feat.append(_best(lambda: feat.transform(x), 1))
        t_pred.append(_best(lambda: model.predict(xp, batch_size=32, verbose=0), 1))
    feat_ips, pred_ips = n / min(t_feat), n / min(t_pred)
    # The floor of overhead: the same network and pooling as one compiled function,
    # called on preprocessed batches already in memory (no streaming, no checks).
    fn = tf.function(lambda b: tf.reduce_mean(model(b, training=False), axis=[1, 2]))
    fn(xp[:32])
    fn_ips = n / _best(lambda: [fn(xp[i:i + 32]).numpy() for i in range(0, n, 32)], 3)
    # The way it is often written: one image at a time, eagerly.
    m = 16 if quick else 48
    model(xp[:1], training=False)

    def eager():
        return np.stack([np.asarray(model(bb.preprocess(img[None]), training=False))
                         .mean(axis=(1, 2))[0] for img in x[:m]])

    eager_ips = m / _best(eager, 2)
    same = np.allclose(feat.transform(x[:m]), eager(), rtol=1e-3, atol=1e-4)
    tag = f"{bb.name} {size} px"
    return [
        {"metric": f"featuriser img/s ({tag})", "value": feat_ips, "unit": "img/s"},
        {"metric": f"bare model.predict img/s ({tag})", "value": pred_ips, "unit": "img/s"},
        {"metric": f"per-image eager img/s ({tag})", "value": eager_ips, "unit": "img/s"},
        {"metric": f"featuriser / bare compiled tf.function loop ({tag})",
         "value": feat_ips / fn_ips, "unit": "x"},
        {"metric": f"featuriser / model.predict ({tag})", "value": feat_ips / pred_ips,
         "unit": "x", "target": ">= 0.9", "ok": feat_ips / pred_ips >= 0.9},
        {"metric": f"featuriser / per-image eager ({tag}; same features: {same})",
         "value": feat_ips / eager_ips, "unit": "x", "target": ">= 5",
         "ok": feat_ips / eager_ips >= 5 and same},
    ]


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def _best_timed(fn, repeats: int = 3) -> tuple[float, float]:
    runs = [_timed(fn) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def _speedup_rows(what: str, first: tuple[float, float], again: tuple[float, float]) -> list[dict]:
    wall, cpu = first[0] / again[0], first[1] / max(again[1], 1e-9)
    return [
        {"metric": f"cached re-run speed-up ({what}), wall time", "value": wall, "unit": "x",
         "target": ">= 100", "ok": wall >= 100},
        {"metric": f"  the same in CPU time ({first[1]:.2f} s -> {again[1] * 1000:.1f} ms)",
         "value": cpu, "unit": "x", "target": ">= 100", "ok": cpu >= 100},
        {"metric": f"  cached re-run, wall ({what})", "value": again[0] * 1000, "unit": "ms"},
    ]


def _cache_rows(quick: bool) -> list[dict]:
    """A cached re-run vs computing, on an array and on a folder (the key is a full XXH3 hash
    of the array, or each file's path, size and mtime, so a hit costs little more than reading
    the cached features)."""
    from tlwidgets import assets
    from tlwidgets.featurize import Featuriser

    n = 128 if quick else 512
    x = _images(n, 224)
    folder = assets.resolve("hymenoptera").path / "val"
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Featuriser("auto", cache=False, progress=False).transform(x[:32])  # load + compile untimed
        f = Featuriser("auto", cache=Path(tmp) / "a", progress=False)
        first = _timed(lambda: f.featurise(x))
        again = _best_timed(lambda: f.featurise(x))
        assert f.featurise(x).from_cache
        rows = _speedup_rows(f"{n} images, array, 224 px", first, again)
        g = Featuriser("auto", cache=Path(tmp) / "b", progress=False)
        first = _timed(lambda: g.featurise(folder))
        again = _best_timed(lambda: g.featurise(folder))
        assert g.featurise(folder).from_cache
        rows += _speedup_rows("hymenoptera val folder, 224 px", first, again)
    return rows


def _write_folder(root: Path, n: int, size: int) -> None:
    """``n`` JPEGs of ``size`` px: random crops and flips of the real fixture images."""
    from PIL import Image

    from tlwidgets import assets
    from tlwidgets.data import list_image_folder

    src = assets.resolve("hymenoptera").path
    items = []
    for split in ("train", "val"):
        found, classes, _ = list_image_folder(src / split)
        items += [(p, classes[label]) for p, label in found]
    rng = np.random.default_rng(0)
    for c in {c for _, c in items}:
        (root / c).mkdir(parents=True, exist_ok=True)
    opened = {}
    for i in range(n):
        path, cls = items[i % len(items)]
        if path not in opened:
            with Image.open(path) as im:
                opened[path] = im.convert("RGB")
        im = opened[path]
        w, h = im.size
        s = int(min(w, h) * rng.uniform(0.6, 1.0))
        x0, y0 = rng.integers(0, w - s + 1), rng.integers(0, h - s + 1)
        out = im.crop((x0, y0, x0 + s, y0 + s)).resize((size, size), Image.BILINEAR)
        if rng.random() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        out.save(root / cls / f"{i:05d}.jpg", quality=90)


# Peak RSS from /proc/self/status (VmHWM: this process image only; getrusage's
# ru_maxrss would carry the parent's peak across fork and exec).
_CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")

def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

from tlwidgets.featurize import Featuriser
f = Featuriser("auto", input_size=128, cache=False, progress=False, batch_size=64).fit()
base = hwm_kb()
t = time.perf_counter()
fs = f.featurise(sys.argv[1])
dt = time.perf_counter() - t
print(json.dumps({"n": len(fs), "shape": list(fs.features.shape), "seconds": dt,
                  "peak_kb": hwm_kb(), "before_kb": base,
                  "backbone": f.describe().splitlines()[0]}))
"""


def _memory_rows(quick: bool) -> list[dict]:
    n = 2000 if quick else 20000
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        _write_folder(Path(tmp), n, 128)
        t_write = time.perf_counter() - t
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ROOT), os.environ.get("PYTHONPATH", "")]))
        out = subprocess.run([sys.executable, "-c", _CHILD, tmp], capture_output=True, text=True,
                             env=env, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["n"] == n, res
    peak_gb = res["peak_kb"] / 2**20
    return [
        {"metric": f"synthesised {n} JPEGs of 128 px (crops/flips of fixtures)",
         "value": t_write, "unit": "s"},
        {"metric": f"featurise {n} images of 128 px from a folder", "value": n / res["seconds"],
         "unit": "img/s"},
        {"metric": "  process RSS before featurising (TensorFlow + model)",
         "value": res["before_kb"] / 2**20, "unit": "GB"},
        {"metric": f"peak memory featurising {n} images of 128 px", "value": peak_gb,
         "unit": "GB", "target": "< 1.5", "ok": peak_gb < 1.5},
    ]


def main(quick: bool = False, parts: tuple[str, ...] = ("throughput", "cache", "memory")) -> list[dict]:
    rows = {"throughput": _throughput_rows, "cache": _cache_rows, "memory": _memory_rows}
    return [row for part in parts for row in rows[part](quick)]


if __name__ == "__main__":  # python benchmarks/bench_featurize.py [--quick] [cache|memory|...]
    sys.path.insert(0, str(ROOT))  # this checkout's tlwidgets, as benchmarks/run.py does
    chosen = tuple(a for a in sys.argv[1:] if not a.startswith("-"))
    for row in main(quick="--quick" in sys.argv, parts=chosen or ("throughput", "cache", "memory")):
        print(row)
