"""Fine-tuning speed: frozen vs unfrozen base vs forward-only (LayerFreezer latency: bench_freezing).

    python benchmarks/run.py fine_tuning [--quick]
"""

from __future__ import annotations

import time
import warnings

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


def main(quick: bool = False) -> list[dict]:
    return _throughput(quick)  # LayerFreezer latency: bench_freezing.py


if __name__ == "__main__":
    for row in main(quick=True):
        print(row)
