"""Operating-system helpers: atomic file writes and giving freed memory back to the system."""

from __future__ import annotations

import contextlib
import ctypes
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "pool_tensorflow_memory", "return_large_blocks",
           "temporary_name_prefix", "trim_heap", "usual_mode"]

def _current_umask() -> int:
    """The process umask, read without changing it where possible (Linux: /proc)."""
    try:
        with open("/proc/self/status") as fh:
            return int(next(ln for ln in fh if ln.startswith("Umask:")).split()[1], 8)
    except (OSError, StopIteration, ValueError):
        with _umask_lock:  # elsewhere the only way to read it is to set it and restore it
            mask = os.umask(0o022)
            os.umask(mask)
        return mask


_umask_lock = threading.Lock()


def temporary_name_prefix(target: Path) -> str:
    """The prefix of :func:`atomic_write`'s temporary files for ``target`` (``.NAME.``)."""
    return f".{target.name}."


def usual_mode(path: str | Path, *, folder: bool = False) -> None:
    """Give a temporary file (0600) or folder (0700) the mode the umask asks for."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_current_umask())


@contextmanager
def atomic_write(target: str | Path, *, fsync: bool = True, tmp_dir: str | Path | None = None,
                 prefix: str | None = None) -> Iterator[BinaryIO]:
    """Write ``target`` all at once: into a hidden temporary file beside it, then a rename.

    A reader sees the old file or the complete new one, never a half-written
    one; on an error the temporary file is removed and the error re-raised.
    A process killed mid-write leaves ``.NAME.XXXX.tmp`` behind, which no
    reader opens (see :func:`tlwidgets.featurize.stale_temporaries`). The file
    gets the usual permissions (``0o666`` less the umask), not ``mkstemp``'s 0600.
    ``tmp_dir`` (on the same disk) and ``prefix`` place and name the temporary file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=prefix or temporary_name_prefix(target), suffix=".tmp",
                                dir=tmp_dir or target.parent)
    try:
        with contextlib.suppress(OSError, AttributeError):  # fchmod: not on Windows
            os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(name, target)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def trim_heap() -> None:
    """Return freed heap pages to the system (glibc's ``malloc_trim``); a no-op elsewhere.

    After large temporary allocations glibc keeps freed pages mapped, so the
    process looks larger than it is and the next allocations stack on top.
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        ctypes.CDLL("libc.so.6").malloc_trim(0)


_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc's mallopt parameters (malloc.h)


def _tuning_off() -> bool:
    """``TLWIDGETS_MALLOC_TUNING=0``: leave malloc and TensorFlow's allocator as they are."""
    return os.environ.get("TLWIDGETS_MALLOC_TUNING", "1") == "0"


def return_large_blocks(threshold: int = 256 * 1024, arenas: int = 2) -> bool:
    """Make glibc give freed large blocks back to the system at once; False where not glibc.

    By default glibc raises its mmap threshold after each large free (up to 32 MiB), so
    later tensors of a few MiB come from the heap, fragment it and stay resident; and
    each thread of TensorFlow's pools may open a heap arena of its own. A fixed
    ``threshold`` serves every larger block with its own mapping (returned on free), and
    ``arenas`` caps the arenas. Measured (fine-tuning all layers of the stand-in network,
    ants and bees at 128 px, 2 CPU cores): one run's peak 1112 -> 1010 MiB and what it
    leaves resident 825 -> 740 MiB; a training step costs about a tenth more CPU time
    (the fresh pages of each mapping). TensorFlow's own tensors come from its pool
    (:func:`pool_tensorflow_memory`), so this now concerns NumPy and the rest. Takes
    effect for later allocations; ``TLWIDGETS_MALLOC_TUNING=0`` leaves malloc as it is.
    """
    if _tuning_off():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold))
                    and libc.mallopt(_M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return False


def pool_tensorflow_memory() -> bool:
    """Let TensorFlow keep its CPU tensors in a pool of its own (its BFC allocator).

    By default TensorFlow takes every CPU tensor from malloc and gives it back when done,
    so a training step maps and unmaps fresh pages for each large tensor (1,400 mmap and
    munmap calls a second, measured while training MobileNet), and the kernel spends
    its time zeroing pages: on 2 cores, 30 to 50% of a notebook's CPU time was system
    time. The pool, grown as needed and reused, never returns pages. Measured (MobileNet
    alpha 0.25 trained from random weights at 128 px, five subsets, 2 cores): 101 s ->
    58 s wall, system time 51 -> 6 s, 14 M -> 0.3 M page faults, the same scores; peak
    +48 MiB, and the pool (~210 MiB) stays resident for the next model. Must be set
    before TensorFlow starts (sets ``TF_CPU_ALLOCATOR_USE_BFC`` unless already set);
    ``TLWIDGETS_MALLOC_TUNING=0`` leaves it off. False when not set here.
    """
    if _tuning_off():
        return False
    return os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true") == "true"
