"""A pretrained network, cut at a chosen layer, as a scikit-learn transformer.

>>> from sklearn.linear_model import LogisticRegression            # doctest: +SKIP
>>> from sklearn.pipeline import make_pipeline                      # doctest: +SKIP
>>> clf = make_pipeline(Featuriser("auto", drop_last=0), LogisticRegression())  # doctest: +SKIP
>>> clf.fit(train.images, train.labels).score(val.images, val.labels)            # doctest: +SKIP

What it does:

* **Cut** the network by layer path/name (``layer="conv_pw_11_relu"``), by index
  (``layer=-5``) or by dropping the last N top-level layers (``drop_last=2``).
  Layers inside nested models (a base inside a classifier, names with dots)
  are reached through :func:`tlwidgets.layers.activation_model`.
* **Pool** feature maps to vectors: global average (``"avg"``), global max
  (``"max"``) or ``"flatten"``. Vector outputs pass through unchanged.
* **Stream** from a numpy array (or a list of differently sized images), a
  folder ``root/<class>/<image>``, a ``tf.data.Dataset`` or any iterable of
  images/batches: at most a few batches are in memory at once. Grey and RGBA
  images are converted to RGB and other sizes resized to the network's input
  size, each with a notice.
* **Run fast**: each batch goes through one compiled ``tf.function`` (the
  backbone's preprocessing, the cut network and the pooling in one graph),
  never image by image in eager mode.
* **Cache** features on disk (``$TLWIDGETS_CACHE/features``), keyed by the
  network's weights and architecture, the cut layer, the pooling, the
  preprocessing, the input size and the input data itself, so a second run is
  instant and a changed layer or image never reuses stale features. Files are
  written to a temporary name and renamed into place, so an interrupted run
  never leaves a half-written cache entry.

How the input data is identified for the cache: arrays by a SHA-1 of their
bytes (plus shape and dtype); folders by each file's relative path, class,
size and modification time (like ``make``); datasets by a SHA-1 of every
element they yield (a shuffling or augmenting dataset therefore never hits the
cache, which is the safe answer). Plain iterators cannot be read twice, so they
are only cached when you name them: ``featurise(it, cache_key="my-data-v1")``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = [
    "CACHE_VERSION",
    "FeatureSet",
    "Featuriser",
    "FeaturiserError",
    "candidate_layers",
    "clear_cache",
    "featurise_layers",
]

CACHE_VERSION = 1
POOLINGS = ("avg", "max", "flatten")
_HASH_CHUNK = 8 << 20
_hash_pool: ThreadPoolExecutor | None = None
_io_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


class FeaturiserError(ValueError):
    """The input or the configuration cannot be featurised; the message says what to do."""


# --------------------------------------------------------------------------- results


@dataclass
class FeatureSet:
    """Features of one input, with what the input said about itself.

    ``features`` is ``(n, d)`` float32; ``layers`` holds one array per layer
    when several were asked for (:func:`featurise_layers`). ``labels`` and
    ``class_names`` come from a folder or a labelled dataset (or the ``y`` you
    passed); ``skipped`` lists the files that were not images or did not decode.
    """

    features: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    from_cache: bool = False
    seconds: float = 0.0
    source: str = ""
    keys: list[str] = field(default_factory=list)
    layers: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def images_per_second(self) -> float:
        return len(self) / self.seconds if self.seconds > 0 else float("inf")


# --------------------------------------------------------------------------- hashing


def _pools() -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
    global _hash_pool, _io_pool
    with _pool_lock:
        if _hash_pool is None:
            workers = max(1, min(8, os.cpu_count() or 1))
            _hash_pool = ThreadPoolExecutor(workers, thread_name_prefix="tlw-hash")
            _io_pool = ThreadPoolExecutor(max(2, workers), thread_name_prefix="tlw-io")
    return _hash_pool, _io_pool


def _sha1() -> Any:
    try:
        return hashlib.sha1(usedforsecurity=False)
    except TypeError:  # pragma: no cover - Python builds without the keyword
        return hashlib.sha1()


def _chunk_digest(buf: memoryview) -> bytes:
    h = _sha1()
    h.update(buf)
    return h.digest()


def _update_array(h, a: np.ndarray) -> None:
    """Feed an array's dtype, shape and bytes to ``h``; large arrays are hashed in parallel."""
    a = np.asarray(a)
    if a.dtype == object:
        raise FeaturiserError("Cannot featurise an object array: pass numeric image arrays.")
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}|{a.shape}|".encode())
    buf = memoryview(a.reshape(-1).view(np.uint8))
    if len(buf) <= _HASH_CHUNK:
        h.update(buf)
        return
    pool, _ = _pools()
    starts = range(0, len(buf), _HASH_CHUNK)
    for digest in pool.map(lambda s: _chunk_digest(buf[s:s + _HASH_CHUNK]), starts):
        h.update(digest)


