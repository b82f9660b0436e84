"""Check where the feature-visualisation work runs, then run its benchmarks.

On a GPU machine this confirms that the activation pass, the filter-optimisation
step and Grad-CAM put their tensors on the GPU (and that GPU memory was used);
on a CPU-only machine it says so and still runs everything.

    python benchmarks/gpu_check.py            # placement + full benchmarks
    python benchmarks/gpu_check.py --quick    # placement + quick benchmarks
    python benchmarks/gpu_check.py --json out.json

Exit status 1 if a GPU is visible but the work was not placed on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _kind(device: str) -> str:
    return "GPU" if "GPU" in device.upper() else "CPU"


def placement() -> dict:
    """Run each kind of work once and report the device of its outputs."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tlwidgets.activations import Activations
    from tlwidgets.backbones import load_backbone
    from tlwidgets.filter_viz import FilterVisualizer
    from tlwidgets.gradcam import GradCAM

    gpus = tf.config.list_logical_devices("GPU")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bb = load_backbone("mobilenet_v2", input_size=128, weights="random")
    x = bb.preprocess(np.random.default_rng(0).integers(0, 256, (1, 128, 128, 3)))
    acts = Activations.from_backbone(bb)
    maps_device = acts._fn(x)[0].device

    viz = FilterVisualizer(bb.model, "block_8_expand_relu")
    step = viz._compiled_step(2)
    params = tf.constant(viz._init_params(2, np.random.default_rng(0)))
    zeros = tf.zeros_like(params)
    out = step(params, zeros, zeros, tf.constant(1.0), tf.constant([0, 1]),
               tf.constant([0, 1], tf.int32))
    filter_device = out[0].device

    inputs = keras.Input((128, 128, 3))
    feats = keras.layers.GlobalAveragePooling2D()(bb.model(inputs))
    clf = keras.Model(inputs, keras.layers.Dense(2)(feats))
    cam = GradCAM(clf, f"{bb.model.name}/out_relu")
    coarse, _, _ = cam._cam(tf.constant(x, tf.float32), None)
    cam_device = coarse.device

    report = {
        "gpus": [g.name for g in gpus],
        "activations": _kind(maps_device),
        "filter_step": _kind(filter_device),
        "gradcam": _kind(cam_device),
        "devices": {"activations": maps_device, "filter_step": filter_device,
                    "gradcam": cam_device},
    }
    if gpus:
        info = tf.config.experimental.get_memory_info("GPU:0")
        report["gpu_peak_memory_mb"] = round(info["peak"] / 2**20, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick benchmark sizes")
    parser.add_argument("--json", type=Path, help="write the placement and rows here")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    where = placement()
    expected = "GPU" if where["gpus"] else "CPU"
    placed = {k: where[k] for k in ("activations", "filter_step", "gradcam")}
    ok = all(v == expected for v in placed.values())
    print(f"Visible GPUs: {where['gpus'] or 'none (running on the CPU)'}")
    for name, kind in placed.items():
        print(f"  {name:<12} ran on {kind:<3} ({where['devices'][name]})")
    if "gpu_peak_memory_mb" in where:
        print(f"  GPU peak memory: {where['gpu_peak_memory_mb']} MB")
    print("Placement:", "OK" if ok else f"NOT on the {expected}", f"({time.perf_counter() - t0:.1f} s)")

    import bench_features

    print("\n| metric | measured | target | |\n|---|---|---|---|")
    rows = bench_features.main(quick=args.quick)
    for row in rows:
        mark = "" if "ok" not in row else ("PASS" if row["ok"] else "FAIL")
        print(f"| {row['metric']} | {row['value']:.3g} {row['unit']} | {row.get('target', '')} | {mark} |")
    if args.json:
        args.json.write_text(json.dumps({"placement": where, "rows": rows}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
