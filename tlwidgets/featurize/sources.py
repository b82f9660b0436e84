"""Where images come from: arrays, lists, files, folders, ``tf.data`` and iterables.

Each input becomes a :class:`Source`: its size if known, a fingerprint for the
cache key (or None when it cannot be read twice), and a generator of batches
``(images, labels or None, paths)``. :func:`prefetch` reads the next batches in a
background thread, a bounded number ahead, while the network runs.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tlwidgets import images
from tlwidgets.featurize.cache import hasher, update_array
from tlwidgets.featurize.results import FeaturiserError
from tlwidgets.featurize.results import add_notice as _notice
from tlwidgets.featurize.results import empty_input as _empty

_io_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _io() -> ThreadPoolExecutor:
    """Threads that read and decode image files (PIL releases the GIL while decoding)."""
    global _io_pool
    with _pool_lock:
        if _io_pool is None:
            _io_pool = ThreadPoolExecutor(max(2, min(8, os.cpu_count() or 1)),
                                          thread_name_prefix="tlw-io")
    return _io_pool

# --------------------------------------------------------------------------- sources


@dataclass
class Source:
    kind: str
    n: int | None
    fingerprint: Callable[[], str | None]
    batches: Callable[[int], Iterator[tuple[np.ndarray, np.ndarray | None, list[str]]]]
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    cache_labels: bool = False  # labels come with the data (folder, dataset)
    files: list[tuple[Path, int | None]] = field(default_factory=list)  # (file, label), in order


def _array_source(X, notices: list[str]) -> Source:
    """An array (n, h, w[, c]), one image ((h, w) or (h, w, c<=4)), or a list of images."""
    if isinstance(X, list | tuple):
        items = [np.asarray(x) for x in X]
        if not items:
            raise _empty("an empty list")
        if len({x.shape for x in items}) > 1:
            return _in_memory("list", items, notices)
        X = np.stack(items)
    X = np.asarray(X)
    if X.ndim >= 1 and X.shape[0] == 0:
        raise _empty(f"an array of shape {X.shape}")
    if X.ndim == 2 or (X.ndim == 3 and X.shape[-1] in (1, 3, 4)):
        X = X[None]  # one image: a batch of one
    try:  # check shape and dtype now, before hashing
        images.to_rgb(X[:1], [])
    except images.ImageError as exc:
        raise FeaturiserError(str(exc)) from exc

    return _in_memory("array", X, notices)


def _in_memory(kind: str, data, notices: list[str]) -> Source:
    """An array (hashed whole) or a list of arrays (hashed one by one), sliced into batches."""
    parts = [data] if kind == "array" else data

    def fingerprint() -> str:
        h = hasher()
        for x in parts:
            update_array(h, x)
        return f"{kind}:" + h.hexdigest()

    def batches(bs: int):
        for i in range(0, len(data), bs):
            yield data[i:i + bs], None, []

    return Source(kind, len(data), fingerprint, batches, notices=notices)


def _folder_source(root: Path, size: int, notices: list[str]) -> Source:
    from tlwidgets.data import list_image_folder

    items, classes, skipped = list_image_folder(root)
    if skipped:
        names = ", ".join(Path(s).name for s in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        _notice(notices, f"Skipped {len(skipped)} non-image files under {root}: {names}{more} "
                         "(listed in FeatureSet.skipped).")
    if not items:
        raise _empty(f"the folder {root}, which has no image files in its class folders "
                     f"({', '.join(classes)})")
    src = Source("folder", len(items), lambda: None, lambda bs: iter(()), class_names=classes,
                  skipped=list(skipped), notices=notices, cache_labels=True, files=list(items))

    def fingerprint() -> str:
        h = hasher()
        h.update(f"{size}|{classes}\n".encode())
        for path, label in items:
            st = path.stat()
            h.update(f"{path.relative_to(root)}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return "folder:" + h.hexdigest()

    def read(item):
        path, label = item
        try:
            return images.load_image(path, size, notices), label, str(path)
        except OSError as exc:
            return None, label, f"{path} ({exc})"

    def batches(bs: int):
        io = _io()
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


def _paths_source(paths: list, size: int, notices: list[str]) -> Source:
    """A list of image file paths (no labels)."""
    from tlwidgets.data import IMAGE_SUFFIXES

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
    src = Source("paths", len(files), lambda: None, lambda bs: iter(()), skipped=skipped,
                  notices=notices, files=[(p, None) for p in files])

    def fingerprint() -> str:
        h = hasher()
        h.update(f"{size}\n".encode())
        for p in files:
            st = p.stat()
            h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return "paths:" + h.hexdigest()

    def read(p):
        try:
            return images.load_image(p, size, notices), str(p)
        except OSError as exc:
            return None, f"{p} ({exc})"

    def batches(bs: int):
        io = _io()
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



def _dataset_source(ds, size: int, notices: list[str]) -> Source:

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
    ragged = unbatched and not img_spec.shape.is_fully_defined()  # images of several sizes
    card = int(ds.cardinality()) if hasattr(ds, "cardinality") else -1
    n = card if card >= 0 and unbatched else None
    src = Source("dataset", n, lambda: None, lambda bs: iter(()), notices=notices,
                  cache_labels=labelled)

    def elements(bs: int):
        if ragged:  # batched here, after each image is brought to the network's size
            for x, y, _ in _grouped(ds.as_numpy_iterator(), bs):
                yield x, (None if y is None else y.reshape(len(y), -1)[:, 0]), []
            return
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
        h = hasher()
        h.update(f"{size}|{labelled}|{unbatched}\n".encode())
        for x, y, _ in elements(256 if unbatched else 1):
            update_array(h, x)
            if y is not None:
                update_array(h, y)
        return "dataset:" + h.hexdigest()

    src.fingerprint = fingerprint
    src.batches = elements
    return src


def _iterable_source(it: Iterable, notices: list[str], cache_key: str | None) -> Source:
    """Any iterable of single images, batches, or (images, labels) pairs."""
    fp = (lambda: "named:" + str(cache_key)) if cache_key is not None else (lambda: None)
    return Source("iterable", None, fp, lambda bs: _grouped(it, bs), notices=notices,
                  cache_labels=True)


def _grouped(it: Iterable, bs: int) -> Iterator:
    """Single images (alone or with a label) gathered into batches of ``bs``; batches as they come.

    Images of different sizes in one batch come as a list (resized later).
    """
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


def prefetch(it: Iterator, depth: int = 2) -> Iterator:
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



def make_source(X, size: int, notices: list[str], cache_key: str | None) -> Source:
    if X is None:
        raise _empty("None")
    if isinstance(X, str | os.PathLike):
        root = Path(X)
        if not root.exists():
            raise FeaturiserError(f"{root} does not exist; pass a folder root/<class>/<image files>.")
        return _folder_source(root, size, notices)
    if "tensorflow" in sys.modules and _is_tf_dataset(X):
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


def prepared(batches: Iterator, size: int, notices: list[str], *, advise: bool) -> Iterator:
    """Bring every batch to (n, size, size, 3), uint8 or float32 (runs in the prefetch thread).

    ``advise``: the network expects 0-255 input, so say when float images look otherwise.
    """
    for xb, yb, pb in batches:
        if advise and not isinstance(xb, list) and np.issubdtype(np.asarray(xb).dtype, np.floating):
            advise = False  # the first float batch tells
            if np.isfinite(xb).all() and (advice := images.float_range_advice(np.asarray(xb))):
                _notice(notices, advice)
        try:
            xb = images.rgb_batch(xb, size, notices)
        except images.ImageError as exc:
            raise FeaturiserError(str(exc)) from exc
        if len(xb) == 0:
            continue
        if xb.dtype != np.uint8:
            xb = xb.astype(np.float32, copy=False)
        yield xb, yb, pb


def _is_tf_dataset(X) -> bool:
    import tensorflow as tf

    return isinstance(X, tf.data.Dataset)

