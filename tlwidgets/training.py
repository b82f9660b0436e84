"""Fine-tuning helpers Keras 3 lacks: two phases, layer-wise learning rates.

Models must be built under the strategy they train with, which
:func:`build_classifier` does (``strategy=``); :func:`fine_tune` then trains in the
model's own strategy (:mod:`tlwidgets.strategies`). The learning-rate finder is
:mod:`tlwidgets.lr_finder`.

>>> strategy = get_strategy(["/cpu:0", "/cpu:1"])          # doctest: +SKIP
>>> model = build_classifier(backbone, 2, strategy=strategy)  # doctest: +SKIP
>>> result = fine_tune(model, (x, y), (xv, yv), head_lr=1e-3, base_lr=1e-5)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import gc
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from tlwidgets import freezing
from tlwidgets.layers import find_layer
from tlwidgets.strategies import check_strategy, fit_function, model_strategy
from tlwidgets.system import trim_heap

__all__ = [
    "FineTuneResult",
    "RunLog",
    "augmentation",
    "block_lr_factors",
    "build_classifier",
    "call_in_chunks",
    "check_data",
    "compile_classifier",
    "fine_tune",
    "free_memory",
    "index_batches",
    "layerwise_optimizer",
    "linear_probe_head",
    "reestimate_batchnorm",
    "release",
    "release_traced_gradients",
    "train_throughput",
]


# --- data in and out of a model used briefly --------------------------------------------------

def index_batches(parts: Sequence[np.ndarray], index: np.ndarray, y: np.ndarray,
                  batch_size: int, *, seed: int):
    """Full batches of rows ``index`` of ``parts`` (labels ``y``, one per row of ``index``)
    for ever, reshuffled each epoch, for ``fit(..., steps_per_epoch=)``.

    Epoch e reads ``parts[e % len(parts)]`` (k augmented copies, or just the images).
    One batch shape, so one training graph for every training-set size (a new
    ``tf.data`` pipeline per fit costs seconds); a batch at a time in memory, never a
    copy of the subset. Tiny sets make up a batch from several epochs.
    """
    rng = np.random.default_rng(seed)
    order, epoch, n = np.empty(0, dtype=np.int64), 0, len(index)
    while True:
        while len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(n) + epoch * n])
            epoch += 1
        take, order = order[:batch_size], order[batch_size:]
        at, copy = take % n, (take // n) % len(parts)
        x = np.stack([parts[c][index[i]] for c, i in zip(copy, at, strict=True)])
        yield x, y[at]


def call_in_chunks(model: keras.Model, x: np.ndarray, chunk: int = 32) -> np.ndarray:
    """``model(x, training=False)`` in chunks of ``chunk`` rows, as one array: plain calls,
    so a model used briefly traces no prediction graph (seconds and tens of MB each; a model
    scored many times is faster through ``predict``). A plain call keeps every
    layer's output until it returns, so the chunks are small (MobileNet at 128 px holds
    about 4 MB per image)."""
    return np.concatenate([np.asarray(model(x[i:i + chunk], training=False))
                           for i in range(0, len(x), chunk)])


def reestimate_batchnorm(model: keras.Model, x: np.ndarray, chunk: int = 32) -> None:
    """Set every BatchNormalization layer's moving statistics to those of ``x`` under the
    model's current weights (as SWA's ``bn_update`` does), in chunks of ``chunk`` images:
    chunk k weighs in with momentum (k - 1) / k, so the result is the chunks' average. A
    network trained for a few dozen steps, or not at all, needs it: its statistics are
    still those of the start (mean 0, variance 1), and in inference mode a random MobileNet
    then passes on features of about 1e-18. A plain call holds every layer's output: keep
    ``chunk`` small (MobileNet at 128 px: about 4 MB an image)."""
    from tlwidgets.layers import iter_layers
    from tlwidgets.model_walk import is_batchnorm

    layers = [info.layer for info in iter_layers(model) if is_batchnorm(info.layer)]
    momenta = [layer.momentum for layer in layers]
    try:
        for k, start in enumerate(range(0, len(x), chunk), start=1):
            for layer in layers:
                layer.momentum = (k - 1) / k
            model(x[start:start + chunk], training=True)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum


def linear_probe_head(head: keras.layers.Dense, features: np.ndarray, y: np.ndarray) -> None:
    """LP of LP-FT (Kumar et al., 2022): a logistic regression on ``features`` (labels
    ``y`` in 0..n-1) becomes the weights of the Dense ``head`` (logits, or the input of
    its softmax; for two classes, ±half the binary model's logit).

    On the raw features, not standardised ones: a standardised probe folded into the
    head multiplies each feature by 1 / its spread, so fine-tuning a network whose
    features barely vary (a MobileNet at 48 px has most of them near 0) moves the
    logits by orders of magnitude and collapses to one class.
    """
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=3000).fit(features, y)
    coef, bias = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # one logit difference -> two logits
        coef, bias = np.vstack([-coef / 2, coef / 2]), np.array([-bias[0] / 2, bias[0] / 2])
    kernel, b = head.get_weights()
    if kernel.shape[1] != coef.shape[0]:
        raise ValueError(f"The head has {kernel.shape[1]} outputs but the labels hold "
                         f"{coef.shape[0]} classes; every class must be in the draw.")
    head.set_weights([coef.T.astype(kernel.dtype), bias.astype(b.dtype)])


# --- models -----------------------------------------------------------------------------------

def augmentation(*, flip: bool = True, rotation: float = 0.05, zoom: float = 0.1,
                 contrast: float = 0.1, seed: int = 0) -> keras.Sequential:
    """Random flips, rotations, zooms and contrast, as Keras preprocessing layers (train time only)."""
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, seed=seed + 1))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, seed=seed + 2))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, seed=seed + 3))
    return keras.Sequential(layers, name="augmentation")


def build_classifier(base, n_classes: int, *, augment: keras.Layer | None = None,
                     preprocess: keras.Layer | None = None, dropout: float = 0.2,
                     strategy: tf.distribute.Strategy | None = None, seed: int = 0,
                     name: str = "classifier") -> keras.Model:
    """``inputs -> [augment] -> preprocess -> copy of base -> pooling -> dropout -> dense``.

    ``base`` is a :class:`tlwidgets.backbones.Backbone` (its preprocessing is
    used) or a Keras model taking images. The base is *copied* (same weights),
    so experiments built from one backbone never share weights, and the copy's
    variables live under ``strategy``. The base starts frozen; the head is
    trainable and outputs logits.
    """
    strategy = check_strategy(strategy)
    if hasattr(base, "model") and hasattr(base, "preprocessing_layer"):
        preprocess = preprocess or base.preprocessing_layer()
        base = base.model
    if not isinstance(base, keras.Model) or not base.built or not base.inputs:
        raise ValueError("base must be a built Keras model (or a Backbone) with a defined input.")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, not {n_classes}.")
    weights = base.get_weights()
    with strategy.scope():
        keras.utils.set_random_seed(seed)
        copy = keras.models.clone_model(base)
        copy.set_weights(weights)
        inputs = keras.Input(shape=base.inputs[0].shape[1:], name="images")
        x = augment(inputs) if augment is not None else inputs
        x = preprocess(x) if preprocess is not None else x
        x = copy(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
        outputs = keras.layers.Dense(n_classes, name="head")(x)
        model = keras.Model(inputs, outputs, name=name)
    freezing.unfreeze_top(model, 0, base=copy)
    return model


def compile_classifier(model: keras.Model, optimizer: keras.optimizers.Optimizer | float = 1e-3,
                       *, strategy: tf.distribute.Strategy | None = None, **kwargs) -> keras.Model:
    """Compile for integer labels and logits (Adam when ``optimizer`` is a learning rate)."""
    strategy = model_strategy(model, strategy)
    release_traced_gradients()  # earlier fits' graphs may go once their models do
    with strategy.scope():
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            optimizer = keras.optimizers.Adam(float(optimizer))
        kwargs.setdefault("loss", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        kwargs.setdefault("metrics", ["accuracy"])
        model.compile(optimizer=optimizer, **kwargs)
    return model


# --- layer-wise learning rates ----------------------------------------------------------------

@functools.cache
def _layerwise_class(cls: type) -> type:
    class Layerwise(cls):
        """``cls`` with a learning-rate factor per variable (``lr_factors``: {id(var): factor})."""

        def __init__(self, *args, lr_factors: Mapping[int, float] | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self._tlw_factors = dict(lr_factors or {})
            self._tlw_by_index: list[float] = []

        def build(self, var_list):
            super().build(var_list)
            self._tlw_by_index = [self._tlw_factors.get(id(v), 1.0) for v in var_list]

        def update_step(self, gradient, variable, learning_rate):
            factor = self._tlw_by_index[self._get_variable_index(variable)]
            if factor != 1.0:
                learning_rate = learning_rate * factor
            return super().update_step(gradient, variable, learning_rate)

        def _tlw_clone(self):
            fresh = type(self).from_config(self.get_config())
            fresh._tlw_factors = dict(self._tlw_factors)
            return fresh

    Layerwise.__name__ = Layerwise.__qualname__ = f"Layerwise{cls.__name__}"
    return Layerwise


def layerwise_optimizer(optimizer: keras.optimizers.Optimizer, model: keras.Model,
                        factors: Mapping[str | int, float]) -> keras.optimizers.Optimizer:
    """A copy of ``optimizer`` whose learning rate is multiplied by ``factors[layer]`` per layer.

    Keys are layer paths, names or indices (a nested model covers all its
    layers; later keys override earlier ones); unlisted layers use factor 1.
    Works with any Keras optimizer (the factor scales the step, not the
    gradient, so it holds for Adam too) and under ``MirroredStrategy``.
    """
    if optimizer.built:
        raise ValueError("Pass an optimizer that has not been used yet (it is copied, not wrapped).")
    by_var: dict[int, float] = {}
    for key, factor in factors.items():
        if not factor >= 0:
            raise ValueError(f"Learning-rate factor for {key!r} must be >= 0, not {factor!r}.")
        layer = find_layer(model, key).layer
        by_var.update({id(v): float(factor) for v in layer.weights})
    cls = _layerwise_class(type(optimizer))
    with model.distribute_strategy.scope():  # its variables live where the model's do
        fresh = cls.from_config(optimizer.get_config())
    fresh._tlw_factors = by_var
    return fresh


def block_lr_factors(model: keras.Model, decay: float = 0.5, *,
                     base: keras.Model | str | None = None) -> dict[str, float]:
    """``{layer path: factor}``: the base's top block gets 1, the next ``decay``, then ``decay**2``...

    Layers outside the base (the head) keep factor 1.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1], not {decay!r}.")
    base_model = freezing.find_base(model) if base is None else base
    nested = base_model is not model
    found = freezing.blocks(model, base_model if nested else None)
    weighted = [b for b in found if b.params]
    factors = {}
    for depth, block in enumerate(reversed(weighted)):
        factors.update({p: decay**depth for p in block.paths})
    return factors


