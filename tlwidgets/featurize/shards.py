"""One collection of image files featurised by several workers, merged into one FeatureSet.

Worker ``i`` of ``n`` takes every ``n``-th batch of ``batch_size`` files, starting at
batch ``i`` (:func:`shard_indices`), so each image goes through the network in the
same batch as in a single-process run, and its features are the same numbers. A
shard is an ordinary featurisation of its list of files, cached under the key that a
single-process run of that list would use. The merge reads every shard from the
feature cache (which the workers share: one ``TLWIDGETS_CACHE`` folder, on a shared
file system when they are on several machines), puts the rows back in the
collection's order, and stores the result under the collection's own key, so a later
``Featuriser(...).featurise(folder)`` finds it.

>>> fs = featurise_sharded(Featuriser("auto", layer="conv_pw_11_relu"), "photos/")  # doctest: +SKIP

run on each worker (its task comes from ``TF_CONFIG``, or ``shard=(index, count)``).
"""

from __future__ import annotations

import math
import time

import numpy as np

from tlwidgets.featurize import cache
from tlwidgets.featurize.results import FeatureSet, FeaturiserError, add_notice
from tlwidgets.featurize.sources import Source, make_source
from tlwidgets.notices import notice

__all__ = ["featurise_sharded", "shard_indices"]


def shard_indices(n_files: int, batch_size: int, index: int, count: int) -> np.ndarray:
    """Positions of the files shard ``index`` of ``count`` featurises: batches
    ``index, index + count, ...`` of ``batch_size`` files each."""
    if not (isinstance(count, int) and count >= 1 and isinstance(index, int)
            and 0 <= index < count):
        raise FeaturiserError(f"A shard is (index, count) with 0 <= index < count, "
                              f"not ({index!r}, {count!r}).")
    batches = range(index, math.ceil(n_files / batch_size), count)
    return np.array([i for b in batches for i in range(b * batch_size,
                                                        min(n_files, (b + 1) * batch_size))],
                    dtype=np.int64)


def _key(featuriser, src: Source) -> str:
    plan = featuriser._plan
    return cache.keys_for(plan.model, [featuriser.layer_path_], data=src.fingerprint(),
                          prep=plan.prep_name, size=plan.size, pooling=plan.pooling)[0]


def _shard(shard) -> tuple[int, int]:
    if shard is None:
        from tlwidgets.multi_worker import task

        me = task()
        return me.index, me.count
    try:
        index, count = shard
    except (TypeError, ValueError):
        raise FeaturiserError(f"shard must be (index, count), not {shard!r}.") from None
    return int(index), int(count)


def _wait(root, key: str, which: str, timeout: float, poll: float) -> dict:
    deadline = time.monotonic() + timeout
    while (hit := cache.load(cache.entry_path(root, key))) is None:
        if time.monotonic() > deadline:
            raise FeaturiserError(
                f"{which} is not in the feature cache {root} after {timeout:g} s. Is that "
                "worker running (same Featuriser, same files), and do all workers share this "
                "cache folder (TLWIDGETS_CACHE, or cache=<shared folder>)?")
        time.sleep(poll)
    return hit


def featurise_sharded(featuriser, X, *, shard: tuple[int, int] | None = None,
                      merge: bool = True, timeout: float = 3600.0,
                      poll: float = 0.5) -> FeatureSet:
    """Featurise this worker's shard of ``X`` (a folder ``root/<class>/<image>`` or a list
    of image files); with ``merge``, wait for the other shards and return the whole
    collection's FeatureSet, equal to ``featuriser.featurise(X)`` in one process (same
    features, labels, paths and ``keys``).

    ``shard``: ``(index, count)``; by default this process's task in ``TF_CONFIG``
    (:func:`tlwidgets.multi_worker.task`). Task 0 stores the merged set in the cache.
    Without ``merge``, returns this shard's own FeatureSet.
    """
    featuriser._ensure_built()
    root = cache.cache_root(featuriser.cache)
    if root is None:
        raise FeaturiserError("Sharded featurisation passes the shards through the feature "
                              "cache: use cache=True (TLWIDGETS_CACHE, shared by the "
                              "workers) or cache=<shared folder>, not cache=False.")
    index, count = _shard(shard)
    t0 = time.perf_counter()
    notices = list(featuriser.notices_)
    src = make_source(X, featuriser._plan.size, notices, None)
    if src.kind not in ("folder", "paths"):
        raise FeaturiserError(f"Sharding splits image files: pass a folder root/<class>/<image> "
                              f"or a list of image paths, not {src.kind} data (featurise data "
                              "in memory in one process).")
    key = _key(featuriser, src)
    if cache.load(cache.entry_path(root, key)) is not None:  # the whole collection is cached
        return featuriser.featurise(X)
    files = [str(path) for path, _ in src.files]
    parts = [[files[i] for i in shard_indices(len(files), featuriser._plan.batch_size, j, count)]
             for j in range(count)]
    own = featuriser.featurise(parts[index]) if parts[index] else None
    if not merge:
        if own is None:
            return FeatureSet(np.zeros((0, featuriser.n_features_out_), np.float32),
                              source="paths", notices=notices)
        return own
    rows, skipped = {}, list(src.skipped)
    for j, part in enumerate(parts):
        if not part:
            continue
        if j == index:
            paths, features, more, texts = own.paths, own.features, own.skipped, own.notices
        else:
            hit = _wait(root, _key(featuriser, make_source(part, featuriser._plan.size, [], None)),
                        f"Shard {j} of {count} ({len(part)} files)", timeout, poll)
            paths, features = [str(p) for p in hit.get("paths", [])], hit["features"]
            more = [str(s) for s in hit.get("skipped", [])]
            texts = hit["meta"].get("notices", [])
        rows.update(zip(paths, features, strict=True))
        skipped += [s for s in more if s not in skipped]
        for text in texts:
            add_notice(notices, text)
    kept = [(f, label) for f, (_, label) in zip(files, src.files, strict=True) if f in rows]
    features = np.stack([rows[f] for f, _ in kept]).astype(np.float32, copy=False)
    labels = np.array([lab for _, lab in kept], np.int64) if src.kind == "folder" else None
    paths = [f for f, _ in kept]
    shown = {*featuriser.notices_, *(own.notices if own else [])}  # said already
    for text in notices:
        if text not in shown:
            notice(text, stacklevel=2)
    src.skipped = skipped
    if index == 0:
        from tlwidgets.featurize.estimator import _store

        _store(root, featuriser._plan, src, [(key, featuriser.layer_path_, features)],
               labels, paths, notices)
    return FeatureSet(
        features=features, labels=labels, class_names=list(src.class_names), paths=paths,
        skipped=skipped, notices=notices, from_cache=own is None or own.from_cache,
        seconds=time.perf_counter() - t0, source=src.kind, keys=[key],
        layers={featuriser.layer_path_ or "(output)": features},
    )
