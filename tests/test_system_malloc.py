"""tlwidgets.system.return_large_blocks: freed tensors leave the process at once (glibc)."""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys

import pytest

from tlwidgets.system import return_large_blocks

# In a fresh interpreter: raise glibc's dynamic mmap threshold with one large free, then
# allocate 4 MiB blocks with small blocks between them (as a training step leaves its
# tensors), free the large ones and report the resident memory that stays.
PROBE = r"""
import ctypes, json, os, sys
if sys.argv[1] == "tuned":
    from tlwidgets.system import return_large_blocks
    assert return_large_blocks()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
libc.free(libc.malloc(16 * 2**20))
big, small = [], []
for _ in range(100):
    p = libc.malloc(4 * 2**20)
    ctypes.memset(p, 1, 4 * 2**20)
    big.append(p)
    small.append(libc.malloc(64))
before = rss()
for p in big:
    libc.free(p)
print(json.dumps({"held": before, "kept": rss()}))
"""


def _probe(mode: str) -> dict:
    env = {**os.environ, "TLWIDGETS_MALLOC_TUNING": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, env=env, timeout=120)
    return json.loads(out.stdout)


glibc = pytest.mark.skipif(not sys.platform.startswith("linux")
                           or "libc.so.6" not in (ctypes.util.find_library("c") or ""),
                           reason="glibc only")


@glibc
def test_freed_large_blocks_leave_the_process_once_tuned():
    plain, tuned = _probe("plain"), _probe("tuned")
    assert plain["held"] > 350 and tuned["held"] > 350  # 100 x 4 MiB resident
    assert plain["kept"] > 300  # untuned: the heap keeps the freed blocks
    assert tuned["kept"] < 100  # tuned: each block was its own mapping, returned on free


def test_tuning_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("TLWIDGETS_MALLOC_TUNING", "0")
    assert return_large_blocks() is False


# In a fresh interpreter: tlwidgets first (as the notebooks do), then 200 steps that each
# make and drop 16 MiB of tensors; report the page faults of the steps.
TF_PROBE = r"""
import json, resource
import tlwidgets  # noqa: F401
import tensorflow as tf
x = tf.ones((1024, 1024))
def step():
    return float(tf.reduce_sum(tf.nn.relu(x * 2.0 + 1.0) * 0.5 - x))
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    step()
print(json.dumps({"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _tf_faults(**env) -> int:
    env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    out = subprocess.run([sys.executable, "-c", TF_PROBE], capture_output=True, text=True,
                         check=True, env=env, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])["faults"]


@glibc
def test_tensorflow_reuses_its_tensor_memory_instead_of_faulting_in_fresh_pages():
    pooled = _tf_faults(TLWIDGETS_MALLOC_TUNING="1", TF_CPU_ALLOCATOR_USE_BFC=None)
    plain = _tf_faults(TLWIDGETS_MALLOC_TUNING="1", TF_CPU_ALLOCATOR_USE_BFC="false")
    # each step's four 4 MiB tensors: ~4,000 fresh pages a step from malloc, none from the pool
    assert plain > 100_000
    assert pooled < plain / 10


def test_a_user_s_own_allocator_choice_is_kept(monkeypatch):
    from tlwidgets.system import pool_tensorflow_memory

    monkeypatch.setenv("TF_CPU_ALLOCATOR_USE_BFC", "false")
    assert not pool_tensorflow_memory()
    assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == "false"
    monkeypatch.delenv("TF_CPU_ALLOCATOR_USE_BFC")
    monkeypatch.setenv("TLWIDGETS_MALLOC_TUNING", "0")
    assert not pool_tensorflow_memory()
    assert "TF_CPU_ALLOCATOR_USE_BFC" not in os.environ
