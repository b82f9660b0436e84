"""Training on several machines: ``MultiWorkerMirroredStrategy`` with Keras 3.

Under Keras 3 (3.15, TensorFlow 2.21) ``model.fit`` inside a
``tf.distribute.MultiWorkerMirroredStrategy`` fails ("Attempt to convert a value
(PerReplica:{...}) with an unsupported type", keras-team/keras#20585,
tensorflow/tensorflow#72388). A custom training loop over the same Keras 3 model
works, and :func:`fit` is that loop with ``model.fit``'s arguments, so
:func:`tlwidgets.training.fine_tune` trains a model built under the strategy on
every worker (:func:`tlwidgets.strategies.fit_function` picks it).

>>> strategy = get_strategy()   # MultiWorkerMirroredStrategy when TF_CONFIG names 2+ tasks  # doctest: +SKIP
>>> model = build_classifier(backbone, 2, strategy=strategy)   # doctest: +SKIP
>>> fine_tune(model, (x, y), (xv, yv))                          # doctest: +SKIP

:func:`launch_local` starts N workers of one script on this machine (TF_CONFIG on
127.0.0.1), which is how the tests run it; ``python -m tlwidgets.multi_worker 2
train.py`` does the same from a shell.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

__all__ = ["Task", "fit", "is_multi_worker", "launch_local", "multi_worker_strategy", "task"]


# --- the cluster, from TF_CONFIG ---------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    """This process's place in the cluster: ``index`` of ``count`` training tasks (chief first)."""

    index: int = 0
    count: int = 1


def task(tf_config: str | None = None) -> Task:
    """This process's task from ``TF_CONFIG`` (the environment variable by default).

    Chief and workers are counted (the chief, if any, is task 0); without TF_CONFIG
    the process is task 0 of 1.
    """
    raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not raw.strip():
        return Task()
    try:
        config = json.loads(raw)
        cluster, me = config.get("cluster", {}), config.get("task", {})
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        kind, index = me.get("type"), int(me.get("index", 0))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"TF_CONFIG is not valid: {exc}. Expected JSON like "
                         '{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]}, '
                         '"task": {"type": "worker", "index": 0}}.') from None
    tasks = {"chief": chiefs, "worker": workers}
    if kind not in tasks or not 0 <= index < len(tasks[kind]):
        raise ValueError(f"TF_CONFIG's task {me!r} is not in its cluster (chief: {len(chiefs)}, "
                         f"worker: {len(workers)}); give task.type 'chief' or 'worker' and an "
                         "index below that many.")
    return Task(index + (len(chiefs) if kind == "worker" else 0), len(chiefs) + len(workers))


