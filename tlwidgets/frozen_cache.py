"""Fine-tune the top blocks from a disk cache of the frozen part's output.

Fine-tuning only the top ``k`` blocks of a pretrained base runs the frozen
lower part forward on every image in every epoch, though its output never
changes. :func:`fine_tune_top` splits the classifier at a block boundary
(:func:`split_frozen`) into a frozen *bottom* (input -> preprocessing -> the
base up to the cut) and a trainable *top* (the last ``k`` blocks and the
head), computes the bottom's output once per image (cached on disk with the
feature cache's keys and atomic writes, :mod:`tlwidgets.featurize.cache`),
and trains only the top on it. The top is made of the classifier's own
layers, so training it trains the classifier: ``model.predict`` on raw
images gives the trained model at once.

>>> model = build_classifier(backbone, 2)                      # doctest: +SKIP
>>> fine_tune_top(model, x, y, top_blocks=1, epochs=5)         # doctest: +SKIP
>>> model.predict(x_test)                                      # doctest: +SKIP

Where the cut may go. ``top_blocks`` counts the base's blocks with weights,
as :func:`tlwidgets.freezing.unfreeze_top` does (MobileNetV2's top
convolution is one); the base is the classifier's nested model
(:func:`tlwidgets.blocks.find_base`), as :func:`tlwidgets.training.build_classifier`
makes it. The top must see the bottom only through one tensor. Block
boundaries of chains and of residual blocks whose skip stays inside the block
are clean (MobileNet, MobileNetV2, ResNet50 checked). A skip that crosses the
cut (NASNet cells read the two previous cells) is refused with an error that
names the nearest clean ``top_blocks``; nothing is ever cut elsewhere silently.

The cache. One ``.npz`` per image array and mode, keyed as the feature cache
keys (the bottom's architecture, layer settings and every weight byte, the cut,
the mode and every byte of the images), so changing a weight below the cut, or
one image, computes it again, while a change above the cut does not. A subset
of the images is another array, hence another entry. Writes are atomic: an
error or a kill never leaves a readable half-written file (a killed write
leaves a hidden temporary file, which :func:`tlwidgets.featurize.clear_cache`
removes once stale); an unwritable cache is reported and the output used anyway.

Augmentation: what the cache trades away. Random augmentation (and any layer
that is random at train time, such as Dropout) before the cut must reach the
raw image, fresh in every epoch; a cache holds fixed outputs. When the bottom
holds such layers, ``augmented_copies`` must say what to do:
``0`` caches the un-augmented output and trains without augmentation (the
trade: none of its regularisation);
``k >= 1`` caches ``k`` augmented copies of every image, made with the layers
in training mode and seeded, and epoch ``e`` trains on copy ``e % k`` (the
trade: ``k`` bottom passes and ``k`` times the disk, and with ``k < epochs``
the network sees the same augmentations again, where end-to-end training draws
new ones each epoch). Left at None, such a model is refused. ``cache=False``
trains end to end, augmentation and all.

What it saves: the frozen part's forward pass in every epoch after the first
(``benchmarks/bench_top_cache.py`` measures it). The top still trains every
epoch, so the gain is largest when the top is small beside the bottom and the
epochs many, and a second run on the same images (another learning rate, a
repeat) skips the bottom pass altogether.

BatchNormalization in the top stays frozen, in inference mode, unless
``train_bn=True`` (:mod:`tlwidgets.freezing`); in the bottom it always is.
Devices: nothing here picks one; Keras places the bottom pass and the top's
training on the GPU when there is one, and the model's distribution strategy
is kept.
"""

from __future__ import annotations

import json
import time
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tlwidgets import freezing, training
from tlwidgets.blocks import Block, blocks, find_base, nested_base
from tlwidgets.featurize import cache as fcache
from tlwidgets.layers import iter_layers, replay
from tlwidgets.notices import notice

__all__ = [
    "BottomOutput",
    "CutError",
    "FrozenSplit",
    "TopRun",
    "bottom_output",
    "fine_tune_top",
    "last_run",
    "split_frozen",
]


class CutError(ValueError):
    """The model cannot be cut where asked (beyond the model, no blocks, a skip across)."""


# --- splitting ------------------------------------------------------------------------------

