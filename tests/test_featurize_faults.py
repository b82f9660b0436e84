"""Featuriser under bad input and faults: odd pixels, a bomb in a folder, a broken cache."""

from __future__ import annotations

import errno
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import weakref
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tests.test_images import huge_png
from tlwidgets.assets import tagged_prefix
from tlwidgets.featurize import (
    Featuriser,
    FeaturiserError,
    clear_cache,
    leftovers,
    stale_temporaries,
)
from tlwidgets.notices import Notice
from tlwidgets.notices import reset as reset_notices

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_notices():
    reset_notices()
    yield
    reset_notices()


def _tiny(size=16, name="tiny"):
    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    return keras.Model(inp, x, name=name)


def _images(n=4, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- pixels


def test_uint16_images_give_the_features_of_their_8_bit_version():
    f = Featuriser(_tiny(), cache=False, progress=False)
    x8 = _images()
    with pytest.warns(Notice, match="16-bit"):
        got = f.transform(x8.astype(np.uint16) * 257)
    np.testing.assert_allclose(got, f.transform(x8), rtol=1e-6)


def test_zero_size_nan_inf_and_negative_images_are_refused():
    f = Featuriser(_tiny(), cache=False, progress=False)
    with pytest.raises(FeaturiserError, match="Zero-size"):
        f.transform(np.zeros((3, 0, 0, 3), np.uint8))
    x = _images().astype(np.float32)
    x[2, 1, 1, 1] = np.nan
    with pytest.raises(FeaturiserError, match="NaN or infinite.*image 2"):
        f.transform(x)
    x[2, 1, 1, 1] = -np.inf
    with pytest.raises(FeaturiserError, match="NaN or infinite"):
        f.transform(x)
    with pytest.raises(FeaturiserError, match="negative"):
        f.transform(_images().astype(np.int8) - 100)


def test_float_advice_for_preprocessed_and_out_of_range_images():
    f = Featuriser(_tiny(), preprocess="mobilenet", cache=False, progress=False)
    pre = _images().astype(np.float32) / 127.5 - 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f.transform(pre)
    said = " ".join(str(w.message) for w in caught)
    assert "already preprocessed" in said and "Multiply" not in said
    with pytest.warns(Notice, match=r"outside \[0, 255\]"):
        f.transform(_images().astype(np.float32) * 4)


# --------------------------------------------------------------------------- folders


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    for c, cls in enumerate(("a", "b")):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(_images(1, seed=10 * c + i)[0]).save(root / cls / f"{i}.png")
    return root


def test_an_oversized_image_is_skipped_and_named_not_aborting_the_folder(tmp_path):
    root = _folder(tmp_path)
    huge_png(root / "b" / "huge.png")
    f = Featuriser(_tiny(), cache=False, progress=False)
    with pytest.warns(Notice, match=r"Skipped an unreadable image: .*huge\.png.*too large"):
        fs = f.featurise(root)
    assert len(fs) == 4 and list(fs.labels) == [0, 0, 1, 1]
    assert [Path(s.split(" (")[0]).name for s in fs.skipped] == ["huge.png"]


def test_rgba_files_in_a_folder_say_the_alpha_was_dropped(tmp_path):
    root = _folder(tmp_path)
    rgba = np.dstack([_images(1)[0], np.full((16, 16), 7, np.uint8)])
    Image.fromarray(rgba).save(root / "a" / "logo.png")
    with pytest.warns(Notice, match="alpha channel was dropped"):
        fs = Featuriser(_tiny(), cache=False, progress=False).featurise(root)
    assert len(fs) == 5


# --------------------------------------------------------------------------- cache faults


def _fault(kind: str, root: Path, monkeypatch) -> None:
    if kind == "a file in its place":
        root.parent.mkdir(parents=True, exist_ok=True)
        root.write_text("I am a file")
    elif kind == "read-only":
        root.mkdir(parents=True)
        root.chmod(0o500)
        if os.geteuid() == 0:  # root writes anyway: fail as the kernel would for a user
            import tlwidgets.system as system

            def refuse(*a, **k):
                raise PermissionError(errno.EACCES, "Permission denied", str(root))

            monkeypatch.setattr(system.tempfile, "mkstemp", refuse)
    else:  # a full disk: the write fails part-way
        import tlwidgets.featurize.cache as cache_mod

        def full(fh, **arrays):
            fh.write(b"PK\x03\x04 part of a file")
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(cache_mod.np, "savez", full)


@pytest.mark.parametrize("kind", ["read-only", "a file in its place", "disk full"])
def test_an_unwritable_cache_returns_the_features_and_says_they_were_not_cached(
        tmp_path, monkeypatch, kind):
    model, x = _tiny(), _images()
    expected = Featuriser(model, cache=False, progress=False).transform(x)
    root = tmp_path / "cache"
    _fault(kind, root, monkeypatch)
    try:
        with pytest.warns(Notice, match="computed but not cached"):
            fs = Featuriser(model, cache=root, progress=False).featurise(x)
        np.testing.assert_array_equal(fs.features, expected)
        assert not fs.from_cache
        if root.is_dir():  # nothing half-written is left
            assert not [p for p in root.rglob("*") if p.is_file()]
    finally:
        if root.is_dir():
            root.chmod(0o700)


_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    import tlwidgets.featurize.cache as cache
    from tlwidgets.featurize import Featuriser
    from tests.test_featurize_faults import _images, _tiny

    def slow(fh, **arrays):
        fh.write(b"PK\\x03\\x04 half of an npz")
        fh.flush()
        print("writing", flush=True)
        time.sleep(600)

    cache.np.savez = slow
    Featuriser(_tiny(), cache=sys.argv[1], progress=False).featurise(_images())
""")


def test_kill_9_during_a_cache_write_leaves_nothing_that_is_used(tmp_path):
    root = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(root)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    (tmp,) = [p for p in root.rglob("*") if p.is_file()]
    assert tmp.name.startswith(".") and tmp.name.endswith(".tmp")
    assert not list(root.rglob("*.npz"))
    # The killed writer's leftover is stale at once (its process is gone) ...
    assert stale_temporaries(root) == [tmp]
    assert [(lo.path, lo.stale) for lo in leftovers(root)] == [(tmp, True)]
    # ... while a live writer's fresh temporary file is left alone.
    live = tmp.parent / (tagged_prefix(".other.npz") + "abcd.tmp")
    live.write_bytes(b"half")
    assert stale_temporaries(root) == [tmp]
    # The next run computes (the half file is never read), caches properly, and clears
    # the dead writer's leftover from the folder it writes to.
    model, x = _tiny(), _images()
    f = Featuriser(model, cache=root, progress=False)
    first = f.featurise(x)
    assert not first.from_cache and f.featurise(x).from_cache
    np.testing.assert_array_equal(
        first.features, Featuriser(model, cache=False, progress=False).transform(x))
    assert not tmp.exists() and live.exists()
    assert clear_cache(root, stale_only=True) == 0 and f.featurise(x).from_cache
    live.unlink()
    assert clear_cache(root) == 1 and not f.featurise(x).from_cache


def test_stale_leftovers_are_cleaned_when_the_folder_is_written_again(tmp_path):
    model, x = _tiny(), _images()
    f = Featuriser(model, cache=tmp_path, progress=False)
    f.featurise(x)
    (entry,) = tmp_path.rglob("*.npz")
    stale = entry.parent / f".{entry.name}.abc123.tmp"
    fresh = entry.parent / f".{entry.name}.def456.tmp"
    for p in (stale, fresh):
        p.write_bytes(b"half")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    entry.unlink()
    f.featurise(x)  # rewrites the entry in the same folder
    assert not stale.exists() and fresh.exists()


# --------------------------------------------------------------------------- bounded memos


def test_compiled_cuts_do_not_keep_every_model_alive():
    from tlwidgets.featurize import extractor

    refs = []
    for i in range(extractor.MAX_MODELS + 3):
        model = _tiny(name=f"m{i}")
        Featuriser(model, cache=False, progress=False).transform(_images(1))
        refs.append(weakref.ref(model))
        del model
    gc.collect()
    alive = sum(r() is not None for r in refs)
    assert alive <= extractor.MAX_MODELS, alive
