"""Activation maximisation raises its target channel, and only its own channel most."""

import numpy as np
import pytest

from tlwidgets.filter_viz import FilterVisualizer, _frequencies, montage, save_png


@pytest.fixture(scope="module")
def backbone(shared_assets):
    import warnings

    from tlwidgets.backbones import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stand-in notice; tested in notebook 00
        return load_backbone("mobilenet_0.25", input_size=128)


@pytest.fixture(scope="module")
def result(backbone):
    viz = FilterVisualizer(backbone.model, "conv_pw_6_relu")
    # Channels that respond to the grey start, but weakly, so "5x the start" has room under
    # the ReLU6 caps of the layers below (a channel already near its ceiling cannot grow 5x).
    start = viz.start_response()
    weak = [int(c) for c in np.argsort(start) if start[c] > 0.25][:3]
    return viz, viz.run(weak, steps=40)


def test_activation_maximisation_raises_the_channel_at_least_fivefold(result):
    viz, res = result
    assert viz.layer == "conv_pw_6_bn"  # the ReLU6's input: not capped at 6
    assert res.images.shape == (3, 128, 128, 3) and res.images.dtype == np.uint8
    # The start is the grey image the parameterisation begins from.
    assert np.all(res.start > 0.25)
    assert np.all(res.end >= 5 * res.start), (res.start, res.end)
    assert res.history[-1] > res.history[0]


def test_each_image_excites_its_own_channel_more_than_a_real_photo_does(result, backbone):
    import skimage.data

    from tlwidgets.activations import Activations, prepare_image

    viz, res = result
    acts = Activations.from_backbone(backbone, [viz.layer])
    photo, _ = prepare_image(skimage.data.astronaut(), 128)
    on_photo = acts.compute(photo)[viz.layer].mean(axis=(0, 1))
    # response[i, c]: mean activation of channel c on the image optimised for channel i.
    response = np.stack([acts.compute(img)[viz.layer].mean(axis=(0, 1)) for img in res.images])
    for i, channel in enumerate(res.channels):
        assert response[i, channel] == pytest.approx(res.end[i], rel=0.05)  # uint8 rounding
        assert response[i, channel] > on_photo[channel]
        # Selective: each channel answers its own image more than the others' images.
        assert response[i, channel] == response[:, channel].max()


def test_fourier_scaling_and_shapes():
    f = _frequencies(8, 8)
    assert f.shape == (8, 5) and f[0, 0] == 0 and f.max() == pytest.approx(np.sqrt(0.5))


def test_bad_requests_are_explained(backbone):
    with pytest.raises(ValueError, match="channels"):
        FilterVisualizer(backbone.model, "conv_pw_1_relu").run([999], steps=1)
    with pytest.raises(ValueError, match="128 px"):
        FilterVisualizer(backbone.model, "conv_pw_1_relu", size=64)


def test_montage_and_png(tmp_path):
    imgs = np.zeros((5, 8, 8, 3), np.uint8)
    grid = montage(imgs, ncols=3, pad=1)
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1, 3)
    save_png(grid, tmp_path / "sub" / "g.png")
    assert (tmp_path / "sub" / "g.png").stat().st_size > 0


def test_a_base_behind_raw_preprocessing_ops(backbone):
    """The tutorial's wrapper: ``x / 127.5 - 1`` as graph operations, then the base."""
    import keras

    inp = keras.Input(backbone.model.inputs[0].shape[1:])
    wrapped = keras.Model(inp, backbone.model(inp / 127.5 - 1.0, training=False))
    path = f"{backbone.model.name}/conv_pw_6_relu"
    viz = FilterVisualizer(wrapped, path, value_range=(0.0, 255.0))
    assert viz.layer == f"{backbone.model.name}/conv_pw_6_bn"
    plain = FilterVisualizer(backbone.model, "conv_pw_6_relu", value_range=(-1.0, 1.0))
    # Same images, same objective: [0, 255] through the wrapper is [-1, 1] for the base.
    np.testing.assert_allclose(viz.start_response(), plain.start_response(), rtol=1e-4, atol=1e-4)