# --- run log (the monitor's data) -------------------------------------------------------------

class RunLog(keras.callbacks.Callback):
    """Records metrics per epoch and per batch, and marks (e.g. "unfroze 2 blocks") for one run.

    Keras reports running means within an epoch; per-batch values are recovered
    from them. ``listeners`` are called as ``listener(log, event)`` after every
    update, with ``event`` one of ``"batch"``, ``"epoch"``, ``"mark"``.
    """

    def __init__(self, name: str = "run", *, listeners: Sequence[Callable] = ()):
        super().__init__()
        self.name = name
        self.epochs: dict[str, list[float]] = {}
        self.epoch_x: list[int] = []
        self.batches: dict[str, list[float]] = {}
        self.batch_x: list[float] = []
        self.marks: list[tuple[float, str]] = []
        self.listeners = list(listeners)
        self._epoch = 0
        self._means: dict[str, float] = {}

    def mark(self, text: str, at: float | None = None) -> None:
        """Note an event at epoch position ``at`` (default: where training stands now)."""
        self.marks.append((float(len(self.epoch_x) if at is None else at), text))
        self._notify("mark")

    def _notify(self, event: str) -> None:
        for listener in self.listeners:
            listener(self, event)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._means = {}

    def on_train_batch_end(self, batch, logs=None):
        steps = (self.params or {}).get("steps") or (batch + 1)
        n = batch + 1
        for key, mean in (logs or {}).items():
            mean = float(mean)
            value = n * mean - (n - 1) * self._means.get(key, 0.0)
            self._means[key] = mean
            self.batches.setdefault(key, []).append(value)
        self.batch_x.append(self._epoch + n / steps)
        self._notify("batch")

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_x.append(epoch + 1)
        for key, value in (logs or {}).items():
            self.epochs.setdefault(key, []).append(float(value))
        self._notify("epoch")

    def on_train_end(self, logs=None):
        self._model = None  # do not keep the model (and its graphs) alive after training

    def best(self, metric: str = "val_accuracy", mode: str = "max") -> float | None:
        values = self.epochs.get(metric)
        if not values:
            return None
        return max(values) if mode == "max" else min(values)

    def last(self, metric: str) -> float | None:
        values = self.epochs.get(metric)
        return values[-1] if values else None