@functools.cache
def multi_worker_strategy() -> tf.distribute.Strategy:
    """The process's ``MultiWorkerMirroredStrategy`` (made once; make it before any other
    TensorFlow work, as collective ops are configured at start-up)."""
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` (which ``model.fit`` cannot use)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


# --- fit, as a custom loop ---------------------------------------------------------------------

def _per_example_loss(loss):
    """``loss`` (as compiled) giving one value per example."""
    if isinstance(loss, keras.losses.Loss):
        return type(loss).from_config({**loss.get_config(), "reduction": None})
    fn = keras.losses.get(loss)
    if fn is None or isinstance(fn, keras.losses.Loss):
        raise ValueError(f"Compile the model with one loss (a keras.losses.Loss or its name), "
                         f"not {loss!r}, to train it across workers.")
    return fn  # loss functions already give one value per example


def _wants_accuracy(model) -> bool:
    metrics = (model.get_compile_config() or {}).get("metrics") or []
    if isinstance(metrics, str):
        metrics = [metrics]
    if any(m != "accuracy" for m in metrics):
        raise ValueError(f"Across workers the loop reports the loss and 'accuracy' only; "
                         f"{model.name!r} was compiled with metrics={metrics!r}. Compile it "
                         "with metrics=['accuracy'] (or none) and compute others afterwards.")
    return bool(metrics)


def _sharded(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Shard by data (each global batch split over the replicas, as one process would batch it)."""
    policy = tf.data.experimental.AutoShardPolicy
    if ds.options().experimental_distribute.auto_shard_policy != policy.AUTO:
        return ds
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy.DATA
    return ds.with_options(options)


def _steps(model, loss_fn, accuracy: bool, *, train: bool):
    """A (traced) step: batch -> [sum of losses, correct predictions, examples], summed over
    every replica of every worker."""
    strategy = model.distribute_strategy
    optimizer = model.optimizer

    def replica_step(x, y):
        y = tf.reshape(y, [-1])
        count = tf.shape(y)[0]
        total = tf.distribute.get_replica_context().all_reduce("SUM", count)
        if train:
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                per_example = loss_fn(y, logits)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=total)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            variables = model.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables,
                                          strict=True))
        else:
            logits = model(x, training=False)
            per_example = loss_fn(y, logits)
        correct = (tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), tf.cast(y, tf.int64)),
                                         tf.float32))
                   if accuracy else tf.constant(0.0))
        return tf.stack([tf.reduce_sum(tf.cast(per_example, tf.float32)), correct,
                         tf.cast(count, tf.float32)])

    def step(batch):
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise ValueError("Across workers, datasets must yield (images, labels) pairs "
                             "(sample weights are not supported).")
        sums = strategy.run(replica_step, args=tuple(batch))
        return strategy.reduce("SUM", sums, axis=None)

    return step if model.run_eagerly else tf.function(step)


def fit(model: keras.Model, x: tf.data.Dataset, *, validation_data: tf.data.Dataset | None = None,
        epochs: int = 1, initial_epoch: int = 0,
        callbacks: Sequence[keras.callbacks.Callback] = (), **ignored) -> keras.callbacks.History:
    """``model.fit(x, ...)`` for a compiled model built under ``MultiWorkerMirroredStrategy``.

    ``x`` and ``validation_data`` are batched ``(images, labels)`` datasets (the global
    batch, each worker building the same one); every worker runs this with the same
    arguments. The loss (one compiled loss) and, if compiled, ``accuracy`` are summed over
    all replicas, so every worker logs the same numbers and its callbacks (EarlyStopping
    included) take the same decisions. ``verbose``, ``shuffle`` and other ``fit`` options
    are accepted and ignored (shuffle the dataset itself).
    """
    strategy = model.distribute_strategy
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ValueError(f"Compile {model.name!r} first (inside strategy.scope()).")
    if not isinstance(x, tf.data.Dataset):
        raise TypeError("Across workers, pass a batched tf.data.Dataset of (images, labels).")
    loss_fn, accuracy = _per_example_loss(model.loss), _wants_accuracy(model)
    if not model.optimizer.built:  # its slots mirrored, made before the step is traced
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
    train_step = _steps(model, loss_fn, accuracy, train=True)
    val_step = _steps(model, loss_fn, accuracy, train=False)
    train = strategy.experimental_distribute_dataset(_sharded(x))
    val = (strategy.experimental_distribute_dataset(_sharded(validation_data))
           if validation_data is not None else None)
    cardinality = int(x.cardinality())
    hooks = keras.callbacks.CallbackList(list(callbacks), add_history=True, model=model,
                                         epochs=epochs, verbose=0,
                                         steps=cardinality if cardinality > 0 else None)
    history = next(cb for cb in hooks.callbacks if isinstance(cb, keras.callbacks.History))

    def logs(sums: np.ndarray, prefix: str = "") -> dict[str, float]:
        n = max(sums[2], 1.0)
        out = {f"{prefix}loss": sums[0] / n}
        if accuracy:
            out[f"{prefix}accuracy"] = sums[1] / n
        return out

    model.stop_training = False
    hooks.on_train_begin()
    epoch_logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        hooks.on_epoch_begin(epoch)
        sums = np.zeros(3)
        for i, batch in enumerate(train):
            hooks.on_train_batch_begin(i)
            sums += train_step(batch).numpy()
            hooks.on_train_batch_end(i, logs(sums))
        epoch_logs = logs(sums)
        if val is not None:
            sums = sum((val_step(batch).numpy() for batch in val), np.zeros(3))
            epoch_logs.update(logs(sums, "val_"))
        hooks.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    hooks.on_train_end(epoch_logs)
    return history


# --- launching workers on one machine ----------------------------------------------------------

def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def launch_local(argv: Sequence[str], n_workers: int = 2, *, timeout: float = 600,
                 env: dict[str, str] | None = None,
                 log_dir: str | os.PathLike | None = None) -> list[subprocess.CompletedProcess]:
    """Run ``python argv...`` as ``n_workers`` workers on this machine and wait for all.

    Each worker gets ``TF_CONFIG`` naming every worker on 127.0.0.1 (free ports) and its
    own index. Each result's ``stdout`` holds the worker's output (stdout and stderr),
    also kept in ``log_dir/worker-<i>.log`` when ``log_dir`` is given. If one worker
    fails or ``timeout`` seconds pass, the others are stopped (a worker waiting for a
    dead peer would wait for ever): their ``returncode`` is ``-9``.
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be at least 1, not {n_workers!r}.")
    with tempfile.TemporaryDirectory(prefix="tlw-workers-") as scratch:
        logs = [Path(log_dir or scratch) / f"worker-{i}.log" for i in range(n_workers)]
        logs[0].parent.mkdir(parents=True, exist_ok=True)
        cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(n_workers)]}
        procs = []
        try:
            for i, log in enumerate(logs):
                config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
                with open(log, "w") as out:  # the child keeps its own copy of the handle
                    procs.append(subprocess.Popen(
                        [sys.executable, *argv], stdout=out, stderr=subprocess.STDOUT,
                        env={**os.environ, **(env or {}), "TF_CONFIG": config}))
            deadline = time.monotonic() + timeout
            while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
                if any(p.poll() not in (None, 0) for p in procs):
                    break  # one failed: its peers would wait for it for ever
                time.sleep(0.2)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for p in procs:
                p.wait()
        return [subprocess.CompletedProcess([sys.executable, *argv], p.returncode,
                                            log.read_text(errors="replace"), None)
                for p, log in zip(procs, logs, strict=True)]


def main(args: Sequence[str] | None = None) -> int:
    """``python -m tlwidgets.multi_worker N script.py [args...]``: N local workers."""
    args = list(sys.argv[1:] if args is None else args)
    if len(args) < 2 or not args[0].isdigit():
        print("usage: python -m tlwidgets.multi_worker N_WORKERS script.py [args...]",
              file=sys.stderr)
        return 2
    results = launch_local(args[1:], int(args[0]), timeout=float("inf"))
    for i, r in enumerate(results):
        print(f"--- worker {i} (exit {r.returncode}) ---\n{r.stdout}")
    return max((abs(r.returncode) for r in results), default=0)


if __name__ == "__main__":
    raise SystemExit(main())