def _weights_fingerprint(model) -> str:
    """Architecture (layer paths, types, output shapes) and the bytes of every weight.

    The weights are read in one graph call per dtype (reading ~150 variables one
    by one costs more than hashing them), then hashed, so a weight changed by
    fine-tuning gives a new fingerprint.
    """
    import tensorflow as tf

    from tlwidgets.layers import iter_layers

    memo = _extractors.setdefault(model, {})
    if "architecture" not in memo:
        h = _sha1()
        h.update(repr(tuple(model.inputs[0].shape)).encode())
        for info in iter_layers(model):
            try:
                shape = info.layer.output.shape
            except Exception:  # a layer used several times has no single output
                shape = None
            h.update(f"{info.path}|{info.type}|{shape}\n".encode())
        groups: dict[str, list] = {}
        for w in model.weights:
            h.update(f"{getattr(w, 'path', w.name)}|{tuple(w.shape)}|{w.dtype}\n".encode())
            groups.setdefault(str(w.dtype), []).append(w)
        variables = [groups[k] for k in sorted(groups)]

        @tf.function
        def flat():
            return [tf.concat([tf.reshape(v.value if hasattr(v, "value") else v, [-1])
                               for v in vs], 0) for vs in variables]

        memo["architecture"] = h.hexdigest()
        memo["flat_weights"] = flat if variables else (lambda: [])
    h = _sha1()
    h.update(memo["architecture"].encode())
    for arr in memo["flat_weights"]():
        _update_array(h, np.asarray(arr))
    return h.hexdigest()


def _callable_fingerprint(fn: Callable) -> str:
    """A stable name for a preprocessing function: its qualified name and code."""
    h = _sha1()
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    h.update(name.encode())
    code = getattr(fn, "__code__", None)
    if code is not None:
        h.update(code.co_code)
        h.update(repr(code.co_consts).encode())
    else:
        h.update(repr(fn).encode())
    return f"{name}:{h.hexdigest()[:12]}"


# --------------------------------------------------------------------------- images


def _as_batch(images: np.ndarray, notices: list[str], where: str = "") -> np.ndarray:
    """(n, h, w[, c]) -> (n, h, w, 3): grey is repeated, alpha dropped, with a notice."""
    x = np.asarray(images)
    if x.dtype == object:
        raise FeaturiserError(
            "These images have different sizes (an object array); pass them as a list of "
            "arrays and each is resized to the network's input size."
        )
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise FeaturiserError(f"Images must be numbers (uint8 0-255 or float); got dtype {x.dtype}.")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise FeaturiserError(
            f"Expected images shaped (n, height, width, channels) or (n, height, width); "
            f"got shape {x.shape}{where}."
        )
    c = x.shape[-1]
    if c == 3:
        return x
    if c == 1:
        _notice(notices, "Grey images were converted to RGB (the grey channel repeated 3 times) "
                         "because the network expects colour input.")
        return np.repeat(x, 3, axis=-1)
    if c == 4:
        _notice(notices, "RGBA images: the alpha channel was dropped.")
        return x[..., :3]
    if c == 2:
        _notice(notices, "Grey+alpha images: the alpha channel was dropped and grey repeated to RGB.")
        return np.repeat(x[..., :1], 3, axis=-1)
    raise FeaturiserError(
        f"Images have {c} channels{where}; the network takes RGB (3), and grey (1) or RGBA (4) "
        "are converted. Put the channels last: (n, height, width, channels)."
    )


def _notice(notices: list[str], text: str) -> None:
    if text not in notices:
        notices.append(text)


def _resize_one(img: np.ndarray, size: int) -> np.ndarray:
    """Resize one (h, w, 3) image to (size, size, 3) keeping its dtype family."""
    if img.shape[:2] == (size, size):
        return img
    if img.dtype == np.uint8:
        from PIL import Image

        return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    import tensorflow as tf

    return tf.image.resize(img.astype(np.float32), (size, size), antialias=True).numpy()


# --------------------------------------------------------------------------- sources


@dataclass
class _Source:
    kind: str
    n: int | None
    fingerprint: Callable[[], str | None]
    batches: Callable[[int], Iterator[tuple[np.ndarray, np.ndarray | None, list[str]]]]
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    cache_labels: bool = False  # labels come with the data (folder, dataset)


def _array_source(X, notices: list[str]) -> _Source:
    """An array (n, h, w[, c]), one image ((h, w) or (h, w, c<=4)), or a list of images."""
    if isinstance(X, list | tuple):
        items = [np.asarray(x) for x in X]
        if not items:
            raise _empty("an empty list")
        if len({x.shape for x in items}) > 1:
            return _list_source(items, notices)
        X = np.stack(items)
    X = np.asarray(X)
    if X.ndim >= 1 and X.shape[0] == 0:
        raise _empty(f"an array of shape {X.shape}")
    if X.ndim == 2 or (X.ndim == 3 and X.shape[-1] in (1, 3, 4)):
        X = X[None]  # one image: a batch of one
    _as_batch(X[:1], [], "")  # check shape and dtype now, before hashing

    def fingerprint() -> str:
        h = _sha1()
        _update_array(h, X)
        return "array:" + h.hexdigest()

    def batches(bs: int):
        for i in range(0, len(X), bs):
            yield X[i:i + bs], None, []

    return _Source("array", len(X), fingerprint, batches, notices=notices)


def _list_source(items: list[np.ndarray], notices: list[str]) -> _Source:
    def fingerprint() -> str:
        h = _sha1()
        for x in items:
            _update_array(h, x)
        return "list:" + h.hexdigest()

    def batches(bs: int):
        for i in range(0, len(items), bs):
            yield items[i:i + bs], None, []

    return _Source("list", len(items), fingerprint, batches, notices=notices)


def _empty(what: str) -> FeaturiserError:
    return FeaturiserError(
        f"Nothing to featurise: the input is {what}. Pass at least one image "
        "(check the folder path, the subset size or the filter that produced it)."
    )


