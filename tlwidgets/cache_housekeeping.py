"""The asset cache's folder and its housekeeping.

Where the cache is (:func:`cache_dir`) and whether it can be written
(:func:`cache_status`); the temporary files that killed processes leave behind
(:func:`leftovers`, :func:`describe_leftover`, :func:`clear_leftovers`, and
:func:`tagged_prefix` to name them so their process can be recognised); and the
lock file by which two processes fetching the same asset take turns
(:func:`asset_lock`). :mod:`tlwidgets.assets` fetches into this cache; the
feature cache (:mod:`tlwidgets.featurize.cache`) judges its own leftovers the
same way.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tlwidgets.catalogue import Asset
from tlwidgets.notices import notice

__all__ = [
    "CacheStatus",
    "Leftover",
    "asset_lock",
    "cache_dir",
    "cache_status",
    "clear_leftovers",
    "describe_leftover",
    "leftovers",
    "tagged_prefix",
]

CACHE_ENV = "TLWIDGETS_CACHE"
PARTIAL_DIR = ".partial"
LOCK_DIR = ".locks"
STALE_AFTER = 600.0  # seconds untouched after which a leftover is stale (downloads write often)
_MIN_FREE = 16 << 20  # a cache with less free space than this is reported unusable


def cache_dir() -> Path:
    """The user cache folder (not created here)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tlwidgets"


@dataclass(frozen=True)
class CacheStatus:
    """Whether the cache folder can be written; ``problem`` and ``fix`` say why not."""

    path: Path
    problem: str | None = None
    free_bytes: int | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def fix(self) -> str | None:
        if self.problem is None:
            return None
        return (f"set {CACHE_ENV} to a writable folder with free space "
                f"(export {CACHE_ENV}=$HOME/tlwidgets-cache), or repair {self.path}")


def cache_status() -> CacheStatus:
    """Check the cache folder without changing anything (it may not exist yet)."""
    root = cache_dir()
    existing = root
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as exc:
        return CacheStatus(root, f"{existing} cannot be examined ({exc.strerror or exc})")
    problem = None
    if existing == root and not root.is_dir():
        problem = f"{root} ({CACHE_ENV} or the default) is a file, not a folder"
    elif not existing.is_dir():
        problem = f"{existing} is a file, so the cache folder {root} cannot be created"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not writable (read-only or another user's)"
    free = None
    if existing.is_dir():
        with suppress(OSError):
            free = shutil.disk_usage(existing).free
    if problem is None and free is not None and free < _MIN_FREE:
        problem = f"the disk that holds {root} is full ({free / 1e6:.1f} MB free)"
    return CacheStatus(root, problem, free)


@dataclass(frozen=True)
class Leftover:
    """A temporary file or folder that a killed process left behind.

    ``stale`` is True when it is safe to remove: it is ours (same user) and its
    process is gone, or nothing touched it for :data:`STALE_AFTER` seconds.
    """

    path: Path
    kind: str
    size: int
    age_s: float
    stale: bool
    why: str


_TAG = re.compile(r"\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.")


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"


def tagged_prefix(name: str) -> str:
    """``NAME.HOST-PID.``: a prefix for temporary files (``tempfile.mkstemp(prefix=...)``)
    that lets :func:`describe_leftover` tell when their process is gone."""
    return f"{name}.{_host_tag()}-{os.getpid()}."


def _pid_alive(pid: int) -> bool | None:
    if os.name != "posix":
        return None  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def describe_leftover(path: Path, kind: str, *, max_age_s: float = STALE_AFTER) -> Leftover:
    """Say whether a temporary ``path`` is stale (ours, and dead or untouched for long)."""
    try:
        st = path.stat()
    except OSError:
        return Leftover(path, kind, 0, 0.0, False, "gone")
    age = max(0.0, time.time() - st.st_mtime)
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return Leftover(path, kind, _size(path), age, False,
                        f"belongs to another user (uid {st.st_uid})")
    m = _TAG.search(path.name)
    if m and m["host"] == _host_tag():
        pid = int(m["pid"])
        alive = _pid_alive(pid)
        if alive is False:
            return Leftover(path, kind, _size(path), age, True, f"its process {pid} is gone")
        if alive and pid != os.getpid() and age < max_age_s:
            return Leftover(path, kind, _size(path), age, False, f"process {pid} is writing it")
    if age >= max_age_s:
        return Leftover(path, kind, _size(path), age, True, f"untouched for {age / 60:.0f} min")
    return Leftover(path, kind, _size(path), age, False, "recent: may be in use")


def leftovers() -> list[Leftover]:
    """Partial downloads in the cache's ``.partial`` folder (a killed fetch leaves them)."""
    folder = cache_dir() / PARTIAL_DIR
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [describe_leftover(p, "partial download") for p in entries]


def clear_leftovers(items: Iterable[Leftover] | None = None) -> list[Path]:
    """Remove the stale leftovers (default: the asset cache's); return what was removed."""
    removed = []
    for item in leftovers() if items is None else items:
        if not item.stale:
            continue
        try:
            if item.path.is_dir():
                shutil.rmtree(item.path)
            else:
                item.path.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue
        removed.append(item.path)
    return removed


@contextmanager
def asset_lock(root: Path, asset: Asset) -> Iterator[None]:
    """Take turns with other processes fetching the same asset into the same cache."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; a finished copy from another process is accepted
        yield
        return
    folder = root / LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{asset.id}.lock", os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            notice(f"Another process is fetching {asset.id!r} into {root}; waiting for it.",
                   key=f"lock:{root}:{asset.id}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