@dataclass
class FrozenSplit:
    """A classifier cut at a block boundary: ``top(bottom(x)) == model(x)``.

    ``bottom`` and ``top`` share the classifier's layers (no copies).
    """

    model: keras.Model
    bottom: keras.Model
    top: keras.Model
    cut: str  # the operation whose output is cached ("base/conv_pw_12_relu")
    top_blocks: list[Block]
    base_path: str  # the nested base's path ("mobilenet_0.25_128")

    @property
    def random_layers(self) -> list[str]:
        """Paths of bottom layers that are random at train time (augmentation, dropout)."""
        return _random_layers(self.bottom)


def _random_layers(model: keras.Model) -> list[str]:
    # A layer that draws random numbers holds a SeedGenerator (Keras 3.15.1: ``_seed_generators``).
    return [i.path for i in iter_layers(model) if not i.is_model
            and getattr(i.layer, "_seed_generators", None)]


def _whole_number(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, not {value!r}.")
    return int(value)


def _base_blocks(model: keras.Model) -> tuple[keras.Model, str, list[Block]]:
    base = find_base(model)
    info = nested_base(model, base)
    if info is None:
        raise CutError(
            f"{model.name!r} has no nested base with blocks with trainable weights (a nested "
            "model with at least two), so there is no top block to fine-tune above a frozen "
            "part; build the classifier on a pretrained base "
            "(training.build_classifier(backbone, n_classes)).")
    prefix = info.path + "/"
    weighted = [b for b in blocks(model) if b.paths[0].startswith(prefix) and b.trainable_size]
    name = model.name if info is None else info.name
    if not weighted:
        raise CutError(f"{name!r} has no blocks with trainable weights, so there is no top "
                       "block to fine-tune; build the classifier on a pretrained base "
                       "(training.build_classifier(backbone, n_classes)).")
    return base, ("" if info is None else info.path), weighted


def split_frozen(model: keras.Model, top_blocks: int = 1) -> FrozenSplit:
    """Cut ``model`` below its base's last ``top_blocks`` blocks (see the module docstring).

    ``top_blocks=0`` cuts after the base (the top is the head alone). Raises
    :class:`CutError` for a cut beyond the base, a base without blocks, or a
    skip connection that crosses the cut (naming the nearest clean ``top_blocks``).
    """
    if not isinstance(model, keras.Model) or not model.built or not model.inputs:
        raise TypeError("model must be a built Keras model with a defined input "
                        "(e.g. from training.build_classifier).")
    k = _whole_number("top_blocks", top_blocks, 0)
    base, base_path, weighted = _base_blocks(model)
    n = len(weighted)
    if k >= n:
        more = (f"only {n} blocks with weights ({weighted[0].name} ... {weighted[-1].name})"
                if k > n else f"{n} blocks, and with all of them trainable nothing is frozen "
                "below them to cache")
        raise CutError(f"Asked to cut below the top {k} blocks, but the base has {more}. Use "
                       f"top_blocks <= {n - 1}, or train end to end (cache=False).")
    split = _split(model, base, base_path, weighted, k)
    if isinstance(split, str):
        clean = _nearest_clean(model, base, base_path, weighted, k)
        hint = (f" Clean cuts nearby: top_blocks={' or '.join(map(str, clean))}." if clean
                else f" No clean cut within {_SEARCH} blocks of it; train end to end "
                "(cache=False).")
        raise CutError(f"Cannot cache below the top {k} block{'s' * (k != 1)} of "
                       f"{model.name!r}: {split}, so "
                       f"the top would need more than the cached tensor.{hint}")
    return split


_SEARCH = 4  # how many blocks either way to look for a clean cut (each look replays the graph)


def _nearest_clean(model, base, base_path, weighted, k) -> list[int]:
    for distance in range(1, min(len(weighted), _SEARCH + 1)):
        found = [j for j in (k - distance, k + distance) if 0 <= j < len(weighted)
                 and not isinstance(_split(model, base, base_path, weighted, j), str)]
        if found:
            return found
    return []


def _leaf(model: keras.Model, path: str) -> keras.Layer:
    return next(i.layer for i in iter_layers(model) if i.path == path)


def _split(model, base, base_path, weighted, k) -> FrozenSplit | str:
    """The split, or why the cut is not clean."""
    graph_ops = list(base.operations)
    if k == 0:
        cut_op = base  # the base's output: cut in the outer graph
    else:
        first = weighted[len(weighted) - k]
        rel = first.paths[0][len(base_path) + 1:] if base_path else first.paths[0]
        layer = _leaf(base, rel)
        at = next(i for i, op in enumerate(graph_ops) if op is layer)
        before = [op for op in graph_ops[:at] if not isinstance(op, keras.layers.InputLayer)]
        if not before:
            return "the cut falls at the base's input"
        cut_op = before[-1]
    top_input: list = []
    bottom_output: list = []
    derived: set[int] = set()  # ids of tensors computed from the cached tensor
    crossing: list[str] = []

    def tensors(args, kwargs) -> list:
        return [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]

    def visit(op, path, node, args, kwargs):
        inputs = tensors(args, kwargs)
        outputs = op(*args, **kwargs)
        if op is cut_op:
            flat = keras.tree.flatten(outputs)
            if len(flat) != 1:
                crossing.append(f"{op.name} has {len(flat)} outputs")
                return outputs
            bottom_output.append(flat[0])
            x = keras.Input(shape=flat[0].shape[1:], dtype=flat[0].dtype, name="frozen_features")
            top_input.append(x)
            derived.add(id(x))
            return x
        on_top = [t for t in inputs if id(t) in derived]
        if on_top:
            below = [t for t in inputs if id(t) not in derived]
            if below and not crossing:
                crossing.append(f"{path or op.name} also reads a tensor computed below the cut "
                                "(a skip connection crosses it)")
            derived.update(id(t) for t in keras.tree.flatten(outputs))
        return outputs

    def descend(path, m):  # into the base and the models around it, when the cut is inside
        return k > 0 and bool(base_path) and (path == base_path
                                              or base_path.startswith(path + "/"))

    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=f"images_{i}")
              for i, t in enumerate(model.inputs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outputs, _ = replay(model, inputs, descend=descend, visit=visit)
    if crossing:
        return crossing[0]
    if not top_input:
        return f"{cut_op.name} is not on the path from the input to the output"
    if any(id(t) not in derived for t in outputs):
        return "an output does not depend on the cached tensor"
    bottom = keras.Model(inputs if len(inputs) > 1 else inputs[0], bottom_output[0],
                         name=f"{model.name}_bottom")
    top = keras.Model(top_input[0], outputs if len(outputs) > 1 else outputs[0],
                      name=f"{model.name}_top")
    cut_name = cut_op.name if k == 0 else f"{base_path + '/' if base_path else ''}{cut_op.name}"
    return FrozenSplit(model, bottom, top, cut_name, weighted[len(weighted) - k:], base_path)


# --- the bottom's output, cached --------------------------------------------------------------

@dataclass
class BottomOutput:
    """The bottom's output for a set of images: ``features[c]`` is copy ``c``
    (one copy, index 0, without augmentation)."""

    features: list[np.ndarray]
    hit: bool  # every copy came from the cache
    paths: list[Path] = field(default_factory=list)  # cache files (empty without a cache)
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)


