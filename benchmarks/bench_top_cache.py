"""Top-block fine-tuning from a cache of the frozen part vs end to end (issue #14, item 6).

Two classifiers built alike (MobileNet alpha 0.25, ImageNet weights, 128 px) on
the cats-vs-dogs photos fine-tune their base's top block and head for the same
epochs, batches and seed: one with ``fine_tune_top(cache=<empty folder>)`` (the
bottom's output is computed once, written to disk, and the top trains on it:
the timing includes that first pass), the other with ``cache=False`` (every
epoch runs the whole network). Reported: wall and CPU time
(``time.process_time``, all threads) of each, their ratios, both accuracies on
the same test photos, and the time of a second cached run that finds the cache
full. Targets: speed-up >= 3x, accuracies within one point. The CPU-time ratio
is what ``ok`` judges: on a shared machine the wall time grows with other
processes' load, the CPU time much less.

    python benchmarks/run.py top_cache [--quick]
"""

from __future__ import annotations

import tempfile
import time
import warnings

import numpy as np

IMAGE_SIZE = 128
TOP_BLOCKS = 1
EPOCHS = 10  # the TensorFlow tutorial's fine-tuning length; the speed-up grows with it
LEARNING_RATE = 3e-4


def _images(files, size: int) -> np.ndarray:
    from tlwidgets.images import load_image

    return np.stack([load_image(p, size) for p in files.paths]).astype(np.float32)


def _timed(fn):
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def _accuracy(model, x, y) -> float:
    return float((model.predict(x, batch_size=64, verbose=0).argmax(axis=1) == y).mean())


def main(quick: bool = False) -> list[dict]:
    import tensorflow as tf

    from tlwidgets import frozen_cache, training
    from tlwidgets.backbones import load_backbone
    from tlwidgets.data import cats_vs_dogs_files

    per_class, per_class_test = (100, 100) if quick else (400, 300)
    epochs = 3 if quick else EPOCHS
    train = cats_vs_dogs_files("train", per_class=per_class, seed=0)
    test = cats_vs_dogs_files("test", per_class=per_class_test, seed=0)
    x, y = _images(train, IMAGE_SIZE), train.labels
    xt, yt = _images(test, IMAGE_SIZE), test.labels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backbone = load_backbone("mobilenet_0.25", input_size=IMAGE_SIZE)
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    kwargs = dict(top_blocks=TOP_BLOCKS, epochs=epochs, learning_rate=LEARNING_RATE,
                  batch_size=32, seed=0)
    backbone.model.predict(backbone.preprocess(x[:32]), verbose=0)  # TensorFlow start-up

    with tempfile.TemporaryDirectory(prefix="bench-top-cache-") as folder:
        cached = training.build_classifier(backbone, 2, seed=0)
        wall_c, cpu_c = _timed(lambda: frozen_cache.fine_tune_top(cached, x, y, cache=folder,
                                                                  **kwargs))
        run = frozen_cache.last_run(cached)
        direct = training.build_classifier(backbone, 2, seed=0)
        wall_e, cpu_e = _timed(lambda: frozen_cache.fine_tune_top(direct, x, y, cache=False,
                                                                  **kwargs))
        again = training.build_classifier(backbone, 2, seed=0)
        wall_h, cpu_h = _timed(lambda: frozen_cache.fine_tune_top(again, x, y, cache=folder,
                                                                  **kwargs))
        hit = frozen_cache.last_run(again).hit
    acc_c, acc_e = _accuracy(cached, xt, yt), _accuracy(direct, xt, yt)
    gap = 100 * abs(acc_c - acc_e)
    setting = (f"{backbone.name} {IMAGE_SIZE}px, top {TOP_BLOCKS} block + head, {epochs} "
               f"epochs, {len(x)} train / {len(xt)} test photos, {device}")
    return [
        {"metric": f"end to end: wall ({setting})", "value": wall_e, "unit": "s"},
        {"metric": "end to end: CPU time", "value": cpu_e, "unit": "s"},
        {"metric": "from the cache, first run (bottom pass + write included): wall",
         "value": wall_c, "unit": "s"},
        {"metric": "from the cache, first run: CPU time", "value": cpu_c, "unit": "s"},
        {"metric": f"  of which the bottom pass (cut at {run.cut})", "value": run.bottom_seconds,
         "unit": "s"},
        {"metric": f"from the cache, second run (cache hit: {hit}): wall", "value": wall_h,
         "unit": "s"},
        {"metric": "speed-up, CPU time (end to end / first cached run)", "value": cpu_e / cpu_c,
         "unit": "x", "target": ">= 3", "ok": cpu_e / cpu_c >= 3},
        {"metric": "speed-up, wall (end to end / first cached run)", "value": wall_e / wall_c,
         "unit": "x"},
        {"metric": "speed-up, CPU time (end to end / cached run with a cache hit)",
         "value": cpu_e / cpu_h, "unit": "x"},
        {"metric": "test accuracy, end to end", "value": 100 * acc_e, "unit": "%"},
        {"metric": "test accuracy, from the cache", "value": 100 * acc_c, "unit": "%"},
        {"metric": "accuracy gap", "value": gap, "unit": "points", "target": "<= 1",
         "ok": gap <= 1},
    ]


if __name__ == "__main__":
    for row in main(quick=True):
        print(row)
