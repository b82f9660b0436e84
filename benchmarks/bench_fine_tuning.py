"""Fine-tuning speed (frozen vs unfrozen base vs forward-only) and LayerFreezer latency.

    python benchmarks/run.py fine_tuning [--quick]
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np

IMAGE_SIZE = 128  # the course's input size


def _throughput(quick: bool) -> list[dict]:
    from tlwidgets import freezing, training
    from tlwidgets.backbones import load_backbone
    from tlwidgets.data import load_hymenoptera

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backbone = load_backbone("auto", input_size=IMAGE_SIZE)
    data = load_hymenoptera("train", image_size=IMAGE_SIZE, per_class=32 if quick else 96)
    x, y = data.images, data.labels
    epochs = 2 if quick else 3

    inputs = backbone.preprocess(x)
    backbone.model.predict(inputs[:32], batch_size=32, verbose=0)  # warm up
    t0 = time.perf_counter()
    backbone.model.predict(inputs, batch_size=32, verbose=0)
    forward = len(x) / (time.perf_counter() - t0)

    model = training.build_classifier(backbone, 2)
    _, frozen = training.train_throughput(model, x, y, epochs=epochs)
    freezing.unfreeze_all(model)
    first, unfrozen = training.train_throughput(model, x, y, epochs=epochs)
    name = f"{backbone.name} {IMAGE_SIZE}px, batch 32, {len(x)} images"
    return [
        {"metric": f"forward only (featuriser), {name}", "value": forward, "unit": "img/s"},
        {"metric": "training, frozen base", "value": frozen, "unit": "img/s"},
        {"metric": "training, fully unfrozen (BN frozen)", "value": unfrozen, "unit": "img/s"},
        {"metric": "training, unfrozen, first epoch (graph build)", "value": first,
         "unit": "img/s"},
        {"metric": "frozen training / forward-only speed", "value": frozen / forward,
         "unit": "x", "target": ">= 0.5", "ok": frozen / forward >= 0.5},
        {"metric": "frozen / unfrozen training speed", "value": frozen / unfrozen, "unit": "x",
         "target": "> 1", "ok": frozen > unfrozen},
    ]


def _freezer_latency(quick: bool) -> list[dict]:
    import keras

    from tlwidgets import freezing
    from tlwidgets.widgets.layer_freezer import LayerFreezer

    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(224, 224, 3))
    inputs = keras.Input((224, 224, 3))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    freezing.unfreeze_top(model, 0)
    model.compile("adam", "sparse_categorical_crossentropy")
    compiled = (id(model.optimizer), id(model._compile_config))
    t0 = time.perf_counter()
    freezer = LayerFreezer(model)
    build_ms = 1000 * (time.perf_counter() - t0)
    n = len(freezer.blocks)
    rng = np.random.default_rng(0)
    times = []
    for step in range(10 if quick else 40):
        t0 = time.perf_counter()
        if step % 3 == 0:
            freezer.freeze_up_to(int(rng.integers(0, n - 1)))
        elif step % 3 == 1:
            freezer.toggle(int(rng.integers(0, n)))
        else:
            freezer.train_bn = not freezer.train_bn
        times.append(1000 * (time.perf_counter() - t0))
        assert freezer.trainable_params == freezing.param_counts(model).trainable
    recompiled = compiled != (id(model.optimizer), id(model._compile_config))
    layers = sum(len(b["layers"]) for b in freezer.blocks)
    return [
        {"metric": f"LayerFreezer on ResNet50 ({layers} layers, {n} blocks): build", "value": build_ms,
         "unit": "ms"},
        {"metric": "LayerFreezer change -> model + view state, median", "value": statistics.median(times),
         "unit": "ms", "target": "< 200", "ok": statistics.median(times) < 200},
        {"metric": "LayerFreezer change -> model + view state, max", "value": max(times),
         "unit": "ms", "target": "< 200", "ok": max(times) < 200},
        {"metric": "recompilations caused by LayerFreezer changes", "value": int(recompiled),
         "unit": "", "target": "0", "ok": not recompiled},
    ]


def main(quick: bool = False) -> list[dict]:
    return _freezer_latency(quick) + _throughput(quick)


if __name__ == "__main__":
    for row in main(quick=True):
        print(row)