def _data_digest(x: np.ndarray) -> str:
    h = fcache.hasher()
    fcache.update_array(h, x)
    return h.hexdigest()


def _configs_digest(model: keras.Model) -> str:
    """The bottom's layer settings: weightless layers (a Rescaling's scale) count too."""
    h = fcache.hasher()
    for info in iter_layers(model):
        try:
            config = json.dumps(info.layer.get_config(), sort_keys=True, default=repr)
        except Exception:  # a custom layer without get_config
            config = type(info.layer).__qualname__
        h.update(f"{info.path}|{config}\n".encode())
    return h.hexdigest()


def _keys(split: FrozenSplit, x: np.ndarray, modes: Sequence[str]) -> list[str]:
    data = _data_digest(x)
    configs = _configs_digest(split.bottom)
    return [fcache.keys_for(split.bottom, [split.cut], data=data,
                            prep=f"frozen-bottom|{mode}|layers={configs}",
                            size=int(x.shape[1]) if x.ndim > 1 else 0, pooling="none")[0]
            for mode in modes]


def _seed_generators(model: keras.Model) -> list:
    return [g for i in iter_layers(model) if not i.is_model
            for g in (getattr(i.layer, "_seed_generators", None) or [])]


def _run_bottom(bottom: keras.Model, x: np.ndarray, batch_size: int, *, augmented_seed: int | None):
    """The bottom on ``x`` in batches, each made float32 on its own (never the whole set)."""
    training = augmented_seed is not None  # random layers on; frozen BatchNormalization stays
    run = tf.function(lambda b: bottom(b, training=training), reduce_retracing=True)

    def passes():
        for i in range(0, len(x), batch_size):
            yield np.asarray(run(tf.constant(np.asarray(x[i:i + batch_size], np.float32))))

    if not training:
        return np.concatenate(list(passes()))
    generators = _seed_generators(bottom)
    saved = [np.asarray(g.state.value) for g in generators]
    for j, g in enumerate(generators):
        g.state.assign(np.array([augmented_seed, j], dtype=saved[j].dtype))
    try:
        return np.concatenate(list(passes()))
    finally:
        for g, s in zip(generators, saved, strict=True):
            g.state.assign(s)


