"""The training helpers under MirroredStrategy on two logical CPUs match one device.

Logical devices must be configured before TensorFlow starts, so the check runs
in a fresh interpreter.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from tlwidgets import freezing, training
    import keras

    from tlwidgets.data import load_hymenoptera

    train = load_hymenoptera("train", image_size=32, per_class=8)
    val = load_hymenoptera("val", image_size=32, per_class=4)
    data = (train.images, train.labels), (val.images, val.labels)
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    for i in (1, 2):
        x = keras.layers.Conv2D(8 * i, 3, strides=2, name=f"block_{i}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block_{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block_{i}_relu")(x)
    base = keras.Model(inp, x, name="base")

    def run(strategy):
        model = training.build_classifier(base, 2, dropout=0.0, strategy=strategy)
        found = training.lr_find(model, *data[0], steps=6, batch_size=8, strategy=strategy)
        result = training.fine_tune(model, *data, base_lr=1e-4, epochs=(1, 1), unfreeze=1,
                                    layer_decay=0.5, batch_size=8)
        return {
            "replicas": int(model.distribute_strategy.num_replicas_in_sync),
            "history": result.history,
            "head": model.get_layer("head").kernel.numpy().tolist(),
            "top": freezing.find_base(model).get_layer("block_2_conv").kernel.numpy().ravel().tolist(),
            "finder_losses": found.raw_losses.tolist(),
        }

    single = run(None)
    mirrored = run(training.get_strategy(["/cpu:0", "/cpu:1"]))
    print("RESULT" + json.dumps({"single": single, "mirrored": mirrored}))
""")


def test_mirrored_strategy_matches_single_device():
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT"):])
    single, mirrored = out["single"], out["mirrored"]
    assert (single["replicas"], mirrored["replicas"]) == (1, 2)
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(mirrored["history"][key], single["history"][key],
                                   rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(mirrored["finder_losses"], single["finder_losses"], rtol=1e-3)
    # Weights: replicas sum gradients in another order; Adam scales each step to about the
    # learning rate even for near-zero gradients, so tiny differences can reach ~lr per step.
    np.testing.assert_allclose(mirrored["head"], single["head"], atol=1e-2)
    np.testing.assert_allclose(mirrored["top"], single["top"], atol=1e-3)
