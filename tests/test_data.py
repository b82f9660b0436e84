"""Image data sets: folders (bad files skipped and named), PneumoniaMNIST, subsets."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.test_images import huge_png
from tlwidgets.data import list_image_folder, load_image_folder, load_pneumoniamnist
from tlwidgets.notices import Notice
from tlwidgets.notices import reset as reset_notices


@pytest.fixture(autouse=True)
def _fresh_notices():
    reset_notices()
    yield
    reset_notices()


def test_a_folder_loads_and_bad_files_are_skipped_by_name(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(
                tmp_path / cls / f"{i}.png")
    huge_png(tmp_path / "dogs" / "huge.png")
    (tmp_path / "cats" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "cats" / "notes.txt").write_text("x")
    items, classes, skipped = list_image_folder(tmp_path)
    assert classes == ["cats", "dogs"] and len(items) == 8 and len(skipped) == 1
    with pytest.warns(Notice, match=r"Skipped 3 .*files under"):
        data = load_image_folder(tmp_path, image_size=16)
    assert data.images.shape == (6, 16, 16, 3) and data.images.dtype == np.uint8
    assert list(data.labels) == [0, 0, 0, 1, 1, 1]
    assert sorted(p.rsplit("/", 1)[-1] for p in data.skipped) == ["broken.jpg", "huge.png",
                                                                    "notes.txt"]
    two = data.subset(2, seed=1)
    assert len(two) == 4 and list(two.labels) == [0, 0, 1, 1]


def test_pneumoniamnist_grey_to_rgb_and_resized_like_pil(shared_assets):
    grey = load_pneumoniamnist("val", rgb=False, per_class=3)
    assert grey.images.ndim == 3 and grey.images.dtype == np.uint8
    rgb = load_pneumoniamnist("val", image_size=56, per_class=3)
    assert rgb.images.shape == (6, 56, 56, 3)
    expected = np.stack([np.asarray(Image.fromarray(im).resize((56, 56), Image.BILINEAR))
                         for im in grey.images])
    np.testing.assert_array_equal(rgb.images[..., 0], expected)
    np.testing.assert_array_equal(rgb.images[..., 0], rgb.images[..., 2])
