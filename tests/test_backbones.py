"""Backbones by name, through the asset layer."""

import warnings

import numpy as np
import pytest

from tlwidgets import notices
from tlwidgets.backbones import load_backbone, preprocess_input
from tlwidgets.notices import reset


@pytest.fixture(autouse=True)
def _notices_said_afresh():
    reset()  # a notice is said once per process; each test expects its own


def test_auto_falls_back_to_the_fixture_network_with_a_notice(shared_assets):
    notices.reset()
    with pytest.warns(notices.Notice, match="Stand-in") as said:
        bb = load_backbone("auto", input_size=128)
    assert len(said) == 1  # said once, through the notice channel (not printed and warned)
    assert bb.name == "mobilenet_0.25" and bb.weights == "imagenet"
    assert bb.weights_path.endswith("mobilenet_2_5_224_tf_no_top.h5")
    assert bb.model.output_shape == (None, 4, 4, 256)
    assert "mobilenet-v2-1.0-128-no-top" in bb.notice
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        assert load_backbone("auto", input_size=128).notice == bb.notice
    assert not [w for w in again if issubclass(w.category, notices.Notice)]


def test_the_stand_in_keeps_the_asked_size_in_one_notice(shared_assets):
    notices.reset()
    with pytest.warns(notices.Notice, match="Stand-in") as said:
        bb = load_backbone("auto", input_size=96, weights="random")
    assert len(said) == 1 and bb.input_size == 96 and bb.name == "mobilenet_0.25"
    assert bb.model.input_shape == (None, 96, 96, 3)


def test_mobilenet_025_takes_small_inputs_with_its_imagenet_weights(shared_assets):
    small = load_backbone("mobilenet_0.25", input_size=64)
    usual = load_backbone("mobilenet_0.25", input_size=128)
    assert small.model.input_shape == (None, 64, 64, 3)
    for a, b in zip(small.model.get_weights(), usual.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # one weights file for every size
    with pytest.raises(ValueError, match="takes input sizes"):
        load_backbone("mobilenet_0.25", input_size=20)


def test_random_control_has_the_same_architecture(shared_assets):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", notices.Notice)
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
