"""Activation maps from one compiled pass, receptive fields, and the bad inputs learners make."""

import io

import keras
import numpy as np
import pytest

from tlwidgets.activations import (
    Activations,
    ReceptiveField,
    default_layers,
    downsample,
    grid_image,
    prepare_image,
    read_image_bytes,
    receptive_fields,
)


def _edge_model():
    """One 3x3 convolution set by hand to a vertical-edge (Sobel-x) detector on grey."""
    inp = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(2, 3, padding="valid", use_bias=False, name="edges")
    out = conv(inp)
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[:, :, :, 0] = sobel_x[:, :, None] / 3  # vertical edges, dark -> bright
    kernel[:, :, :, 1] = sobel_x.T[:, :, None] / 3  # horizontal edges
    conv.set_weights([kernel])
    return keras.Model(inp, out)


def _edge_images():
    vertical = np.zeros((32, 32, 3), np.uint8)
    vertical[:, 16:] = 255
    return vertical, np.ascontiguousarray(vertical.transpose(1, 0, 2))


def test_hand_set_vertical_edge_detector_fires_on_vertical_edge_only():
    acts = Activations(_edge_model(), ["edges"])
    vertical, horizontal = _edge_images()
    on_vertical = acts.compute(vertical)["edges"][..., 0]
    on_horizontal = acts.compute(horizontal)["edges"][..., 0]
    assert on_vertical.max() > 200  # a full black-to-white step
    assert np.abs(on_horizontal).max() == pytest.approx(0.0, abs=1e-4)
    # The response sits on the edge's columns (valid conv: input columns 15..16 -> 14..15).
    assert set(np.flatnonzero(on_vertical.max(axis=0) > 1)) == {14, 15}
    # Ranking: on a vertical edge, the vertical detector is the strongest channel.
    maps = acts.maps(vertical, "edges", top=2, size=None)
    assert maps.channels.tolist() == [0, 1]
    assert maps.map_shape == (30, 30, 2)


def test_receptive_fields_match_hand_computed_values():
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inp)  # 3, jump 1
    x = keras.layers.ReLU(name="r1")(x)  # unchanged
    x = keras.layers.Conv2D(4, 3, padding="same", name="c2")(x)  # 3 + 2 = 5
    x = keras.layers.MaxPooling2D(2, name="p1")(x)  # 5 + 1 = 6, jump 2
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c3")(x)  # 6 + 2*2 = 10, jump 4
    x = keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same", name="c4")(x)  # 10 + 4*4 = 26
    x = keras.layers.AveragePooling2D(3, strides=1, name="p2")(x)  # 26 + 2*4 = 34
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(x))
    rf = receptive_fields(model)
    assert rf["c1"] == ReceptiveField(3, 1)
    assert rf["r1"] == ReceptiveField(3, 1)
    assert rf["c2"] == ReceptiveField(5, 1)
    assert rf["p1"] == ReceptiveField(6, 2)
    assert rf["c3"] == ReceptiveField(10, 4)
    assert rf["c4"] == ReceptiveField(26, 4)
    assert rf["p2"] == ReceptiveField(34, 4)
    assert rf["gap"] is None and rf["head"] is None


def test_receptive_fields_through_a_nested_base_and_a_residual_add():
    inp = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inp)  # 3
    b = keras.layers.Conv2D(4, 5, padding="same", name="b")(a)  # 7
    added = keras.layers.Add(name="add")([a, b])  # the larger: 7
    base = keras.Model(inp, keras.layers.Conv2D(4, 3, strides=2, name="c")(added), name="base")  # 9, 2
    outer_in = keras.Input((32, 32, 3))
    x = keras.layers.MaxPooling2D(2, name="pool")(outer_in)  # 2, jump 2
    clf = keras.Model(outer_in, base(x), name="clf")
    rf = receptive_fields(clf)
    # In pixels of the classifier's input: the pooling in front doubles every step.
    assert rf["base/add"] == ReceptiveField(2 + 6 * 2, 2)
    assert rf["base"] == ReceptiveField(2 + 8 * 2, 4)
    assert rf["base/c"] == rf["base"]


def test_nested_base_gives_the_same_maps_as_the_bare_base(rng_images):
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv_a")(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv_b")(x)
    base = keras.Model(inp, x, name="base")
    outer = keras.Input((32, 32, 3))
    y = keras.layers.GlobalAveragePooling2D(name="gap")(base(outer))
    clf = keras.Model(outer, keras.layers.Dense(2, name="head")(y))
    assert default_layers(base) == ["conv_a", "conv_b"]
    assert default_layers(clf) == ["base/conv_a", "base/conv_b"]
    flat, nested = Activations(base), Activations(clf)
    image = rng_images[0]
    for layer in ("conv_a", "conv_b"):
        np.testing.assert_allclose(nested.compute(image)[f"base/{layer}"],
                                   flat.compute(image)[layer], rtol=1e-5, atol=1e-5)
    m = nested.maps(image, "base/conv_b", top=3, size=None)
    means = flat.compute(image)["conv_b"].mean(axis=(0, 1))
    assert m.channels.tolist() == np.argsort(-means)[:3].tolist()
    assert np.all(np.diff(m.means) <= 0)