# --- two-phase fine-tuning --------------------------------------------------------------------

@dataclass
class FineTuneResult:
    """Histories of both phases, joined; ``unfrozen_at`` is the epoch phase 2 starts from."""

    history: dict[str, list[float]]
    unfrozen_at: int
    head_counts: freezing.ParamCounts
    fine_tune_counts: freezing.ParamCounts
    seconds: tuple[float, float] = (0.0, 0.0)
    notes: list[str] = field(default_factory=list)

    def final(self, metric: str = "val_accuracy") -> float:
        return self.history[metric][-1]


def _as_dataset(data, batch_size: int, *, shuffle: bool, seed: int):
    if isinstance(data, tf.data.Dataset):
        return data
    x, y = data
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.float32), np.asarray(y)))
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def check_data(model: keras.Model, data, what: str = "train"):
    """``(images, labels)`` as float32 images and integer labels, checked against ``model``
    before TensorFlow sees them; a ``tf.data.Dataset`` is returned as it is.

    Raises with the sizes involved for: a set that is not a pair, an empty set, images of
    the wrong shape, NaN or infinite pixels, labels of another length than the images,
    labels that are not class ids (strings, one-hot rows, fractions) or out of range.
    """
    if isinstance(data, tf.data.Dataset):
        return data
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise TypeError(f"{what} must be (images, labels) or a batched tf.data.Dataset, "
                        f"not {type(data).__name__}.")
    x, y = (np.asarray(part) for part in data)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"The {what} set is empty (images of shape {x.shape}); pass at least "
                         "one image per class.")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"{what} images must be numbers (an array N x H x W x C), not {x.dtype}.")
    expected = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    if expected is not None and (x.ndim != len(expected) + 1 or any(
            e is not None and e != got for e, got in zip(expected, x.shape[1:], strict=False))):
        raise ValueError(f"{what} images have shape {x.shape[1:]} each, but {model.name!r} "
                         f"takes {expected} (None: any size); resize them first.")
    if y.ndim != 1:
        hint = " They look one-hot: pass labels.argmax(axis=1)." if y.ndim == 2 else ""
        raise ValueError(f"{what} labels must be one class id per image (shape (N,)), got "
                         f"shape {y.shape}.{hint}")
    if len(y) != len(x):
        raise ValueError(f"The {what} set has {len(x)} images but {len(y)} labels; give one "
                         "label per image.")
    if not np.issubdtype(y.dtype, np.number):
        example = ", ".join(repr(v) for v in np.unique(y.astype(str))[:3])
        raise TypeError(f"{what} labels must be integer class ids 0..n-1, not {y.dtype} "
                        f"({example}, ...). Encode them: classes, labels = "
                        "np.unique(labels, return_inverse=True).")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise TypeError(f"{what} labels must be whole class ids 0..n-1; got fractions "
                            "or NaN (probabilities? pass labels.argmax(axis=1)).")
        y = y.astype(np.int64)
    n_classes = model.outputs[0].shape[-1] if model.outputs else None
    if n_classes and n_classes > 1 and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{what} labels run from {y.min()} to {y.max()}, but {model.name!r} "
                         f"has {n_classes} outputs (class ids 0..{n_classes - 1}).")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            raise ValueError(f"{int(bad.sum())} of {len(x)} {what} images contain NaN or "
                             f"infinite values (the first is image {int(np.argmax(bad))}); "
                             "fix or drop them before training.")
    return x.astype(np.float32, copy=False), y


