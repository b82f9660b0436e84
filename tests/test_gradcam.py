"""Grad-CAM and saliency point at the region the label depends on, nested base or not.

The models are set by hand so that the right answer is known: class 0 is "red
in the top-left quadrant", class 1 is "green anywhere".
"""

import keras
import numpy as np
import pytest

from tlwidgets.gradcam import GradCAM, overlay, saliency

SIZE = 16


def _base(residual: bool = False):
    inp = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="detect")
    out = conv(inp)
    kernel = np.array([[1, -1], [-1, 1], [-1, -1]], np.float32)  # ch0: red, ch1: green
    conv.set_weights([kernel.reshape(1, 1, 3, 2)])
    if residual:  # a branch that adds zero: same function, but the graph is not a chain
        zero = keras.layers.Conv2D(2, 1, kernel_initializer="zeros", name="zero")(out)
        out = keras.layers.Add(name="res")([out, zero])
    return keras.Model(inp, out, name="base")


def _head():
    dense = keras.layers.Dense(2, name="head")
    dense.build((None, SIZE * SIZE * 2))
    w = np.zeros((SIZE, SIZE, 2, 2), np.float32)
    w[: SIZE // 2, : SIZE // 2, 0, 0] = 1.0  # class 0 reads red in the top-left quadrant only
    w[:, :, 1, 1] = 0.25  # class 1 reads green everywhere
    dense.set_weights([w.reshape(-1, 2), np.zeros(2, np.float32)])
    return dense


def _flat():
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="detect")(inp)
    model = keras.Model(inp, _head()(keras.layers.Flatten(name="flat")(x)), name="flat_clf")
    model.get_layer("detect").set_weights(_base().get_layer("detect").get_weights())
    return model


def _nested(residual: bool = False):
    """Preprocessing layer, then the base as one nested layer, then the head."""
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255, name="scale")(inp)
    x = _base(residual)(x)
    return keras.Model(inp, _head()(keras.layers.Flatten(name="flat")(x)), name="nested_clf")


def _scene():
    """Red square top-left, green square bottom-right, black elsewhere (uint8)."""
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[2:6, 2:6] = (255, 0, 0)
    img[10:14, 10:14] = (0, 255, 0)
    return img


def _quadrant_share(heat, rows, cols):
    return heat[rows, cols].sum() / heat.sum()


TOP_LEFT = (slice(0, SIZE // 2), slice(0, SIZE // 2))
BOTTOM_RIGHT = (slice(SIZE // 2, None), slice(SIZE // 2, None))


@pytest.mark.parametrize("nested", [False, True])
def test_gradcam_highlights_the_region_each_class_depends_on(nested):
    model = _nested() if nested else _flat()
    layer = "base/detect" if nested else "detect"
    scale = 1.0 if nested else 1 / 255
    cam = GradCAM(model, layer, preprocess=None if nested else (lambda x: x * scale))
    image = _scene()
    red = cam(image, class_index=0)
    assert red.heatmaps.shape == (1, SIZE, SIZE)
    assert _quadrant_share(red.heatmaps[0], *TOP_LEFT) > 0.9
    green = cam(image, class_index=1)
    assert _quadrant_share(green.heatmaps[0], *BOTTOM_RIGHT) > 0.9
    # With no class given, it explains the top class: red (16 px x 1.0 > 16 px x 0.25).
    top = cam(image)
    assert top.class_index.tolist() == [0]
    np.testing.assert_allclose(top.heatmaps, red.heatmaps, atol=1e-6)


def test_nested_and_flat_gradcam_agree():
    image = _scene()
    nested = GradCAM(_nested(), "detect")(image, 0)  # unique name inside the nested base
    flat = GradCAM(_flat(), "detect", preprocess=lambda x: x / 255)(image, 0)
    np.testing.assert_allclose(nested.heatmaps, flat.heatmaps, atol=1e-5)


@pytest.mark.parametrize("layer", ["base/detect", "base/res"])
def test_gradcam_inside_a_nested_residual_base(layer):
    """Like MobileNetV2 in a classifier: the base branches, so it cannot be walked layer by layer."""
    image = _scene()
    nested = GradCAM(_nested(residual=True), layer)(image, 0)
    assert _quadrant_share(nested.heatmaps[0], *TOP_LEFT) > 0.9
    flat = GradCAM(_flat(), "detect", preprocess=lambda x: x / 255)(image, 0)
    np.testing.assert_allclose(nested.heatmaps, flat.heatmaps, atol=1e-5)


def test_gradcam_through_raw_ops_and_a_raw_output():
    """The tutorial's wrapper: preprocessing arithmetic on the input (graph operations that
    are not layers), the base, and class scores that end in a raw op."""
    inp = keras.Input((SIZE, SIZE, 3))
    x = _base()(keras.ops.divide(inp, 255.0))
    logits = _head()(keras.layers.Flatten(name="flat")(x))
    model = keras.Model(inp, logits * 2.0, name="raw_clf")
    image = _scene()
    raw = GradCAM(model, "base/detect")(image, 0)
    flat = GradCAM(_flat(), "detect", preprocess=lambda x: x / 255)(image, 0)
    np.testing.assert_allclose(raw.heatmaps, flat.heatmaps, atol=1e-5)
    np.testing.assert_allclose(raw.scores, 2 * flat.scores, rtol=1e-5, atol=1e-5)


def test_saliency_is_confined_to_the_region_the_label_reads():
    image = _scene()
    image[10:14, 2:6] = (255, 0, 0)  # a second red square, bottom-left: class 0 ignores it
    sal = saliency(_nested(), image, class_index=0)[0]
    assert _quadrant_share(sal, *TOP_LEFT) > 0.99
    smooth = saliency(_nested(), image, class_index=0, samples=8, noise=0.05)[0]
    assert _quadrant_share(smooth, *TOP_LEFT) > 0.9


def test_bad_layers_and_inputs_are_explained():
    model = _nested()
    with pytest.raises(ValueError, match="convolutional layer"):
        GradCAM(model, "flat")
    with pytest.raises(ValueError, match="Expected an image"):
        GradCAM(model, "base/detect")(np.zeros((SIZE, SIZE)))


def test_overlay_blends_heatmap_over_image():
    image = np.full((4, 4, 3), 100, np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    out = overlay(image, heat, alpha=0.5)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out[0, 0], out[3, 3])
