"""Learning curves, the depth sweep, ProbeLab and the FeaturiserExplorer driven from Python."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tlwidgets.curves import (
    ProbeLab,
    SmallCNN,
    compare_learning_curves,
    depth_sweep,
    learning_curve,
    make_classifier,
    per_class_indices,
    pixel_features,
    summarise_curves,
)


@pytest.fixture(scope="module")
def small_split(shared_assets):
    from tlwidgets.data import load_hymenoptera

    return (load_hymenoptera("train", image_size=224, per_class=8),
            load_hymenoptera("val", image_size=224, per_class=6))


def test_per_class_indices_and_pixels():
    y = np.array([0] * 10 + [1] * 4)
    idx = per_class_indices(y, 3, seed=1)
    assert np.bincount(y[idx]).tolist() == [3, 3] and list(idx) == sorted(idx)
    assert len(per_class_indices(y, None)) == 14
    assert np.bincount(y[per_class_indices(y, 7)]).tolist() == [7, 4]
    imgs = np.full((2, 40, 40, 3), 255, np.uint8)
    px = pixel_features(imgs, 8)
    assert px.shape == (2, 8 * 8 * 3) and px.max() == 1.0


def test_learning_curve_rows():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    x = rng.normal(size=(60, 5)) + 3 * y[:, None]
    rows = learning_curve(lambda: make_classifier("logistic regression"), x, y, x, y,
                          sizes=(2, 5, 100, None), repeats=3, method="lr")
    # 100 per class is more than there is: it becomes "all", measured once.
    assert [r["per_class"] for r in rows] == [2, 5, None]
    assert [r["n_train"] for r in rows] == [4, 10, 60]
    assert len(rows[0]["accuracies"]) == 3 and len(rows[2]["accuracies"]) == 1
    assert rows[-1]["accuracy"] == 1.0
    assert summarise_curves(rows)["lr"]["5"] == round(rows[1]["accuracy"], 4)


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
    assert all(set(a) == {"2", "all"} for a in acc.values())
    assert acc["featuriser + logistic regression"]["all"] >= 0.75


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
        ex = FeaturiserExplorer({"ants/bees": lab}, sizes=(2, 0), curve_repeats=1)
    assert ex.updates == 1 and ex.layer == "conv_pw_13_relu"
    assert ex.n_train == 16 and ex.feature_dim == 256 and ex.raw_dim == 224 * 224 * 3
    assert bytes(ex._figure.value[:4]) == b"\x89PNG"
    assert "test accuracy" in ex._summary.value and "Stand-in" in ex._summary.value
    full = ex.accuracy
    ex.per_class = 2
    assert ex.updates == 2 and ex.n_train == 4 and ex._size.value == 2
    ex._classifier.value = "linear SVM"  # the control moves the trait
    assert ex.classifier == "linear SVM" and ex.updates == 3
    ex.layer = lab.layers()[0]
    assert ex.feature_dim == 8 and ex._layer.value == lab.layers()[0]
    ex.per_class = 0
    ex.classifier = "logistic regression"
    ex.layer = "conv_pw_13_relu"
    assert ex.accuracy == pytest.approx(full)
    # Random weights: the layer choice is kept, the features change.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex.backbone = "auto/random"
    assert ex.layer == "conv_pw_13_relu" and "random" in ex.description
