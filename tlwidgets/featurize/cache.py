"""The feature cache: keys (what identifies a result) and storage (npz files on disk).

A key covers the network's architecture and the bytes of every weight, the cut
layer, the pooling, the preprocessing, the input size and the input data. Data
is hashed in full with xxHash (XXH3, 128 bits; several GB/s on one core), so a
hit is never a near miss: one bit changed anywhere gives another key.

Files are ``ROOT/xx/KEY.npz``, written atomically (:func:`tlwidgets.system.atomic_write`).
A cache that cannot be written (read-only, full, a file in its place) does not
lose the features: they are returned, with a notice that they were not cached.
A process killed mid-write leaves a hidden ``.KEY.npz.HOST-PID.XXXX.tmp``, which
is never read. It is stale as the asset layer judges its own leftovers
(:func:`tlwidgets.assets.describe_leftover`: this user's, and its process gone or
untouched for ``max_age``); :func:`stale_temporaries` lists stale ones,
:func:`leftovers` describes all of them for the doctor, and :func:`clear_cache`
removes the stale ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xxhash

from tlwidgets.assets import Leftover, describe_leftover, tagged_prefix
from tlwidgets.featurize.extractor import model_memo
from tlwidgets.featurize.results import FeaturiserError
from tlwidgets.notices import notice
from tlwidgets.system import atomic_write

CACHE_VERSION = 2  # 2: XXH3-128 keys
STALE_SECONDS = 3600.0  # a temporary file this old is a leftover of a killed write


# --------------------------------------------------------------------------- keys


def hasher() -> xxhash.xxh3_128:
    return xxhash.xxh3_128()


def update_array(h, a: np.ndarray) -> None:
    """Feed an array's dtype, shape and every byte to ``h``."""
    a = np.asarray(a)
    if a.dtype == object:
        raise FeaturiserError("Cannot featurise an object array: pass numeric image arrays.")
    h.update(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))


def weights_fingerprint(model) -> str:
    """Architecture (layer paths, types, output shapes) and the bytes of every weight.

    The weights are read in one graph call per dtype (reading ~150 variables one
    by one costs more than hashing them), then hashed, so a weight changed by
    fine-tuning gives a new fingerprint.
    """
    import tensorflow as tf

    from tlwidgets.layers import iter_layers

    memo = model_memo(model)
    if "architecture" not in memo:
        h = hasher()
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
    h = hasher()
    h.update(memo["architecture"].encode())
    for arr in memo["flat_weights"]():
        update_array(h, np.asarray(arr))
    return h.hexdigest()


def callable_fingerprint(fn: Callable) -> str:
    """A stable name for a preprocessing function: its qualified name and code."""
    h = hasher()
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    h.update(name.encode())
    code = getattr(fn, "__code__", None)
    if code is not None:
        h.update(code.co_code)
        h.update(repr(code.co_consts).encode())
    else:
        h.update(repr(fn).encode())
    return f"{name}:{h.hexdigest()[:12]}"


def keys_for(model, layer_paths: Sequence[str | None], *, data: str, prep: str, size: int,
             pooling: str) -> list[str]:
    """One key per layer, for this network, preprocessing, size, pooling and data."""
    common = hasher()
    for part in (f"v{CACHE_VERSION}", weights_fingerprint(model), prep, f"size={size}",
                 f"pooling={pooling}", data):
        common.update(part.encode() + b"\n")
    base = common.hexdigest()
    return [xxhash.xxh3_128_hexdigest(f"{base}|layer={p}".encode()) for p in layer_paths]


# --------------------------------------------------------------------------- storage


def default_cache_dir() -> Path:
    from tlwidgets.assets import cache_dir

    return cache_dir() / "features"


def cache_root(cache: bool | str | os.PathLike | None) -> Path | None:
    """The folder a ``cache=`` parameter names (None: no cache)."""
    if cache is False or cache is None:
        return None
    return default_cache_dir() if cache is True else Path(cache)


def entry_path(root: Path, key: str) -> Path:
    return root / key[:2] / f"{key}.npz"


def load(path: Path) -> dict | None:
    """A cached entry (arrays and ``meta``), or None if absent, stale or damaged."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (FileNotFoundError, NotADirectoryError):
        return None
    except Exception as exc:  # a damaged file: say so and compute again
        notice(f"Ignoring a damaged feature cache file {path} ({exc}); recomputing.", stacklevel=3)
        return None
    try:
        meta = json.loads(str(data.pop("meta")))
    except (KeyError, ValueError) as exc:
        notice(f"Ignoring a damaged feature cache file {path} ({exc}); recomputing.", stacklevel=3)
        return None
    if meta.get("version") != CACHE_VERSION:
        return None
    data["meta"] = meta
    return data


def save(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> str | None:
    """Write one entry atomically; on failure return why (the caller keeps its features)."""
    try:
        with atomic_write(path, prefix=tagged_prefix("." + path.name)) as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    remove_stale(path.parent)
    return None


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.glob(".*.tmp") if p.is_file()]


_KIND = "feature-cache temp file"


def _is_stale(path: Path, max_age: float) -> bool:
    return describe_leftover(path, _KIND, max_age_s=max_age).stale


def leftovers(cache_dir: str | Path | None = None) -> list[Leftover]:
    """Every temporary file of interrupted cache writes, described (stale or not)."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    if not root.is_dir():
        return []
    return [describe_leftover(p, _KIND, max_age_s=STALE_SECONDS) for d in sorted(root.iterdir()) if d.is_dir()
            for p in _temporaries(d)]


def remove_stale(folder: Path, max_age: float = STALE_SECONDS) -> int:
    """Remove this user's temporary files older than ``max_age`` s in one cache folder."""
    removed = 0
    for p in _temporaries(folder):
        if _is_stale(p, max_age):
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def stale_temporaries(cache_dir: str | Path | None = None, *,
                      max_age: float = STALE_SECONDS) -> list[Path]:
    """Leftovers of interrupted cache writes (this user's, older than ``max_age`` s)."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    if not root.is_dir():
        return []
    return sorted(p for d in root.iterdir() if d.is_dir() for p in _temporaries(d)
                  if _is_stale(p, max_age))


def clear_cache(cache_dir: str | Path | None = None, *, stale_only: bool = False,
                max_age: float = STALE_SECONDS) -> int:
    """Delete cached features (in ``cache_dir`` or the default) and leftovers of
    interrupted writes; returns the files removed. ``stale_only=True`` removes only
    the leftovers (this user's temporary files older than ``max_age`` seconds)."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    removed = 0
    if not root.is_dir():
        return 0
    for d in (d for d in root.iterdir() if d.is_dir()):
        removed += remove_stale(d, max_age)
        if not stale_only:
            for f in d.glob("*.npz"):
                f.unlink()
                removed += 1
    return removed