def _unfreeze(model, unfreeze, train_bn):
    if isinstance(unfreeze, dict):  # a trainable_state saved before phase 1
        freezing.set_trainable_state(model, unfreeze)
        return freezing.param_counts(model), "unfroze the layers chosen before training"
    if unfreeze == "all":
        return freezing.unfreeze_all(model, train_bn=train_bn), "unfroze all layers"
    if isinstance(unfreeze, int | np.integer):
        return (freezing.unfreeze_top(model, int(unfreeze), train_bn=train_bn),
                f"unfroze top {unfreeze} blocks")
    return freezing.unfreeze_from(model, unfreeze, train_bn=train_bn), f"unfroze from {unfreeze}"


def fine_tune(model: keras.Model, train, validation=None, *,
              head_lr: float = 1e-3, base_lr: float = 1e-5, epochs: tuple[int, int] = (10, 5),
              unfreeze: int | str | None = 2, layer_decay: float | None = None,
              train_bn: bool = False, batch_size: int = 32, patience: int = 3,
              callbacks: Sequence[keras.callbacks.Callback] = (), seed: int = 0,
              run_eagerly: bool = False) -> FineTuneResult:
    """Train the head on a frozen base at ``head_lr``, then unfreeze and train on at ``base_lr``.

    ``epochs``: (head epochs, fine-tuning epochs); ``(0, n)`` skips phase 1, ``(n, 0)``
    trains only the head. ``train``/``validation``: ``(images, labels)`` (checked by
    :func:`check_data` before anything changes) or a batched ``tf.data.Dataset``.
    Phase 1 stops early when ``val_loss`` stops improving (``patience``) and keeps the
    best head. ``unfreeze``: top-k blocks (int), a layer path, ``"all"``, or None for
    the layers trainable when called (e.g. chosen in a LayerFreezer). ``layer_decay``
    gives lower blocks geometrically smaller rates (:func:`block_lr_factors`).
    ``run_eagerly`` skips building graphs (faster for a handful of batches, slower
    beyond). Each phase is compiled here, in the model's strategy, and checked by
    :class:`~tlwidgets.freezing.RecompileCheck`. Callbacks with a ``mark(text)`` method
    (such as :class:`RunLog`) are told when layers are unfrozen. Under
    ``MultiWorkerMirroredStrategy`` both phases run in :func:`tlwidgets.multi_worker.fit`.
    """
    strategy = model.distribute_strategy
    head_epochs, base_epochs = _two_epochs(epochs)
    for name, value in (("head_lr", head_lr), ("base_lr", base_lr)):
        if not (isinstance(value, int | float) and 0 < value < math.inf):
            raise ValueError(f"{name} must be a positive learning rate, not {value!r}.")
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, not {batch_size!r}.")
    train = check_data(model, train, "train")
    validation = check_data(model, validation, "validation") if validation is not None else None
    # Check the unfreeze request before anything changes.
    state = freezing.trainable_state(model)
    if unfreeze is None:
        unfreeze = state
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a trial run: the model is compiled below
                _unfreeze(model, unfreeze, train_bn)
        finally:
            freezing.set_trainable_state(model, state)
    train_ds = _as_dataset(train, batch_size, shuffle=True, seed=seed)
    val_ds = _as_dataset(validation, batch_size, shuffle=False, seed=seed) if validation else None
    keras.utils.set_random_seed(seed)
    check = [freezing.RecompileCheck()]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # compiled again just below
        head_counts = freezing.unfreeze_top(model, 0)
    compile_classifier(model, head_lr, strategy=strategy, run_eagerly=run_eagerly)
    early = []
    if val_ds is not None and patience:
        early = [keras.callbacks.EarlyStopping("val_loss", patience=patience,
                                               restore_best_weights=True)]
    t0 = time.perf_counter()
    fit = fit_function(model)  # a custom loop across workers (model.fit fails there)
    h1 = fit(train_ds, validation_data=val_ds, epochs=head_epochs, shuffle=False,
             callbacks=[*check, *early, *callbacks], verbose=0).history if head_epochs else {}
    t1 = time.perf_counter()
    done = len(next(iter(h1.values()), []))

    if not base_epochs:
        return FineTuneResult(dict(h1), done, head_counts, head_counts, (t1 - t0, 0.0), [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # compiled again just below
        counts, note = _unfreeze(model, unfreeze, train_bn)
    with strategy.scope():
        optimizer = keras.optimizers.Adam(base_lr)
    if layer_decay is not None:
        optimizer = layerwise_optimizer(optimizer, model, block_lr_factors(model, layer_decay))
    compile_classifier(model, optimizer, strategy=strategy, run_eagerly=run_eagerly)
    for cb in callbacks:
        if hasattr(cb, "mark"):
            cb.mark(note, at=done)
    h2 = fit(train_ds, validation_data=val_ds, initial_epoch=done,
             epochs=done + base_epochs, callbacks=[*check, *callbacks], shuffle=False,
             verbose=0).history
    t2 = time.perf_counter()
    history = {k: list(h1.get(k, [])) + list(h2.get(k, [])) for k in {*h1, *h2}}
    return FineTuneResult(history, done, head_counts, counts, (t1 - t0, t2 - t1), [note])


def _two_epochs(epochs) -> tuple[int, int]:
    try:
        head, base = epochs
    except (TypeError, ValueError):
        raise TypeError(f"epochs must be (head epochs, fine-tuning epochs), e.g. (10, 5); "
                        f"got {epochs!r}.") from None
    for value in (head, base):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"epochs must be two whole numbers >= 0, got {epochs!r}.")
    return int(head), int(base)


# --- memory between runs ----------------------------------------------------------------------

def release(model: keras.Model) -> keras.Model:
    """Drop what training compiled for ``model`` (its train/test/predict functions and their
    graphs); the model and its weights stay usable, and the next ``fit`` compiles again."""
    for attr in ("train_function", "test_function", "predict_function"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    return model


def release_traced_gradients() -> int:
    """Unpin the graphs of finished training steps; returns how many pins it removed.

    Every traced Keras training step all-reduces its gradients, and TensorFlow registers
    that all-reduce's gradient function in its global gradient registry, which never lets
    go of it (tensorflow/tensorflow#97697; keras-team/tf-keras#898). The function holds the
    step's tensors, so the whole traced graph (about 60 MB for a MobileNet fine-tune) outlived
    its model. The registry needs it only while the step is being traced: dropping it
    afterwards lets an unreferenced model's graph go. Called by :func:`free_memory` and
    before each compile of the course's models; other custom gradients are left alone.
    """
    from tensorflow.python.framework import ops

    registry = ops._gradient_registry._registry
    stale = [name for name, entry in registry.items()
             if name.startswith("CustomGradient-") and _is_all_reduce_gradient(entry)]
    for name in stale:
        del registry[name]
    return len(stale)


def _is_all_reduce_gradient(entry) -> bool:
    """Whether a registry entry is the gradient of ``ReplicaContext.all_reduce``."""
    def closure(fn) -> dict:
        cells = getattr(fn, "__closure__", None) or ()
        return dict(zip(getattr(fn, "__code__", None).co_freevars, cells, strict=True))

    try:
        tape_grad = closure(entry["type"])["tape_grad_fn"].cell_contents
        grad = closure(tape_grad)["grad_fn"].cell_contents
    except (AttributeError, KeyError, TypeError, ValueError):  # another TensorFlow's layout
        return False
    return "all_reduce" in getattr(grad, "__qualname__", "")


def free_memory() -> None:
    """Free what finished runs left behind: Keras' global state (layer names, seeds), every
    model no longer referenced with its compiled functions (a garbage collection), and, with
    glibc, freed heap pages the process would otherwise keep resident.

    Models still referenced (by a variable or a widget) stay valid; call it between
    experiments, not while one is training.
    """
    release_traced_gradients()
    keras.backend.clear_session(free_memory=True)
    gc.collect()
    trim_heap()


# --- throughput -------------------------------------------------------------------------------

def train_throughput(model: keras.Model, images: np.ndarray, labels: np.ndarray, *,
                     batch_size: int = 32, epochs: int = 2, lr: float = 1e-5,
                     strategy: tf.distribute.Strategy | None = None) -> tuple[float, float]:
    """Training speed in images/s: (first epoch, which includes building the graph; later epochs).

    Trains the model as it is frozen now (it is compiled again, and its weights change).
    """
    compile_classifier(model, lr, strategy=strategy)
    ds = _as_dataset((images, labels), batch_size, shuffle=False, seed=0).cache()
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(ds, epochs=max(2, epochs), callbacks=[Timer()], shuffle=False, verbose=0)
    n = len(images)
    return n / times[0], n * (len(times) - 1) / sum(times[1:])
