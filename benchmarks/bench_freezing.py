"""LayerFreezer latency on the largest keras.applications family (NASNetLarge, 1,040 layers).

One change is what a click does: the block states reach the real model and the
view state (blocks, counts) is published again.

    python benchmarks/run.py freezing [--quick]
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def _classifier(size: int):
    import keras

    base = keras.applications.NASNetLarge(weights=None, include_top=False,
                                          input_shape=(size, size, 3))
    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(base(inputs))
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="classifier")


def main(quick: bool = False) -> list[dict]:
    from tlwidgets import freezing
    from tlwidgets.widgets.layer_freezer import LayerFreezer

    size = 32 if quick else 331  # the change does not depend on the input size
    model = _classifier(size)
    freezing.unfreeze_top(model, 0)
    model.compile("adam", "sparse_categorical_crossentropy")
    optimizer = model.optimizer
    t0 = time.perf_counter()
    freezer = LayerFreezer(model)
    build_ms = 1000 * (time.perf_counter() - t0)
    n = len(freezer.blocks)
    rng = np.random.default_rng(0)
    times = []
    for step in range(12 if quick else 60):
        t0 = time.perf_counter()
        if step % 3 == 0:
            freezer.freeze_up_to(int(rng.integers(0, n - 1)))
        elif step % 3 == 1:
            freezer.toggle(int(rng.integers(0, n)))
        else:
            freezer.train_bn = not freezer.train_bn
        times.append(1000 * (time.perf_counter() - t0))
        assert freezer.trainable_params == freezing.param_counts(model).trainable
    layers = sum(len(b["layers"]) for b in freezer.blocks)
    median = statistics.median(times)
    recompiled = model.optimizer is not optimizer  # the freezer never recompiles behind you
    return [
        {"metric": f"LayerFreezer on NASNetLarge {size}px ({layers} layers, {n} blocks): build",
         "value": build_ms, "unit": "ms"},
        {"metric": "LayerFreezer change -> model + view state, median", "value": median,
         "unit": "ms", "target": "< 100", "ok": median < 100},
        {"metric": "LayerFreezer change -> model + view state, worst", "value": max(times),
         "unit": "ms"},
        {"metric": "recompilations caused by LayerFreezer changes", "value": int(recompiled),
         "unit": "", "target": "0", "ok": not recompiled},
    ]


if __name__ == "__main__":
    for row in main(quick=True):
        print(row)
