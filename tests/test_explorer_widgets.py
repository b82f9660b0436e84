"""Widgets open clean and tell the truth: LayerFreezer, FeatureExplorer, FeaturiserExplorer."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest


def _conv_model():
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(6, 3, strides=2, activation="relu", name="c2")(x)
    return keras.Model(inp, x, name="convs")


def test_layer_freezer_opens_without_an_error():
    from tlwidgets.widgets.layer_freezer import LayerFreezer

    model = _conv_model()
    clf = keras.Model(model.input, keras.layers.Dense(2, name="head")(
        keras.layers.GlobalAveragePooling2D()(model.output)))
    for train_bn in (False, True):
        w = LayerFreezer(clf, train_bn=train_bn)
        assert w.error == "" and w.changes == 0
        assert len(w.trainable) == len(w.blocks) > 0
    w.trainable = [True]  # a wrong length is still reported
    assert w.error.startswith("Expected")


def test_feature_explorer_status_busy_message_and_stable_size():
    from tlwidgets.widgets.feature_explorer import FeatureExplorer

    model = _conv_model()
    inp = keras.Input((32, 32, 3))
    clf = keras.Model(inp, keras.layers.Dense(2, name="head")(
        keras.layers.GlobalAveragePooling2D()(model(inp))))
    rng = np.random.default_rng(0)
    images = {"noise with a long descriptive name": rng.integers(0, 255, (32, 32, 3), np.uint8),
              "other": rng.integers(0, 255, (32, 32, 3), np.uint8)}
    fe = FeatureExplorer(model, images, classifier=clf, class_names=["a", "b"], top=4, tile=16,
                         filter_steps=2, filter_count=2)
    box = (fe._grid.layout.width, fe._grid.layout.height)
    said = []
    fe.observe(lambda ch: said.append(ch["new"]), "message")
    fe.mode = "filters"
    assert said[-2] == "Optimising images for this layer's channels…"  # before the work
    assert said[-1].startswith("Filters: 2 steps in")
    fe.mode = "gradcam"
    assert "" in said[-3:]  # the filters' status is cleared by the mode change
    assert said[-2] == "Computing Grad-CAM for this layer…"
    assert fe.message == "" and fe.updates == 3  # done: the busy line goes (time: info line)
    assert " ms compute" in fe._info.value
    assert "Grad-CAM for <b>" in fe._info.value
    fe.mode = "activations"
    assert fe.message == ""  # no stale timing in another mode
    assert (fe._grid.layout.width, fe._grid.layout.height) == box  # one size for every mode
    assert fe._grid.layout.object_fit == "scale-down"
    assert fe._image.layout.width == "max-content"  # long image names are not cut off


@pytest.fixture(scope="module")
def probe_lab(shared_assets):
    from tlwidgets.data import load_hymenoptera
    from tlwidgets.widgets.probe_lab import ProbeLab

    train = load_hymenoptera("train", image_size=224, per_class=6)
    val = load_hymenoptera("val", image_size=224, per_class=4)
    return ProbeLab(train.images, train.labels, val.images, val.labels,
                    class_names=train.class_names, n_layers=3)


def test_featuriser_explorer_describes_the_current_choice(probe_lab):
    from tlwidgets.widgets.featuriser_explorer import FeaturiserExplorer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex = FeaturiserExplorer({"ants/bees": probe_lab}, sizes=(2, None), curve_repeats=1)
    assert f"cut at {ex.layer}" in ex.description and "256 features" in ex.description
    assert "ImageNet-pretrained weights" in ex.description
    shallow = probe_lab.layers()[0]
    ex.layer = shallow
    assert f"cut at {shallow}" in ex.description and f"{ex.feature_dim:,} features" in ex.description
    assert "256 features" not in ex.description
    assert ex.description in ex._summary.value.replace("&gt;", ">")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex.backbone = "auto/random"
    assert "random (untrained) weights" in ex.description and "ImageNet" not in ex.description