def _folder_source(root: Path, size: int, notices: list[str]) -> _Source:
    from tlwidgets.data import list_image_folder, load_image

    items, classes, skipped = list_image_folder(root)
    if skipped:
        names = ", ".join(Path(s).name for s in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        _notice(notices, f"Skipped {len(skipped)} non-image files under {root}: {names}{more} "
                         "(listed in FeatureSet.skipped).")
    if not items:
        raise _empty(f"the folder {root}, which has no image files in its class folders "
                     f"({', '.join(classes)})")
    src = _Source("folder", len(items), lambda: None, lambda bs: iter(()), class_names=classes,
                  skipped=list(skipped), notices=notices, cache_labels=True)

    def fingerprint() -> str:
        h = _sha1()
        h.update(f"{size}|{classes}\n".encode())
        for path, label in items:
            st = path.stat()
            h.update(f"{path.relative_to(root)}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return "folder:" + h.hexdigest()

    def read(item):
        path, label = item
        try:
            return load_image(path, size), label, str(path)
        except OSError as exc:
            return None, label, f"{path} ({exc})"

    def batches(bs: int):
        _, io = _pools()
        for i in range(0, len(items), bs):
            got = list(io.map(read, items[i:i + bs]))
            ok = [g for g in got if g[0] is not None]
            for g in got:
                if g[0] is None:
                    src.skipped.append(g[2])
                    _notice(notices, f"Skipped an unreadable image: {g[2]}")
            if ok:
                yield (np.stack([g[0] for g in ok]), np.array([g[1] for g in ok], np.int64),
                       [g[2] for g in ok])

    src.fingerprint = fingerprint
    src.batches = batches
    return src


def _paths_source(paths: list, size: int, notices: list[str]) -> _Source:
    """A list of image file paths (no labels)."""
    from tlwidgets.data import IMAGE_SUFFIXES, load_image

    files = [Path(p) for p in paths]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FeaturiserError(f"{len(missing)} of these image files do not exist: "
                              f"{', '.join(missing[:3])}")
    skipped = [str(p) for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if skipped:
        _notice(notices, f"Skipped {len(skipped)} non-image files: "
                         f"{', '.join(Path(s).name for s in skipped[:5])} (listed in FeatureSet.skipped).")
    files = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise _empty("a list of paths with no image files")
    src = _Source("paths", len(files), lambda: None, lambda bs: iter(()), skipped=skipped,
                  notices=notices)

    def fingerprint() -> str:
        h = _sha1()
        h.update(f"{size}\n".encode())
        for p in files:
            st = p.stat()
            h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return "paths:" + h.hexdigest()

    def read(p):
        try:
            return load_image(p, size), str(p)
        except OSError as exc:
            return None, f"{p} ({exc})"

    def batches(bs: int):
        _, io = _pools()
        for i in range(0, len(files), bs):
            got = list(io.map(read, files[i:i + bs]))
            for img, name in got:
                if img is None:
                    src.skipped.append(name)
                    _notice(notices, f"Skipped an unreadable image: {name}")
            ok = [g for g in got if g[0] is not None]
            if ok:
                yield np.stack([g[0] for g in ok]), None, [g[1] for g in ok]

    src.fingerprint = fingerprint
    src.batches = batches
    return src


def _is_tf_dataset(X) -> bool:
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return False
    return isinstance(X, tf.data.Dataset)


def _dataset_source(ds, size: int, notices: list[str]) -> _Source:
    import tensorflow as tf

    spec = ds.element_spec
    if isinstance(spec, dict):
        raise FeaturiserError(
            "This dataset yields dictionaries; map it to (image, label) or image first: "
            "ds.map(lambda d: (d['image'], d['label']))."
        )
    labelled = isinstance(spec, tuple | list)
    img_spec = spec[0] if labelled else spec
    rank = img_spec.shape.rank
    last = img_spec.shape[-1] if rank else None
    unbatched = rank == 2 or (rank == 3 and last in (1, 2, 3, 4))
    if rank is None or rank < 2 or rank > 4:
        raise FeaturiserError(
            f"Dataset elements have image shape {img_spec.shape}; expected one image "
            "(height, width, channels) or a batch (n, height, width, channels)."
        )
    if unbatched:
        def fix(img):
            img = tf.convert_to_tensor(img)
            if img.shape.rank == 2:
                img = img[..., None]
            c = img.shape[-1]
            if c == 1:
                img = tf.repeat(img, 3, axis=-1)
            elif c in (2, 4):
                img = tf.repeat(img[..., :1], 3, axis=-1) if c == 2 else img[..., :3]
            if tuple(img.shape[:2]) != (size, size):
                dtype = img.dtype
                img = tf.image.resize(tf.cast(img, tf.float32), (size, size), antialias=True)
                if dtype == tf.uint8:
                    img = tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)
            return img

        ds = ds.map(lambda x, y, *rest: (fix(x), y)) if labelled else ds.map(fix)
        if last in (1, 2, 4) or rank == 2:
            _notice(notices, "Grey or RGBA dataset images were converted to RGB.")
        if img_spec.shape[0] != size or img_spec.shape[1] != size:
            _notice(notices, f"Dataset images were resized to {size}x{size}.")
    card = int(ds.cardinality()) if hasattr(ds, "cardinality") else -1
    n = card if card >= 0 and unbatched else None
    src = _Source("dataset", n, lambda: None, lambda bs: iter(()), notices=notices,
                  cache_labels=labelled)

    def elements(bs: int):
        data = ds.batch(bs) if unbatched else ds
        for el in data.as_numpy_iterator():
            if not labelled:
                yield el, None, []
                continue
            x, y = el[0], np.asarray(el[1])
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            yield x, y, []

    def fingerprint() -> str:
        h = _sha1()
        h.update(f"{size}|{labelled}|{unbatched}\n".encode())
        for x, y, _ in elements(256 if unbatched else 1):
            _update_array(h, x)
            if y is not None:
                _update_array(h, y)
        return "dataset:" + h.hexdigest()

    src.fingerprint = fingerprint
    src.batches = elements
    return src


def _iterable_source(it: Iterable, notices: list[str], cache_key: str | None) -> _Source:
    """Any iterable of single images, batches, or (images, labels) pairs."""

    def batches(bs: int):
        pending: list[np.ndarray] = []
        pending_y: list = []

        def flush():
            x = np.stack(pending) if len({p.shape for p in pending}) == 1 else list(pending)
            y = np.asarray(pending_y) if pending_y and len(pending_y) == len(pending) else None
            pending.clear()
            pending_y.clear()
            return x, y, []

        for el in it:
            y = None
            if isinstance(el, tuple | list) and len(el) == 2 and np.ndim(el[1]) <= 1:
                el, y = el
            el = np.asarray(el)
            single = el.ndim == 2 or (el.ndim == 3 and el.shape[-1] in (1, 2, 3, 4))
            if single:
                pending.append(el)
                if y is not None:
                    pending_y.append(y)
                if len(pending) == bs:
                    yield flush()
            else:
                if pending:
                    yield flush()
                yield el, (None if y is None else np.asarray(y)), []
        if pending:
            yield flush()

    fp = (lambda: "named:" + str(cache_key)) if cache_key is not None else (lambda: None)
    return _Source("iterable", None, fp, batches, notices=notices, cache_labels=True)


def _prefetch(it: Iterator, depth: int = 2) -> Iterator:
    """Run ``it`` in a background thread, at most ``depth`` items ahead (bounded memory)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer has gone: stop reading

    def work():
        try:
            for item in it:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # re-raised in the consumer
            put(exc)

    t = threading.Thread(target=work, daemon=True, name="tlw-prefetch")
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


# --------------------------------------------------------------------------- layers


def _vector_or_map(path: str, shape, layer_type: str, suggestions: Sequence[str]) -> None:
    rank = len(shape)
    if rank in (2, 4):
        return
    hint = f" Layers that give feature maps nearby: {', '.join(suggestions)}." if suggestions else ""
    raise FeaturiserError(
        f"Layer {path!r} ({layer_type}) outputs shape {tuple(shape)}, which is neither a "
        f"feature map (batch, height, width, channels) nor a vector (batch, features), so it "
        f"cannot be pooled into features. Cut at a convolutional block, a pooling or a dense "
        f"layer instead.{hint}"
    )


def candidate_layers(model, *, n: int | None = None) -> list[str]:
    """Layer paths worth cutting at: the activation/add outputs that give feature maps.

    These are the ends of blocks (after the non-linearity), from the first
    convolutions to the network's output. ``n`` picks that many, evenly spaced
    by depth, always including the last.
    """
    import keras

    from tlwidgets.layers import iter_layers

    kinds = (keras.layers.ReLU, keras.layers.Activation, keras.layers.Add)
    found = []
    for info in iter_layers(model):
        if isinstance(info.layer, kinds):
            try:
                shape = info.layer.output.shape
            except Exception:
                continue
            if len(shape) == 4:
                found.append(info.path)
    if not found:  # a network without separate activations: every 4D output
        for info in iter_layers(model):
            if not info.is_model:
                try:
                    if len(info.layer.output.shape) == 4:
                        found.append(info.path)
                except Exception:
                    continue
    if n is not None and 0 < n < len(found):
        idx = np.unique(np.round(np.linspace(0, len(found) - 1, n)).astype(int))
        found = [found[i] for i in idx]
    return found


def _resolve_cut(model, layer, drop_last) -> tuple[str | None, Any]:
    """(layer path or None for the model output, LayerInfo or None)."""
    from tlwidgets.layers import find_layer

    if layer is not None and drop_last is not None:
        raise FeaturiserError("Give either layer= or drop_last=, not both.")
    if layer is None and drop_last is None:
        drop_last = 0  # the whole model: its last top-level layer
    if drop_last is not None:
        if not isinstance(drop_last, int | np.integer) or drop_last < 0:
            raise FeaturiserError(f"drop_last must be a whole number >= 0, not {drop_last!r}.")
        import keras

        top = [ly for ly in model.layers if not isinstance(ly, keras.layers.InputLayer)]
        if drop_last >= len(top):
            raise FeaturiserError(
                f"drop_last={drop_last} would remove every layer: {model.name!r} has "
                f"{len(top)} top-level layers (ending with {', '.join(ly.name for ly in top[-3:])})."
            )
        info = find_layer(model, top[-1 - int(drop_last)].name)
        return info.path, info
    info = find_layer(model, layer if isinstance(layer, str) else int(layer))
    return info.path, info


# --------------------------------------------------------------------------- the extractor


class _Extractor:
    """A compiled function: uint8/float batch -> pooled features of one or more layers."""

    def __init__(self, model, paths: Sequence[str | None], pooling: str, size: int,
                 scale: bool):
        import keras
        import tensorflow as tf

        from tlwidgets.layers import activation_model

        self.paths = list(paths)
        if all(p is None for p in self.paths):
            outs = [model.outputs[0]] * len(self.paths)
            self.cut = keras.Model(model.inputs, outs, name="featuriser_cut")
        elif None in self.paths:
            raise FeaturiserError("Name every layer (the model output is the last layer's path).")
        else:
            self.cut = activation_model(model, self.paths, name="featuriser_cut")
        self.shapes = [tuple(o.shape) for o in self.cut.outputs]
        self.pooling = pooling
        self.size = size
        self.scale = scale
        self.dims = [int(np.prod(s[1:3])) * s[3] if (len(s) == 4 and pooling == "flatten")
                     else s[-1] for s in self.shapes]
        cut_model = self.cut

        def pool(t):
            if len(t.shape) == 2:
                return t
            if pooling == "avg":
                return tf.reduce_mean(t, axis=[1, 2])
            if pooling == "max":
                return tf.reduce_max(t, axis=[1, 2])
            return tf.reshape(t, (tf.shape(t)[0], -1))

        def run(x):
            x = tf.cast(x, tf.float32)
            if scale:
                x = x / 127.5 - 1.0
            outs = cut_model(x, training=False)
            if not isinstance(outs, list | tuple):
                outs = [outs]
            return [pool(o) for o in outs]

        self._run = run
        self._fns: dict = {}

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        import tensorflow as tf

        key = batch.dtype.str
        fn = self._fns.get(key)
        if fn is None:
            spec = tf.TensorSpec([None, self.size, self.size, 3], tf.as_dtype(batch.dtype))
            fn = self._fns[key] = tf.function(self._run, input_signature=[spec])
        return [o.numpy() for o in fn(batch)]


class _QuietRetracing(logging.Filter):
    """Each new cut is a new compiled function; TensorFlow's retracing advice does not apply."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("retracing" in msg and "_Extractor" in msg)


_quiet = _QuietRetracing()
logging.getLogger("tensorflow").addFilter(_quiet)

_extractors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_backbones: dict[tuple, Any] = {}


def _extractor(model, paths, pooling, size, scale) -> _Extractor:
    per_model = _extractors.setdefault(model, {})
    key = (tuple(paths), pooling, size, scale)
    if key not in per_model:
        per_model[key] = _Extractor(model, paths, pooling, size, scale)
    return per_model[key]


def _load_named_backbone(name: str, input_size: int | None, weights: str):
    from tlwidgets.backbones import load_backbone

    if name == "auto" and weights == "random":
        # The same architecture as the pretrained "auto" resolves to (it may be a stand-in).
        name = _load_named_backbone("auto", input_size, "imagenet").name
    key = (name, input_size, weights)
    if key not in _backbones:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the notice is kept on the Backbone and shown
            _backbones[key] = load_backbone(name, input_size=input_size, weights=weights)
    return _backbones[key]


# --------------------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    from tlwidgets.assets import cache_dir

    return cache_dir() / "features"


def _cache_path(root: Path, key: str) -> Path:
    return root / key[:2] / f"{key}.npz"


def _cache_load(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
        meta = json.loads(str(data.pop("meta")))
        if meta.get("version") != CACHE_VERSION:
            return None
        data["meta"] = meta
        return data
    except Exception as exc:  # a damaged file: say so and compute again
        warnings.warn(f"Ignoring a damaged feature cache file {path} ({exc}); recomputing.",
                      stacklevel=4)
        return None


def _cache_save(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``path`` atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def clear_cache(cache_dir: str | Path | None = None) -> int:
    """Delete cached features (in ``cache_dir`` or the default); returns the files removed."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    removed = 0
    if root.is_dir():
        for f in root.glob("*/*.npz"):
            f.unlink()
            removed += 1
    return removed


# --------------------------------------------------------------------------- Featuriser


class Featuriser(TransformerMixin, BaseEstimator):
    """A pretrained network cut at a layer, as a scikit-learn transformer.

    Parameters
    ----------
    backbone : ``"auto"``, ``"mobilenet_v2"``, ``"mobilenet_0.25"``, a
        :class:`tlwidgets.backbones.Backbone` or a ``keras.Model``. Named
        backbones are loaded once per process through the asset layer
        (``"auto"`` falls back to MobileNet alpha 0.25 with a notice).
    layer : where to cut: a layer path (``"base/block_13_expand"``), a unique
        name (dots allowed) or an index in :func:`tlwidgets.layers.iter_layers`.
    drop_last : or cut by removing the last N top-level layers of the model
        (``0`` keeps the whole model). Default: the model's output.
    pooling : ``"avg"`` (global average), ``"max"`` or ``"flatten"`` for
        feature maps; vector outputs are used as they are.
    input_size : the square input size in pixels (named backbones load at it;
        for a model, defaults to its input shape). Images of other sizes are resized.
    weights : ``"imagenet"`` or ``"random"`` (named backbones only).
    preprocess : ``"auto"`` (the backbone's own preprocessing; none for a plain
        ``keras.Model``), ``"mobilenet"`` ([0, 255] -> [-1, 1]), ``None`` (none)
        or a function applied to each float32 batch.
    batch_size : images per batch (memory is bounded by a few batches).
    cache : ``True`` (the default folder, ``$TLWIDGETS_CACHE/features``), a
        folder, or ``False``.
    progress : show a progress bar (tqdm; a widget in notebooks).
    """

    def __init__(
        self,
        backbone: Any = "auto",
        layer: str | int | None = None,
        drop_last: int | None = None,
        pooling: str = "avg",
        input_size: int | None = None,
        weights: str = "imagenet",
        preprocess: Any = "auto",
        batch_size: int = 32,
        cache: bool | str | Path = True,
        progress: bool = True,
    ):
        self.backbone = backbone
        self.layer = layer
        self.drop_last = drop_last
        self.pooling = pooling
        self.input_size = input_size
        self.weights = weights
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.cache = cache
        self.progress = progress

    # scikit-learn: a new, unfitted Featuriser with the same parameters. The
    # backbone is shared, not deep-copied (it is read-only configuration).
    def __sklearn_clone__(self):
        return type(self)(**self.get_params(deep=False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags

    # ------------------------------------------------------------------ set-up

    def _build(self) -> None:
        import keras

        from tlwidgets.backbones import Backbone

        if self.pooling not in POOLINGS:
            raise FeaturiserError(f"pooling must be one of {POOLINGS}, not {self.pooling!r}.")
        if not isinstance(self.batch_size, int | np.integer) or self.batch_size < 1:
            raise FeaturiserError(f"batch_size must be a whole number >= 1, not {self.batch_size!r}.")
        notices: list[str] = []
        bb = self.backbone
        if isinstance(bb, str):
            if self.weights not in ("imagenet", "random"):
                raise FeaturiserError(f"weights must be 'imagenet' or 'random', not {self.weights!r}.")
            bb = _load_named_backbone(bb, self.input_size, self.weights)
        elif self.weights != "imagenet":
            raise FeaturiserError("weights= applies to named backbones only; this backbone "
                                  "already has its weights.")
        if isinstance(bb, Backbone):
            model, size = bb.model, bb.input_size
            if bb.notice:
                notices.append(bb.notice)
            if self.input_size is not None and self.input_size != size:
                notices.append(f"Input size {size} px (the backbone's), not {self.input_size}.")
        elif isinstance(bb, keras.Model):
            model = bb
            if not model.built or not model.inputs:
                raise FeaturiserError("This model has no input shape yet; build it first, e.g. "
                                      "model(keras.Input(shape=(224, 224, 3))).")
            shape = tuple(model.inputs[0].shape[1:])
            if len(shape) != 3 or shape[-1] not in (3, None):
                raise FeaturiserError(f"The model takes inputs of shape {shape}; a featuriser "
                                      "needs an image model with (height, width, 3) inputs.")
            size = self.input_size or shape[0]
            if size is None:
                raise FeaturiserError("The model accepts any image size; pass input_size=.")
            if shape[0] is not None and size != shape[0]:
                raise FeaturiserError(f"The model takes {shape[0]} px images; input_size={size} "
                                      "does not fit. Leave input_size out to use the model's.")
        else:
            raise FeaturiserError(
                "backbone must be a name ('auto', 'mobilenet_v2', 'mobilenet_0.25'), a "
                f"Backbone from tlwidgets.backbones.load_backbone, or a keras.Model; got {type(bb).__name__}."
            )
        path, info = _resolve_cut(model, self.layer, self.drop_last)
        # Preprocessing: in the graph when it is the MobileNet scaling, else numpy.
        prep, prep_name, scale = None, "none", False
        if self.preprocess == "auto":
            if isinstance(bb, Backbone) and type(bb).preprocess is Backbone.preprocess:
                scale, prep_name = True, "mobilenet:[-1,1]"
            elif isinstance(bb, Backbone):
                prep = bb.preprocess
                prep_name = _callable_fingerprint(type(bb).preprocess) + f"|{bb.name}"
            else:
                notices.append("No preprocessing applied (a plain keras.Model): pass "
                               "preprocess= if the model expects scaled inputs.")
        elif self.preprocess == "mobilenet":
            scale, prep_name = True, "mobilenet:[-1,1]"
        elif self.preprocess is None or self.preprocess == "none":
            pass
        elif callable(self.preprocess):
            prep, prep_name = self.preprocess, _callable_fingerprint(self.preprocess)
        else:
            raise FeaturiserError("preprocess must be 'auto', 'mobilenet', None or a function, "
                                  f"not {self.preprocess!r}.")
        ext = _extractor(model, [path], self.pooling, int(size), scale)
        shape = ext.shapes[0]
        suggestions = []
        if len(shape) not in (2, 4):
            cands = candidate_layers(model)
            if info is not None:
                from tlwidgets.layers import iter_layers

                order = {i.path: i.index for i in iter_layers(model)}
                cands.sort(key=lambda p: abs(order.get(p, 0) - info.index))
            suggestions = cands[:3]
        _vector_or_map(path or "(model output)", shape,
                       info.type if info else type(model).__name__, suggestions)
        self.backbone_ = bb if isinstance(bb, Backbone) else None
        self.model_ = model
        self.layer_path_ = path
        self.input_size_ = int(size)
        self.output_shape_ = shape
        self.n_features_out_ = ext.dims[0]
        self.notices_ = notices
        self._prep, self._prep_name, self._scale = prep, prep_name, scale

    def _ensure_built(self) -> None:
        """Build on first use, and again whenever set_params changed a parameter."""
        params = self.get_params(deep=False)
        built = getattr(self, "_built_params", None)
        if built is None or any(built[k] is not v and built[k] != v for k, v in params.items()):
            self._build()
            self._built_params = params

    @property
    def layer_name(self) -> str:
        self._ensure_built()
        return self.layer_path_ or "(output)"

    def describe(self) -> str:
        """Which network, where it is cut, how it is pooled, and any stand-in notice."""
        self._ensure_built()
        if self.backbone_ is not None:
            head = self.backbone_.describe().split("\n")[0]
        else:
            head = f"{self.model_.name} (a keras.Model) at {self.input_size_} px"
        shape = "x".join(str(s) for s in self.output_shape_[1:])
        pooled = {"avg": "global average pooling", "max": "global max pooling",
                  "flatten": "flattened"}[self.pooling] if len(self.output_shape_) == 4 else "a vector"
        text = (f"{head}; cut at {self.layer_name} ({shape}), {pooled} -> "
                f"{self.n_features_out_} features")
        return "\n".join([text, *self.notices_])

    # ------------------------------------------------------------------ sklearn API

    def fit(self, X=None, y=None):
        """Builds the cut network; a featuriser learns nothing from the data."""
        self._built_params = None
        self._ensure_built()
        return self

    def transform(self, X) -> np.ndarray:
        """Features ``(n, n_features_out_)`` of images, a folder, a dataset or an iterable."""
        return self.featurise(X).features

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        self._ensure_built()
        return np.array([f"feature{i}" for i in range(self.n_features_out_)], dtype=object)

    # ------------------------------------------------------------------ featurise

    def featurise(self, X, y=None, *, cache_key: str | None = None) -> FeatureSet:
        """Features with labels, class names, skipped files and cache/timing details.

        ``X``: an array ``(n, h, w[, c])`` (uint8 0-255 or float), a list of
        images of any sizes, a list of image file paths, a folder path
        ``root/<class>/<image>``, a
        ``tf.data.Dataset`` of images or ``(image, label)`` (batched or not),
        or an iterable of those. ``y`` is passed through as ``labels``.
        """
        self._ensure_built()
        out = _featurise(self.model_, [self.layer_path_], X, y=y, pooling=self.pooling,
                         size=self.input_size_, scale=self._scale, prep=self._prep,
                         prep_name=self._prep_name, batch_size=int(self.batch_size),
                         cache=self.cache, progress=self.progress, cache_key=cache_key,
                         notices=list(self.notices_), desc=f"Featurising at {self.layer_name}")
        self.last_run_ = out
        return out


def featurise_layers(
    featuriser: Featuriser,
    layers: Sequence[str | int],
    X,
    y=None,
    *,
    cache_key: str | None = None,
) -> FeatureSet:
    """Features of several layers in one pass (``FeatureSet.layers``: path -> array).

    Uses ``featuriser``'s backbone, pooling, preprocessing, batch size and cache;
    each layer is cached on its own key, so a later single-layer Featuriser on
    the same data finds its features here, and only missing layers are computed.
    """
    from tlwidgets.layers import find_layer

    featuriser._ensure_built()
    model = featuriser.model_
    paths = [find_layer(model, k).path for k in layers]
    return _featurise(model, paths, X, y=y, pooling=featuriser.pooling,
                      size=featuriser.input_size_, scale=featuriser._scale,
                      prep=featuriser._prep, prep_name=featuriser._prep_name,
                      batch_size=int(featuriser.batch_size), cache=featuriser.cache,
                      progress=featuriser.progress, cache_key=cache_key,
                      notices=list(featuriser.notices_), desc=f"Featurising {len(paths)} layers")


def _make_source(X, size: int, notices: list[str], cache_key: str | None) -> _Source:
    if X is None:
        raise _empty("None")
    if isinstance(X, str | os.PathLike):
        root = Path(X)
        if not root.exists():
            raise FeaturiserError(f"{root} does not exist; pass a folder root/<class>/<image files>.")
        return _folder_source(root, size, notices)
    if _is_tf_dataset(X):
        return _dataset_source(X, size, notices)
    if isinstance(X, list | tuple) and X and all(isinstance(p, str | os.PathLike) for p in X):
        return _paths_source(list(X), size, notices)
    if isinstance(X, np.ndarray | list | tuple):
        return _array_source(X, notices)
    if hasattr(X, "images") and hasattr(X, "labels"):  # tlwidgets.data.ImageSet
        src = _array_source(X.images, notices)
        src.labels = np.asarray(X.labels)
        src.class_names = list(getattr(X, "class_names", []))
        return src
    if isinstance(X, Iterable):
        return _iterable_source(X, notices, cache_key)
    raise FeaturiserError(
        f"Cannot featurise a {type(X).__name__}: pass an image array, a list of images, a "
        "folder path, a tf.data.Dataset or an iterable of images."
    )


def _featurise(model, paths, X, *, y, pooling, size, scale, prep, prep_name, batch_size,
               cache, progress, cache_key, notices, desc) -> FeatureSet:
    t0 = time.perf_counter()
    shown = set(notices)  # the backbone's own notices are shown by describe()
    src = _make_source(X, size, notices, cache_key)
    ext = _extractor(model, paths, pooling, size, scale)
    for path, shape in zip(paths, ext.shapes, strict=True):
        _vector_or_map(path or "(model output)", shape, "layer", [])
    root = None
    if cache is not False and cache is not None:
        root = default_cache_dir() if cache is True else Path(cache)
    keys: list[str | None] = [None] * len(paths)
    found: dict[int, dict] = {}
    if root is not None:
        data_fp = src.fingerprint()
        if data_fp is not None:
            common = _sha1()
            for part in (f"v{CACHE_VERSION}", _weights_fingerprint(model), prep_name,
                         f"size={size}", f"pooling={pooling}", data_fp):
                common.update(part.encode() + b"\n")
            base = common.hexdigest()
            for i, p in enumerate(paths):
                h = _sha1()
                h.update(f"{base}|layer={p}".encode())
                keys[i] = h.hexdigest()
                hit = _cache_load(_cache_path(root, keys[i]))
                if hit is not None:
                    found[i] = hit
    todo = [i for i in range(len(paths)) if i not in found]
    labels = src.labels
    paths_out: list[str] = []
    arrays: dict[int, np.ndarray] = {i: found[i]["features"] for i in found}
    if found:
        any_hit = next(iter(found.values()))
        if src.cache_labels and "labels" in any_hit:
            labels = any_hit["labels"]
        if "paths" in any_hit:
            paths_out = [str(p) for p in any_hit["paths"]]
        if "skipped" in any_hit:
            src.skipped = [str(s) for s in any_hit["skipped"]]
        for n in any_hit["meta"].get("notices", []):
            _notice(notices, n)
    if todo:
        sub = _extractor(model, [paths[i] for i in todo], pooling, size, scale) \
            if len(todo) < len(paths) else ext
        chunks: list[list[np.ndarray]] = [[] for _ in todo]
        got_labels: list[np.ndarray] = []
        paths_out = []
        from tqdm.auto import tqdm

        bar = tqdm(total=src.n, desc=desc, unit="img", disable=not progress, leave=False)
        checked_range = False
        try:
            for xb, yb, pb in _prefetch(_prepared(src.batches(batch_size), size, notices)):
                if not checked_range and scale and xb.dtype != np.uint8:
                    checked_range = True
                    if xb.size and float(np.max(xb)) <= 1.0:
                        _notice(notices, "These float images look scaled to [0, 1]; the network "
                                         "expects [0, 255]. Multiply them by 255 first.")
                if prep is not None:
                    xb = np.asarray(prep(np.asarray(xb, dtype=np.float32)), dtype=np.float32)
                outs = sub(xb)
                for c, o in zip(chunks, outs, strict=True):
                    c.append(o)
                if yb is not None:
                    got_labels.append(np.asarray(yb))
                paths_out.extend(pb)
                bar.update(len(xb))
        finally:
            bar.close()
        if not chunks[0]:
            raise _empty("a source that yielded no images")
        for i, c in zip(todo, chunks, strict=True):
            arrays[i] = np.concatenate(c).astype(np.float32, copy=False)
        if got_labels and (labels is None or src.cache_labels):
            labels = np.concatenate(got_labels)
        if root is not None:
            for i in todo:
                if keys[i] is None:
                    continue
                extra: dict[str, np.ndarray] = {"features": arrays[i]}
                if labels is not None and src.cache_labels:
                    extra["labels"] = np.asarray(labels)
                if paths_out:
                    extra["paths"] = np.array(paths_out, dtype=str)
                if src.skipped:
                    extra["skipped"] = np.array(src.skipped, dtype=str)
                meta = {"version": CACHE_VERSION, "layer": paths[i], "pooling": pooling,
                        "size": size, "preprocess": prep_name, "notices": notices,
                        "class_names": src.class_names, "created": time.time()}
                _cache_save(_cache_path(root, keys[i]), extra, meta)
    if y is not None:
        labels = np.asarray(y)
        if len(labels) != len(arrays[0]):
            raise FeaturiserError(f"y has {len(labels)} labels for {len(arrays[0])} images.")
    class_names = src.class_names
    if not class_names and found:
        class_names = list(next(iter(found.values()))["meta"].get("class_names", []))
    for text in notices:
        if text not in shown:
            warnings.warn(text, stacklevel=3)
    layers = {(p or "(output)"): arrays[i] for i, p in enumerate(paths)}
    return FeatureSet(
        features=arrays[0], labels=labels, class_names=list(class_names), paths=paths_out,
        skipped=list(src.skipped), notices=list(notices), from_cache=not todo,
        seconds=time.perf_counter() - t0, source=src.kind, keys=[k or "" for k in keys],
        layers=layers,
    )


def _prepared(batches: Iterator, size: int, notices: list[str]) -> Iterator:
    """Bring every batch to (n, size, size, 3), uint8 or float32 (runs in the prefetch thread)."""
    for xb, yb, pb in batches:
        if isinstance(xb, list):  # images of mixed sizes
            imgs = [_as_batch(np.asarray(im)[None], notices)[0] for im in xb]
            if len({im.shape for im in imgs}) > 1 or imgs[0].shape[:2] != (size, size):
                _notice(notices, f"Images of different sizes were resized to {size}x{size}.")
            dtype = np.uint8 if all(im.dtype == np.uint8 for im in imgs) else np.float32
            xb = np.stack([_resize_one(im.astype(dtype, copy=False), size) for im in imgs])
        else:
            xb = _as_batch(xb, notices)
            if xb.shape[1:3] != (size, size):
                _notice(notices, f"Images of {xb.shape[1]}x{xb.shape[2]} were resized to "
                                 f"{size}x{size} (the network's input size).")
                xb = np.stack([_resize_one(im, size) for im in xb])
        if len(xb) == 0:
            continue
        if xb.dtype != np.uint8:
            xb = xb.astype(np.float32, copy=False)
        yield xb, yb, pb