def bottom_output(split: FrozenSplit, x, *, cache: bool | str | Path = True, batch_size: int = 32,
                  augmented_copies: int = 0, seed: int = 0) -> BottomOutput:
    """The bottom's output on images ``x``, from the cache when it holds it.

    ``augmented_copies=0``: one copy, random layers off (inference mode).
    ``k >= 1``: ``k`` copies with the random layers on, each seeded from ``seed``
    and its index (the same copies on every call with the same ``batch_size``). Keys cover the bottom's
    architecture and weights, the cut, the mode and every byte of ``x``.
    """
    x = np.asarray(x)
    if x.dtype not in (np.uint8, np.float32):
        x = x.astype(np.float32)
    copies = _whole_number("augmented_copies", augmented_copies, 0)
    modes = ["inference"] if copies == 0 else [f"augmented|seed={seed}|batch={batch_size}|copy={c}"
                                               for c in range(copies)]
    root = fcache.cache_root(cache)
    keys = _keys(split, x, modes) if root is not None else [None] * len(modes)
    out = BottomOutput([], True)
    t0 = time.perf_counter()
    for c, (mode, key) in enumerate(zip(modes, keys, strict=True)):
        path = fcache.entry_path(root, key) if root is not None else None
        hit = fcache.load(path) if path is not None else None
        if hit is not None and hit.get("features", np.empty(0)).shape[:1] == (len(x),):
            out.features.append(hit["features"])
        else:
            out.hit = False
            seed_c = None if copies == 0 else int(seed) * 1009 + c + 1
            feats = np.asarray(_run_bottom(split.bottom, x, batch_size, augmented_seed=seed_c),
                               dtype=np.float32)
            out.features.append(feats)
            if path is not None:
                why = fcache.save(path, {"features": feats}, {
                    "version": fcache.CACHE_VERSION, "kind": "frozen-bottom", "cut": split.cut,
                    "mode": mode, "n": len(x), "shape": list(feats.shape[1:])})
                if why:
                    text = f"The frozen part's output was not cached ({why}); it is used anyway."
                    out.notices.append(text)
                    notice(text, stacklevel=3)
                    path = None
        if path is not None:
            out.paths.append(path)
    out.hit = out.hit and root is not None
    out.seconds = time.perf_counter() - t0
    return out


# --- fine-tuning ------------------------------------------------------------------------------

@dataclass
class TopRun:
    """What the last :func:`fine_tune_top` on a model did."""

    cache: bool
    cut: str | None
    hit: bool  # every output it needed (training and validation images) came from the cache
    bottom_seconds: float  # computing (or loading) the cached output; 0 end to end
    train_seconds: float
    history: dict[str, list[float]]
    augmented_copies: int | None
    cache_paths: list[Path] = field(default_factory=list)  # training copies, then validation
    notices: list[str] = field(default_factory=list)


_RUNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def last_run(model: keras.Model) -> TopRun | None:
    """The :class:`TopRun` of the last :func:`fine_tune_top` on ``model`` (None if none)."""
    return _RUNS.get(model)


def _loss_for(model: keras.Model):
    last = model.layers[-1] if model.layers else None
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return keras.losses.SparseCategoricalCrossentropy(from_logits=activation != "softmax")


