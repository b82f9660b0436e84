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


def _array_source(X, notices: list[str]) -> Source:
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
        h = hasher()
        update_array(h, X)
        return "array:" + h.hexdigest()

    def batches(bs: int):
        for i in range(0, len(X), bs):
            yield X[i:i + bs], None, []

    return Source("array", len(X), fingerprint, batches, notices=notices)


def _list_source(items: list[np.ndarray], notices: list[str]) -> Source:
    def fingerprint() -> str:
        h = hasher()
        for x in items:
            update_array(h, x)
        return "list:" + h.hexdigest()

    def batches(bs: int):
        for i in range(0, len(items), bs):
            yield items[i:i + bs], None, []

    return Source("list", len(items), fingerprint, batches, notices=notices)



def _folder_source(root: Path, size: int, notices: list[str]) -> Source:
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
    src = Source("folder", len(items), lambda: None, lambda bs: iter(()), class_names=classes,
                  skipped=list(skipped), notices=notices, cache_labels=True)

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
            return load_image(path, size), label, str(path)
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
    src = Source("paths", len(files), lambda: None, lambda bs: iter(()), skipped=skipped,
                  notices=notices)

    def fingerprint() -> str:
        h = hasher()
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
    src = Source("dataset", n, lambda: None, lambda bs: iter(()), notices=notices,
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
    return Source("iterable", None, fp, batches, notices=notices, cache_labels=True)


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


def prepared(batches: Iterator, size: int, notices: list[str]) -> Iterator:
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


def _is_tf_dataset(X) -> bool:
    import tensorflow as tf

    return isinstance(X, tf.data.Dataset)