@pytest.fixture
def rng_images():
    return np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)


def test_non_spatial_layer_is_explained_with_nearest_map_layers():
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="dense")(x))
    with pytest.raises(ValueError, match=r"'flat'.*not a \(height, width, channels\).*conv2"):
        Activations(model, ["flat"])
    acts = Activations(model)
    with pytest.raises(ValueError, match="Nearest layers with maps: conv, conv2"):
        acts.maps(np.zeros((16, 16, 3), np.uint8), "dense")


def test_model_without_convolutions_is_refused_clearly():
    inp = keras.Input((8,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    with pytest.raises(ValueError, match="no convolutional layers"):
        Activations(model)


def test_images_are_converted_with_a_notice():
    grey = np.full((20, 10), 128, np.uint8)
    img, notice = prepare_image(grey, 32)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert "grey" in notice and "resized from 10x20 to 32x32" in notice
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 200
    img, notice = prepare_image(rgba, 32)
    assert img[..., 0].max() == 200 and "alpha" in notice
    same, notice = prepare_image(np.zeros((32, 32, 3), np.uint8), 32)
    assert notice is None
    floats, _ = prepare_image(np.ones((32, 32, 3), np.float32), 32)
    assert floats.max() == 255
    with pytest.raises(ValueError, match="channels"):
        prepare_image(np.zeros((32, 32, 5)), 32)


def test_uploads_that_are_not_images_are_refused():
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(buf, format="PNG")
    assert read_image_bytes(buf.getvalue()).shape == (5, 7, 3)
    with pytest.raises(ValueError, match="Could not read the upload as an image"):
        read_image_bytes(b"%PDF-1.4 not an image")


def test_downsample_bounds_size_and_keeps_mean():
    maps = np.random.default_rng(1).random((3, 112, 112)).astype(np.float32)
    small = downsample(maps, 28)
    assert small.shape == (3, 28, 28)
    np.testing.assert_allclose(small.mean(axis=(1, 2)), maps.mean(axis=(1, 2)), rtol=1e-3)
    assert downsample(maps[:, :7, :7], 28).shape == (3, 7, 7)
    grid = grid_image(small, ncols=2, tile=30, pad=2)
    assert grid.shape == (2 * 32 + 2, 2 * 32 + 2, 3)


def test_backbone_maps_get_coarser_and_see_more_with_depth(shared_assets):
    from tlwidgets.backbones import load_backbone

    with pytest.warns(UserWarning, match="Stand-in"):
        bb = load_backbone("auto", input_size=128)
    acts = Activations.from_backbone(bb)
    image = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    first, last = acts.maps(image, 0), acts.maps(image, -1)
    assert first.map_shape[0] > last.map_shape[0]
    assert first.receptive_field.size < last.receptive_field.size
    assert first.maps.shape[1] <= 48
    assert len(first.maps) == min(16, first.map_shape[-1])


def test_feature_explorer_redraws_and_explains_bad_input():
    """The widget is a view over Activations: drive it from Python as the browser would."""
    from PIL import Image

    from tlwidgets.widgets.feature_explorer import FeatureExplorer

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(6, 3, strides=2, activation="relu", name="c2")(x)
    model = keras.Model(inp, x)
    vertical, horizontal = _edge_images()
    fe = FeatureExplorer(model, {"vertical": vertical, "horizontal": horizontal}, top=4, tile=16)
    assert fe.updates == 1 and fe.payload_bytes > 0
    first = fe.grid_digest
    fe.layer_index = 1
    assert fe.updates == 2 and fe.grid_digest != first and fe.layer == "c2"
    fe.layer_index = 99  # clipped, not an error
    assert fe.layer_index == 1
    fe.image_name = "horizontal"
    assert fe.updates == 3
    fe.mode = "gradcam"  # no classifier given: explained, nothing raised
    assert "needs a classifier" in fe.message and fe.updates == 3
    fe.mode = "activations"
    fe._on_upload({"new": [{"name": "notes.pdf", "content": memoryview(b"%PDF-1.4")}]})
    assert "Could not read the upload" in fe.message
    buf = io.BytesIO()
    Image.fromarray(np.full((10, 20), 90, np.uint8)).save(buf, format="PNG")
    fe._on_upload({"new": [{"name": "grey.png", "content": memoryview(buf.getvalue())}]})
    assert fe.image_name == "upload: grey.png" and "grey" in fe.message
    assert fe.images["upload: grey.png"].shape == (32, 32, 3)