def _epoch_copies(features: list[np.ndarray], y: np.ndarray, batch_size: int, seed: int):
    """Epoch ``e`` reads copy ``e % k``, shuffled anew each time round."""
    parts = [tf.data.Dataset.from_tensor_slices((f, y))
             .shuffle(len(y), seed=seed + c, reshuffle_each_iteration=True).batch(batch_size)
             for c, f in enumerate(features)]
    ds = parts[0]
    for p in parts[1:]:
        ds = ds.concatenate(p)
    return ds.repeat().prefetch(tf.data.AUTOTUNE), -(-len(y) // batch_size)


def fine_tune_top(model: keras.Model, x_train, y_train, *, top_blocks: int = 1, epochs: int = 5,
                  learning_rate: float = 1e-4, batch_size: int = 32,
                  cache: bool | str | Path = True, seed: int = 0, validation=None,
                  train_bn: bool = False, augmented_copies: int | None = None) -> keras.Model:
    """Fine-tune the base's top ``top_blocks`` blocks and the head; return ``model``, trained.

    ``cache=True`` (or a folder) trains the top on the frozen bottom's output,
    computed once and kept on disk; ``cache=False`` trains the same layers end to
    end on the raw images (same optimizer, batches and seed: the comparison).
    ``validation``: ``(images, labels)``. ``augmented_copies``: what to do with
    random layers below the cut (module docstring); needed only when there are
    some and ``cache`` is on. Adam at ``learning_rate``; integer labels. The
    run's history and timings: :func:`last_run`.
    """
    k = _whole_number("top_blocks", top_blocks, 0)
    epochs = _whole_number("epochs", epochs, 1)
    batch_size = _whole_number("batch_size", batch_size, 1)
    if not (isinstance(learning_rate, int | float) and 0 < learning_rate < np.inf):
        raise ValueError(f"learning_rate must be a positive number, not {learning_rate!r}.")
    x, y = training.check_data(model, (x_train, y_train), "train")
    val = training.check_data(model, validation, "validation") if validation is not None else None
    if augmented_copies is not None:
        _whole_number("augmented_copies", augmented_copies, 0)
    strategy = model.distribute_strategy
    use_cache = cache is not False and cache is not None
    split = split_frozen(model, k) if use_cache else None
    if split is not None and split.random_layers and augmented_copies is None:
        raise ValueError(
            f"The frozen part of {model.name!r} holds layers that are random at train time "
            f"({', '.join(split.random_layers[:4])}): augmentation must reach the raw image "
            "in every epoch, which a cache of fixed outputs cannot do. Say what to trade: "
            "augmented_copies=0 trains the top without augmentation, augmented_copies=k "
            "caches k fixed augmented copies (epoch e trains on copy e % k), or cache=False "
            "trains end to end with fresh augmentation.")
    if split is None:
        _base_blocks(model)  # the cached path's error for a base without blocks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # compiled again below
        freezing.unfreeze_top(model, k, train_bn=train_bn)  # raises for k beyond the base
    with strategy.scope():
        optimizer = keras.optimizers.Adam(float(learning_rate))
    loss = _loss_for(model)
    notes: list[str] = []
    t0 = time.perf_counter()
    if split is None:
        training.compile_classifier(model, optimizer, strategy=strategy, loss=loss)
        train_ds = training._as_dataset((x, y), batch_size, shuffle=True, seed=seed)
        val_ds = training._as_dataset(val, batch_size, shuffle=False, seed=seed) if val else None
        t1 = time.perf_counter()
        keras.utils.set_random_seed(seed)
        history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, shuffle=False,
                            verbose=0).history
        run = TopRun(False, None, False, 0.0, time.perf_counter() - t1, dict(history), None)
        _RUNS[model] = run
        return model
    copies = augmented_copies or 0
    out = bottom_output(split, x, cache=cache, batch_size=batch_size, augmented_copies=copies,
                        seed=seed)
    notes += out.notices
    hit, paths = out.hit, list(out.paths)
    val_ds = None
    if val is not None:
        vout = bottom_output(split, val[0], cache=cache, batch_size=batch_size)
        notes += vout.notices
        hit, paths = hit and vout.hit, paths + vout.paths
        val_ds = training._as_dataset((vout.features[0], val[1]), batch_size, shuffle=False,
                                      seed=seed)
    bottom_seconds = time.perf_counter() - t0
    training.compile_classifier(split.top, optimizer, strategy=strategy, loss=loss)
    steps = None
    if copies:
        train_ds, steps = _epoch_copies(out.features, y, batch_size, seed)
    else:
        train_ds = training._as_dataset((out.features[0], y), batch_size, shuffle=True, seed=seed)
    t1 = time.perf_counter()
    keras.utils.set_random_seed(seed)
    history = split.top.fit(train_ds, validation_data=val_ds, epochs=epochs, shuffle=False,
                            steps_per_epoch=steps, verbose=0).history
    train_seconds = time.perf_counter() - t1
    # The classifier's own variables were trained; compile it too, so that a later fit
    # sees the current trainable set rather than a stale one.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        training.compile_classifier(model, float(learning_rate), strategy=strategy, loss=loss)
    _RUNS[model] = TopRun(True, split.cut, hit, bottom_seconds, train_seconds,
                          dict(history), augmented_copies, paths, notes)
    return model
