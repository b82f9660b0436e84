"""The learning-rate finder (fast.ai's ``lr_find``; Keras has none).

:func:`lr_find` trains a copy of a model for a few dozen batches while the
learning rate grows exponentially and suggests a rate a factor of ten below the
lowest smoothed loss; :mod:`tlwidgets.widgets.lr_finder` draws its result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tlwidgets import freezing
from tlwidgets.strategies import model_strategy
from tlwidgets.training import release_traced_gradients

__all__ = ["LRFinderResult", "lr_find"]


@dataclass
class LRFinderResult:
    lrs: np.ndarray
    losses: np.ndarray  # smoothed
    raw_losses: np.ndarray
    suggestion: float  # learning rate at the lowest smoothed loss, divided by 10

    def __str__(self) -> str:
        return f"suggested learning rate {self.suggestion:.2g} (tried {len(self.lrs)} rates)"


def lr_find(model: keras.Model, x, y=None, *, loss=None, optimizer: str | type = "adam",
            start_lr: float = 1e-7, end_lr: float = 1.0, steps: int = 100, batch_size: int = 32,
            smoothing: float = 0.9, diverge: float = 4.0,
            strategy: tf.distribute.Strategy | None = None, seed: int = 0,
            run_eagerly: bool = False) -> LRFinderResult:
    """Train a copy of ``model`` for ``steps`` batches with a learning rate growing from
    ``start_lr`` to ``end_lr``; suggest the rate at the lowest smoothed loss / 10.

    The model itself is left untouched (a copy with the same weights and frozen
    layers is trained). Stops early when the loss exceeds ``diverge`` x its best.
    """
    strategy = model_strategy(model, strategy)
    if not 0 < start_lr < end_lr:
        raise ValueError(f"Need 0 < start_lr < end_lr, got {start_lr} and {end_lr}.")
    if steps < 5:
        raise ValueError(f"steps must be at least 5, not {steps}.")
    loss = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if isinstance(x, tf.data.Dataset):
        data = x.repeat()
    else:
        order = np.random.default_rng(seed).permutation(len(x))
        data = tf.data.Dataset.from_tensor_slices(
            (np.asarray(x, np.float32)[order], np.asarray(y)[order]))
        data = data.repeat().batch(batch_size, drop_remainder=True)
    state = freezing.trainable_state(model)
    weights = model.get_weights()
    with strategy.scope():
        copy = keras.models.clone_model(model)
        copy.set_weights(weights)
        freezing.set_trainable_state(copy, state)
        opt = keras.optimizers.get(optimizer) if isinstance(optimizer, str) else optimizer()
        opt.learning_rate = start_lr
        release_traced_gradients()  # earlier sweeps' graphs may go
        copy.compile(optimizer=opt, loss=loss, run_eagerly=run_eagerly)
    factor = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs, raw, smooth = [], [], []

    class Schedule(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            lr = start_lr * factor**epoch
            copy.optimizer.learning_rate.assign(lr)
            lrs.append(lr)

        def on_epoch_end(self, epoch, logs=None):
            value = float(logs["loss"])
            raw.append(value)
            avg = value if not smooth else smoothing * smooth[-1][0] + (1 - smoothing) * value
            corrected = avg / (1 - smoothing ** len(raw))
            smooth.append((avg, corrected))
            best = min(s[1] for s in smooth)
            if not math.isfinite(value) or corrected > diverge * best:
                copy.stop_training = True

    keras.utils.set_random_seed(seed)
    copy.fit(data, epochs=steps, steps_per_epoch=1, callbacks=[Schedule()], shuffle=False, verbose=0)
    losses = np.array([s[1] for s in smooth])
    n = len(losses)
    lrs_arr = np.array(lrs[:n])
    finite = np.where(np.isfinite(losses), losses, np.inf)
    suggestion = float(lrs_arr[int(np.argmin(finite))] / 10)
    return LRFinderResult(lrs_arr, losses, np.array(raw), suggestion)
