"""Checking a local copy of an asset against its catalogue entry.

Size, checksum (remembered in a sidecar file beside a verified file, and in
:data:`memo` for this process) and, for files without a published checksum,
the catalogue's structural check. :mod:`tlwidgets.assets` uses these to decide
whether a copy it finds may be used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from tlwidgets.catalogue import Asset
from tlwidgets.system import atomic_write

__all__ = ["content_ok", "dir_complete", "hash_file", "memo", "present", "remove", "write_sidecar"]

CHUNK = 1 << 20
_SIDECAR_SUFFIX = ".tlwidgets-verified.json"
memo: dict[tuple[str, int, int], bool] = {}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _expected_digest(asset: Asset) -> tuple[str, str] | None:
    if asset.sha256:
        return "sha256", asset.sha256
    if asset.md5:
        return "md5", asset.md5
    return None


def content_ok(path: Path, asset: Asset) -> bool:
    """The catalogue's structural check, for files without a published checksum."""
    if asset.content_check != "keras-h5":
        return True
    with path.open("rb") as fh:
        if fh.read(8) != _HDF5_MAGIC:
            return False
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py comes with Keras
        return True
    try:
        with h5py.File(path, "r") as f:
            names = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in f.attrs.get("layer_names", [])]
            return bool(names) and all(name in f for name in names)
    except (OSError, ValueError, KeyError, RuntimeError):
        return False


def _file_matches(path: Path, asset: Asset) -> bool:
    """Whether an (unarchived) file matches the catalogue's size, checksum and format."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in memo:
        return memo[key]
    ok = True
    if asset.file_size is not None and st.st_size != asset.file_size:
        ok = False
    elif digest := _expected_digest(asset):
        sidecar = _sidecar(path)
        ok = True if _sidecar_says(sidecar, st, digest) else hash_file(path, digest[0]) == digest[1]
    else:
        ok = content_ok(path, asset)
    memo[key] = ok
    return ok


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def _sidecar_says(sidecar: Path, st: os.stat_result, digest: tuple[str, str]) -> bool:
    try:
        info = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    return (
        info.get(digest[0]) == digest[1]
        and info.get("size") == st.st_size
        and info.get("mtime_ns") == st.st_mtime_ns
    )


def write_sidecar(path: Path, asset: Asset) -> None:
    """Record a verified checksum beside the file (a speed-up only: failures are ignored)."""
    digest = _expected_digest(asset)
    if digest is None or not path.is_file():
        return
    try:
        st = path.stat()
        info = {digest[0]: digest[1], "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        _atomic_write_text(_sidecar(path), json.dumps(info))
    except OSError:
        pass


def dir_complete(path: Path, asset: Asset) -> bool:
    return path.is_dir() and all((path / member).exists() for member in asset.required)


def present(path: Path, asset: Asset) -> bool | None:
    """True if usable, False if present but wrong, None if absent."""
    if asset.is_dir:
        if not path.exists():
            return None
        return dir_complete(path, asset)
    if not path.is_file():
        return None
    return _file_matches(path, asset)


def _atomic_write_text(target: Path, text: str) -> None:
    with atomic_write(target) as fh:
        fh.write(text.encode())


def remove(path: Path) -> None:
    try:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        _sidecar(path).unlink(missing_ok=True)
    except OSError:
        pass  # a read-only cache: locate() skips the bad copy anyway
