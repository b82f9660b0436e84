"""Backbones by name, through the asset layer."""

import numpy as np
import pytest

from tlwidgets.backbones import load_backbone, preprocess_input
from tlwidgets.notices import reset


@pytest.fixture(autouse=True)
def _notices_said_afresh():
    reset()  # a notice is said once per process; each test expects its own


def test_auto_falls_back_to_the_fixture_network_with_a_notice(shared_assets):
    with pytest.warns(UserWarning, match="Stand-in"):
        bb = load_backbone("auto", input_size=128)
    assert bb.name == "mobilenet_0.25" and bb.weights == "imagenet"
    assert bb.weights_path.endswith("mobilenet_2_5_224_tf_no_top.h5")
    assert bb.model.output_shape == (None, 4, 4, 256)
    assert "mobilenet-v2-1.0-128-no-top" in bb.notice


def test_random_control_has_the_same_architecture(shared_assets):
    with pytest.warns(UserWarning):
        trained = load_backbone("auto", input_size=128)
        random = load_backbone("auto", input_size=128, weights="random")
    assert random.name == trained.name and random.weights_path is None
    assert random.model.count_params() == trained.model.count_params()
    w_trained, w_random = trained.model.weights[0].numpy(), random.model.weights[0].numpy()
    assert not np.allclose(w_trained, w_random)
    again = load_backbone("auto", input_size=128, weights="random")
    np.testing.assert_array_equal(again.model.weights[0].numpy(), w_random)  # seeded


def test_bad_names_and_sizes_are_explained():
    with pytest.raises(ValueError, match="Unknown backbone 'resnet'"):
        load_backbone("resnet")
    with pytest.raises(ValueError, match="input sizes"):
        load_backbone("mobilenet_0.25", input_size=100)


def test_preprocessing_maps_pixels_to_unit_range():
    out = preprocess_input(np.array([0, 127.5, 255], dtype=np.float32))
    np.testing.assert_allclose(out, [-1, 0, 1])
