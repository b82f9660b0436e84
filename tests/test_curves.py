"""Notebook 01's curves and depth sweep, ProbeLab and the FeaturiserExplorer driven from Python."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tlwidgets.curves import (
    SmallCNN,
    compare_learning_curves,
    depth_sweep,
    pixel_features,
)
from tlwidgets.learning_curves import summarise_curves
from tlwidgets.widgets.probe_lab import ProbeLab


@pytest.fixture(scope="module")
def small_split(shared_assets):
    from tlwidgets.data import load_hymenoptera

    return (load_hymenoptera("train", image_size=224, per_class=8),
            load_hymenoptera("val", image_size=224, per_class=6))


def test_pixel_features():
    imgs = np.full((2, 40, 40, 3), 255, np.uint8)
    px = pixel_features(imgs, 8)
    assert px.shape == (2, 8 * 8 * 3) and px.max() == 1.0


def test_compare_learning_curves_and_small_cnn(small_split):
    from tlwidgets.featurize import Featuriser

    train, val = small_split
    f = Featuriser("auto", progress=False)
    rows = compare_learning_curves(
        features=(f.transform(train.images), f.transform(val.images)),
        pixels=(pixel_features(train.images, 16), pixel_features(val.images, 16)),
        images=(train.images[:, ::7, ::7], val.images[:, ::7, ::7]),
        y_train=train.labels, y_test=val.labels, sizes=(2, None), repeats=1,
        cnn_image_passes=64)
    acc = summarise_curves(rows)
    assert set(acc) == {"pixels + logistic regression", "small CNN from scratch",
                        "featuriser + logistic regression", "featuriser + linear SVM"}
    assert all(list(a) == [2, None] for a in acc.values())
    assert acc["featuriser + logistic regression"][None]["mean"] >= 0.75
    with pytest.raises(ValueError, match="Unknown methods"):
        compare_learning_curves(features=(1, 2), pixels=(1, 2), images=(1, 2), y_train=[0, 1],
                                y_test=[0, 1], methods=("HOG",))


def test_small_cnn_epochs_follow_the_budget():
    x = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    y = np.arange(8) % 2
    cnn = SmallCNN(image_passes=400, max_epochs=30, seed=0).fit(x, y)
    assert cnn.epochs_ == 30  # 400 / 8 = 50, capped
    assert SmallCNN(image_passes=16, seed=0).fit(x, y).epochs_ == 15  # at least min_epochs
    assert set(cnn.predict(x)) <= {0, 1} and cnn.predict_proba(x).shape == (8, 2)


def test_depth_sweep_goes_shallow_to_deep(small_split):
    from tlwidgets.featurize import Featuriser

    train, val = small_split
    rows = depth_sweep(Featuriser("auto", progress=False), train.images, train.labels,
                       val.images, val.labels, n_layers=3)
    assert [r["layer"] for r in rows][-1] == "conv_pw_13_relu"
    assert [r["position"] for r in rows] == sorted(r["position"] for r in rows)
    assert rows[-1]["position"] == 1.0 and rows[-1]["dim"] == 256
    assert rows[-1]["accuracy"] > rows[0]["accuracy"]


def test_explorer_traits_drive_the_view(small_split):
    from tlwidgets.widgets.featuriser_explorer import FeaturiserExplorer

    train, val = small_split
    lab = ProbeLab(train.images, train.labels, val.images, val.labels,
                   class_names=train.class_names, n_layers=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex = FeaturiserExplorer({"ants/bees": lab}, sizes=(2, None), curve_repeats=1)
    assert ex.updates == 1 and ex.layer == "conv_pw_13_relu"
    assert ex.n_train == 16 and ex.feature_dim == 256 and ex.raw_dim == 224 * 224 * 3
    assert bytes(ex._figure.value[:4]) == b"\x89PNG"
    assert "test accuracy" in ex._summary.value and "Stand-in" in ex._summary.value
    full = ex.accuracy
    ex.per_class = 2
    assert ex.updates == 2 and ex.n_train == 4 and ex._size.value == "2"
    ex._classifier.value = "linear SVM"  # the control moves the trait
    assert ex.classifier == "linear SVM" and ex.updates == 3
    ex.layer = lab.layers()[0]
    assert ex.feature_dim == 8 and ex._layer.value == lab.layers()[0]
    ex.per_class = None
    ex.classifier = "logistic regression"
    ex.layer = "conv_pw_13_relu"
    assert ex.accuracy == pytest.approx(full)
    # Random weights: the layer choice is kept, the features change.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex.backbone = "auto/random"
    assert ex.layer == "conv_pw_13_relu" and "random" in ex.description
    # The lab's curve is the one learning curve: same records, same size rule.
    rows = lab.curve(sizes=(2, 100), repeats=2, classifier="linear SVM")
    assert [(r["method"], r["size"], r["n_train"]) for r in rows] == [
        ("linear SVM", 2, 4), ("linear SVM", 2, 4), ("linear SVM", None, 16)]
    assert rows[-1]["score"] == pytest.approx(lab.evaluate(classifier="linear SVM")["accuracy"])
