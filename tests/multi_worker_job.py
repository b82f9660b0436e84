"""One worker of the two that tests/test_multi_worker.py starts (TF_CONFIG on 127.0.0.1).

``python tests/multi_worker_job.py OUT IMAGES CACHE`` on every worker runs, in order:
the course's ``fine_tune`` under MultiWorkerMirroredStrategy (the custom loop; then
again with augmentation layers and dropout), the
sharded featurisation of the folder IMAGES (shards through the cache folder CACHE),
``model.fit`` of a tf.keras (tf-keras, ``TF_USE_LEGACY_KERAS=1``) model, and last
``model.fit`` of a Keras 3 model (expected to fail). Each step's outcome goes to
``OUT/worker-<i>-<step>.json|npz``; a failing step is recorded and the next one runs.
The data and models are built here and by the tests from the same functions.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

SIZE = 16  # pixels


def images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` small RGB images in two classes (class 1 brighter), uint8, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    x = rng.integers(0, 160, size=(n, SIZE, SIZE, 3)) + 80 * labels[:, None, None, None]
    return x.astype(np.uint8), labels.astype(np.int64)


def write_folder(root: Path, per_class: int = 7) -> Path:
    """``root/<class>/<image>.png`` (two classes) and one file that is not an image."""
    from PIL import Image

    x, y = images(2 * per_class, seed=1)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"img_{i:02d}.png")
    (root / "class_0" / "notes.txt").write_text("not an image")
    return root


def base_model():
    """A tiny backbone (random weights, two conv blocks) for fine_tune."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    for i in (1, 2):
        x = keras.layers.Conv2D(4 * i, 3, strides=2, name=f"block_{i}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block_{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block_{i}_relu")(x)
    return keras.Model(inp, x, name="base")


def featuriser(cache: Path):
    """A Featuriser over a tiny network with fixed random weights."""
    import keras

    from tlwidgets.featurize import Featuriser

    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, name="conv1", activation="relu")(inp)
    x = keras.layers.Conv2D(6, 3, name="conv2", activation="relu")(x)
    model = keras.Model(inp, x, name="tiny")
    return Featuriser(model, layer="conv2", preprocess="mobilenet", batch_size=4,
                      cache=cache, progress=False)


FINE_TUNE = {"base_lr": 1e-3, "head_lr": 1e-2, "epochs": (2, 2), "unfreeze": 1,
             "layer_decay": 0.5, "batch_size": 8, "patience": 3, "seed": 0}


def fine_tune(strategy, *, augmented: bool = False):
    """The course's two-phase fine_tune of a classifier built under ``strategy``; without
    dropout, or ``augmented`` as a learner builds it (augmentation layers, dropout 0.2)."""
    from tlwidgets import training

    train, val = images(24, seed=2), images(8, seed=3)
    build = {"augment": training.augmentation()} if augmented else {"dropout": 0.0}
    model = training.build_classifier(base_model(), 2, strategy=strategy, **build)
    result = training.fine_tune(model, train, val, **FINE_TUNE)
    return model, result


def _record(out: Path, name: str, step) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        outcome = step()
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        keras_frames = [f for f in tb if f"{os.sep}keras{os.sep}" in f.filename][-3:]
        frames = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in keras_frames + tb[-2:]]
        outcome = {"error": type(exc).__name__, "message": str(exc)[:400],
                   "message_end": str(exc)[-300:], "frames": frames}
    outcome["seconds"] = time.perf_counter() - t0
    outcome["cpu_seconds"] = time.process_time() - c0
    (out / f"{name}.json").write_text(json.dumps(outcome))


def main(out: Path, folder: Path, cache: Path) -> None:
    t0 = time.perf_counter()
    import tensorflow as tf

    from tlwidgets import multi_worker, strategies

    me = multi_worker.task()
    strategy = strategies.get_strategy()  # MultiWorkerMirroredStrategy: TF_CONFIG names 2
    import keras

    keras.config.disable_traceback_filtering()  # record where errors come from
    tag = f"worker-{me.index}"
    (out / f"{tag}-start.json").write_text(json.dumps({"seconds": time.perf_counter() - t0,
                                                           "cpu_seconds": time.process_time()}))

    def course_fine_tune(augmented=False):
        model, result = fine_tune(strategy, augmented=augmented)
        name = "augmented-weights" if augmented else "weights"
        np.savez(out / f"{tag}-{name}.npz", *model.get_weights())
        return {"strategy": type(strategy).__name__, "task": [me.index, me.count],
                "replicas": strategy.num_replicas_in_sync, "history": result.history,
                "unfrozen_at": result.unfrozen_at}

    def sharded_features():
        from tlwidgets.featurize import featurise_sharded

        fs = featurise_sharded(featuriser(cache), folder, timeout=120, poll=0.2)
        np.savez(out / f"{tag}-features.npz", features=fs.features, labels=fs.labels)
        return {"keys": fs.keys, "paths": fs.paths, "skipped": fs.skipped,
                "class_names": fs.class_names}

    def legacy_fit():
        x, y = images(32, seed=4)
        ds = tf.data.Dataset.from_tensor_slices((x.astype("float32") / 255, y)).batch(8)
        with strategy.scope():
            tf.keras.utils.set_random_seed(0)
            model = tf.keras.Sequential([tf.keras.layers.Flatten(),
                                         tf.keras.layers.Dense(2)])
            model.compile(optimizer=tf.keras.optimizers.SGD(0.01),
                          loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(ds, epochs=3, verbose=0).history
        np.savez(out / f"{tag}-legacy.npz", *model.get_weights())
        return {"module": type(model).__module__, "history": history}

    def keras3_fit():
        x, y = images(32, seed=4)
        ds = tf.data.Dataset.from_tensor_slices((x.astype("float32") / 255, y)).batch(8)
        with strategy.scope():
            model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(),
                                      keras.layers.Dense(2)])
            model.compile(optimizer=keras.optimizers.SGD(0.05),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return {"history": model.fit(ds, epochs=1, verbose=0).history}

    _record(out, f"{tag}-fine_tune", course_fine_tune)
    _record(out, f"{tag}-fine_tune_augmented", lambda: course_fine_tune(augmented=True))
    _record(out, f"{tag}-features", sharded_features)
    _record(out, f"{tag}-legacy", legacy_fit)
    _record(out, f"{tag}-keras3_fit", keras3_fit)  # last: it fails under Keras 3


if __name__ == "__main__":
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.keras is tf-keras; keras is Keras 3
    main(*(Path(a) for a in sys.argv[1:4]))
