"""The one image path: dtypes, channels, sizes, files and uploads, with their notices."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlwidgets import images
from tlwidgets.images import ImageError, UnreadableImageError
from tlwidgets.notices import Notice
from tlwidgets.notices import reset as reset_notices


@pytest.fixture(autouse=True)
def _fresh_notices():
    reset_notices()
    yield
    reset_notices()


def _gradient16() -> np.ndarray:
    """A 64x64 16-bit grey gradient using the whole 0-65535 range."""
    return np.linspace(0, 65535, 64 * 64).reshape(64, 64).round().astype(np.uint16)


def huge_png(path: Path, side: int = 15000) -> Path:
    """A valid PNG header for a ``side`` x ``side`` grey image in a few dozen bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    grey = _gradient16()
    Image.fromarray(grey).save(tmp_path / "xray.png")
    with Image.open(tmp_path / "xray.png") as im:
        assert im.mode == "I;16"  # what Pillow gives for a 16-bit grey PNG
    notes: list[str] = []
    img = images.load_image(tmp_path / "xray.png", notices=notes)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert np.mean(img == 255) < 0.01  # before: 99.6% white
    np.testing.assert_allclose(img[..., 0], grey / 257.0, atol=0.51)
    assert any("16-bit" in n for n in notes)


def test_uint16_arrays_are_scaled_with_a_notice():
    x8 = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    with pytest.warns(Notice, match="16-bit"):
        out = images.to_rgb(x8.astype(np.uint16) * 257)
    np.testing.assert_array_equal(out, x8.astype(np.float32))
    # Integers that fit 0-255 (e.g. int64 from Python lists) are taken as they are.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(images.to_rgb(x8.astype(np.int64)), x8)


def test_signed_and_too_large_integers_are_refused():
    with pytest.raises(ImageError, match="negative values"):
        images.to_rgb(np.full((1, 4, 4, 3), -5, np.int8))
    with pytest.raises(ImageError, match="beyond 16 bits"):
        images.to_rgb(np.full((1, 4, 4, 3), 70000, np.int32))


def test_rgba_alpha_is_dropped_with_a_notice(tmp_path):
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    with pytest.warns(Notice, match="alpha channel was dropped"):
        out = images.to_rgb(rgba[None])
    assert out.shape == (1, 6, 6, 3) and out[..., 0].max() == 200
    Image.fromarray(rgba).save(tmp_path / "logo.png")
    notes: list[str] = []
    img = images.load_image(tmp_path / "logo.png", notices=notes)
    assert img.shape == (6, 6, 3) and img[..., 0].max() == 200
    assert any("alpha channel was dropped" in n for n in notes)


def test_zero_size_nan_and_inf_images_are_refused():
    with pytest.raises(ImageError, match="Zero-size images"):
        images.to_rgb(np.zeros((2, 0, 0, 3), np.uint8))
    x = np.ones((3, 4, 4, 3), np.float32)
    x[1, 2, 2, 0] = np.nan
    with pytest.raises(ImageError, match=r"1 pixel values are NaN or infinite \(the first in image 1\)"):
        images.to_rgb(x)
    x[1, 2, 2, 0] = np.inf
    with pytest.raises(ImageError, match="NaN or infinite"):
        images.to_rgb(x)


def test_float_range_advice_tells_preprocessed_from_unscaled():
    assert "Multiply them by 255" in images.float_range_advice(np.full((1, 2, 2, 3), 0.5))
    advice = images.float_range_advice(np.linspace(-1, 1, 12).reshape(1, 2, 2, 3))
    assert "already preprocessed" in advice and "Multiply" not in advice
    assert "outside [0, 255]" in images.float_range_advice(np.full((1, 2, 2, 3), 300.0))
    assert images.float_range_advice(np.full((1, 2, 2, 3), 100.0)) is None
    assert images.float_range_advice(np.zeros((1, 2, 2, 3), np.uint8)) is None


def test_to_uint8_maps_each_float_range_and_says_so():
    np.testing.assert_array_equal(images.to_uint8(np.ones((2, 2, 3))), 255)
    notes: list[str] = []
    back = images.to_uint8(np.array([[-1.0, 0.0, 1.0]]), notes)
    assert back.tolist() == [[0, 128, 255]] and "[-1, 1]" in notes[0]
    notes = []
    assert images.to_uint8(np.array([[-20.0, 300.0]]), notes).tolist() == [[0, 255]]
    assert "clipped" in notes[0]


def test_resize_keeps_dtype_family_and_mixed_sizes_are_batched():
    img = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    small = images.resize(img, 20)
    assert small.shape == (20, 20, 3) and small.dtype == np.uint8
    f = images.resize(img.astype(np.float32), (10, 16))
    assert f.shape == (10, 16, 3) and f.dtype == np.float32
    # Uint8 and float resizing agree (same filter) up to rounding.
    np.testing.assert_allclose(images.resize(img.astype(np.float32), 20), small, atol=1.0)
    notes: list[str] = []
    batch = images.rgb_batch([img, img[:10, :10, 0]], 16, notes)
    assert batch.shape == (2, 16, 16, 3) and batch.dtype == np.uint8
    assert any("different sizes" in n for n in notes) and any("Grey" in n for n in notes)


def test_oversized_file_raises_an_os_error_naming_it(tmp_path):
    path = huge_png(tmp_path / "huge.png")
    assert path.stat().st_size < 200
    with pytest.raises(UnreadableImageError, match="huge.png.*too large"):
        images.load_image(path)
    assert issubclass(UnreadableImageError, OSError)  # folder readers skip OSErrors
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(UnreadableImageError, match="junk.png"):
        images.load_image(tmp_path / "junk.png")


def test_uploads_and_pil_images():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(buf, format="PNG")
    assert images.decode_bytes(buf.getvalue()).shape == (5, 7, 3)
    with pytest.raises(ImageError, match="Could not read the upload"):
        images.decode_bytes(b"%PDF-1.4")
    pil = Image.fromarray(_gradient16())
    arr, note = images.prepare_image(pil, 32)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8 and "resized" in note
    assert np.mean(arr == 255) < 0.05
