"""Notebook 06's methods: HOG, the Keras regimes, the crossover and learners' folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tlwidgets import transfer_regimes as tr
from tlwidgets.curves import compare_learning_curves


def stripes(n, vertical, size=32, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        period = rng.integers(3, 6)
        line = ((np.arange(size) // period) % 2 * 200 + 20).astype(np.uint8)
        x[i] = (line[None, :, None] if vertical else line[:, None, None])
    return x


def test_hog_tells_vertical_from_horizontal_stripes():
    from sklearn.svm import LinearSVC

    x = np.concatenate([stripes(10, True), stripes(10, False, seed=1)])
    y = np.repeat([0, 1], 10)
    f = tr.hog_features(x, 32)
    assert f.shape == (20, 9 * 2 * 2 * 3 * 3) and f.dtype == np.float32
    assert LinearSVC().fit(f[::2], y[::2]).score(f[1::2], y[1::2]) == 1.0


def test_compare_learning_curves_runs_extra_methods_on_the_same_draws():
    x = np.random.default_rng(0).normal(size=(40, 5))
    y = np.repeat([0, 1], 20)
    x[y == 1] += 2
    seen = []

    def extra(draw):
        seen.append(draw.index.copy())
        return {"accuracy": 0.5, "roc_auc": 0.5}

    rows = compare_learning_curves(features=(x, x), hog=(x, x), y_train=y, y_test=y,
                                   sizes=(5,), repeats=2, methods=["HOG + linear SVM", "mine"],
                                   extra={"mine": extra}, scoring=("accuracy", "roc_auc"))
    assert {(r["method"], r["metric"]) for r in rows} == {
        (m, k) for m in ("HOG + linear SVM", "mine") for k in ("accuracy", "roc_auc")}
    assert len(seen) == 2 and all(len(s) == 10 for s in seen)
    with pytest.raises(ValueError, match="need their inputs"):
        compare_learning_curves(y_train=y, y_test=y, methods=["HOG + linear SVM"])
    with pytest.raises(ValueError, match="Unknown methods"):
        compare_learning_curves(features=(x, x), y_train=y, y_test=y, methods=["nope"])


# --------------------------------------------------------------------------- Keras regimes

@pytest.fixture(scope="module")
def tiny():
    """A small conv base with BatchNormalization, at 32 px, and stripe images."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = inp
    for i, filters in enumerate((4, 8, 8)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"conv{i}_bn")(x)
        x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
    base = keras.Model(inp, x, name="tiny_base")
    images = np.concatenate([stripes(12, True), stripes(12, False, seed=1)])
    labels = np.repeat([0, 1], 12)
    feats = keras.layers.GlobalAveragePooling2D()(base(images.astype("float32"))).numpy()
    return base, images, labels, feats


def _draw(labels, per_class=4, seed=0):
    from tlwidgets.learning_curves import PerClass

    return PerClass(labels).draw(per_class, seed)


SETTINGS = tr.RegimeSettings(image_passes=8, min_epochs=1, max_epochs=2, batch_size=4,
                             augment=False, run_eagerly=True)


def test_frozen_regime_keeps_the_base_bit_for_bit_and_resets_between_draws(tiny):
    base, x, y, _ = tiny
    method = tr.KerasRegime("frozen", base, x, y, x, y, settings=SETTINGS)
    scores = method(_draw(y))
    assert set(scores) == {"accuracy", "roc_auc"} and 0 <= scores["accuracy"] <= 1
    copy = method.model_.get_layer(base.name)
    for w, w0 in zip(copy.get_weights(), base.get_weights(), strict=True):
        np.testing.assert_array_equal(w, w0)  # frozen: not one bit moved
    head = method.model_.get_layer("head").get_weights()[0]
    assert not np.array_equal(head, method._start[-2])  # the head trained
    method._reset()
    np.testing.assert_array_equal(method.model_.get_layer("head").get_weights()[0], method._start[-2])
    assert int(method.model_.optimizer.iterations.numpy()) == 0
    assert float(method.model_.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)


def test_top_regime_trains_only_the_top_and_keeps_batchnorm_statistics(tiny):
    base, x, y, _ = tiny
    method = tr.KerasRegime("top", base, x, y, x, y,
                            settings=tr.RegimeSettings(**{**SETTINGS.__dict__, "top_blocks": 1}))
    method(_draw(y))
    copy = method.model_.get_layer(base.name)
    np.testing.assert_array_equal(copy.get_layer("conv0").get_weights()[0],
                                  base.get_layer("conv0").get_weights()[0])
    assert not np.array_equal(copy.get_layer("conv2").get_weights()[0],
                              base.get_layer("conv2").get_weights()[0])
    for bn in ("conv0_bn", "conv2_bn"):  # moving statistics untouched (BN frozen)
        np.testing.assert_array_equal(copy.get_layer(bn).get_weights()[2],
                                      base.get_layer(bn).get_weights()[2])


def test_lp_ft_starts_from_the_linear_probe(tiny):
    from sklearn.linear_model import LogisticRegression

    base, x, y, feats = tiny
    method = tr.KerasRegime("lp-ft", base, x, y, x, y, settings=SETTINGS, features_train=feats)
    method._build()
    idx = np.arange(len(y))
    method._linear_probe(idx)
    logits = method.model_.predict(x, verbose=0)
    probe = LogisticRegression(max_iter=3000).fit(feats, y)
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], probe.decision_function(feats),
                               rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="features_train"):
        tr.KerasRegime("lp-ft", base, x, y, x, y)
    with pytest.raises(ValueError, match="Unknown regime"):
        tr.KerasRegime("sideways", base, x, y, x, y)


def test_lp_ft_and_all_layers_share_one_compiled_model_with_their_own_heads(tiny):
    base, x, y, feats = tiny
    regimes = {}
    domain = tr.DomainData("d", ["a", "b"], y, y, x, x, feats, feats, feats, feats, feats,
                           feats, x, x)
    tr.domain_curves(domain, ["fine-tune all layers", "LP-FT"], [4], backbone=base, repeats=1,
                     settings=SETTINGS, regimes=regimes)
    lp_ft, all_layers = regimes["LP-FT"], regimes["fine-tune all layers"]
    assert lp_ft.model_ is all_layers.model_ and lp_ft._start is all_layers._start
    all_layers._reset()  # the shared start is the random head, not LP-FT's probe
    np.testing.assert_array_equal(all_layers._head.get_weights()[0], all_layers._start[-2])
    with pytest.raises(ValueError, match="share a model"):
        tr.KerasRegime("top", base, x, y, x, y, settings=SETTINGS, like=all_layers)


def test_random_init_reestimates_batchnorm_statistics_after_training(tiny):
    import keras

    base, x, y, _ = tiny
    random_base = keras.models.clone_model(base)  # fresh weights: moving mean 0, variance 1
    method = tr.KerasRegime("random", random_base, x, y, x, y, settings=SETTINGS)
    draw = _draw(y)
    method(draw)
    bn = method.model_.get_layer(base.name).get_layer("conv0_bn")
    assert bn.momentum == pytest.approx(0.99)  # restored after the pass
    conv = keras.Model(method.model_.get_layer(base.name).inputs,
                       method.model_.get_layer(base.name).get_layer("conv0").output)
    pre = conv(x[np.sort(draw.index)].astype("float32")).numpy()  # (the base's input: raw)
    mean = pre.reshape(-1, pre.shape[-1]).mean(axis=0)
    np.testing.assert_allclose(bn.moving_mean.numpy(), mean, rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------- crossover

def rows_for(curves, domain="d", repeats=2):
    """Records with scores ``curves[method][size]`` (+-0.01 between repeats)."""
    out = []
    for method, by in curves.items():
        for size, score in by.items():
            for rep in range(repeats if size is not None else 1):
                out.append({"domain": domain, "method": method, "size": size,
                            "size_unit": "labelled images per class", "n_train": 2 * (size or 50),
                            "n_classes": 2, "repeat": rep, "seed": rep, "metric": "accuracy",
                            "score": score + (0.01 if rep else -0.01), "seconds": 0.0})
    return out


def test_crossover_is_the_first_size_from_which_fine_tuning_stays_ahead():
    rows = rows_for({"featuriser + logistic regression": {10: 0.8, 100: 0.8, 1000: 0.8},
                     "featuriser + linear SVM": {10: 0.75, 100: 0.82, 1000: 0.79},
                     "fine-tune all layers": {10: 0.85, 100: 0.7, 1000: 0.9},
                     "LP-FT": {10: 0.6, 100: 0.81, 1000: 0.88}})
    result = tr.crossover(rows)["d"]
    assert result["size"] == 1000 and result["in_range"]  # 10 wins, 100 loses: not "from 10"
    assert result["gap"] == pytest.approx(0.1) and result["spread"] > 0
    assert result["per_repeat"] == [1000, 1000]
    assert result["gaps"]["100"]["featuriser"] == "featuriser + linear SVM"
    text = tr.crossover_sentence(result)
    assert "from 1000 labelled images per class on" in text and "+0.100" in text
    assert "spread ±" in text  # two repeats there


def test_crossover_not_in_range_and_bad_records():
    rows = rows_for({"featuriser + linear SVM": {10: 0.9, None: 0.95},
                     "fine-tune all layers": {10: 0.5, None: 0.94}})
    result = tr.crossover(rows)["d"]
    assert result["size"] is None and not result["in_range"]
    text = tr.crossover_sentence(result)
    assert "does not overtake" in text
    assert "one run there: no spread measured" in text and "±" not in text  # all: one run
    with pytest.raises(ValueError, match="no size has both"):
        tr.crossover(rows_for({"featuriser + linear SVM": {10: 0.9}}))


# --------------------------------------------------------------------------- learners' folders

def make_folder(root, counts, *, size=(40, 30), mode="RGB", sizes=None):
    for c, n in counts.items():
        (root / c).mkdir(parents=True)
        for i in range(n):
            s = sizes[i % len(sizes)] if sizes else size
            Image.new(mode, s, color=(i * 10) % 255 if mode == "L" else (i, 50, 100)).save(
                root / c / f"{i}.png")
    return root


def test_learner_folder_checked_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="one class folder"):
        tr.learner_domain(make_folder(tmp_path / "a", {"cats": 9}), image_size=32, smallest_size=3)
    with pytest.raises(ValueError, match="hold no images"):
        tr.learner_domain(make_folder(tmp_path / "b", {"cats": 9, "dogs": 0}), image_size=32,
                          smallest_size=3)
    with pytest.raises(ValueError, match="needs at least 6 images.*'dogs' has 4"):
        tr.learner_domain(make_folder(tmp_path / "c", {"cats": 9, "dogs": 4}), image_size=32,
                          smallest_size=3)
    with pytest.raises(FileNotFoundError):
        tr.learner_domain(tmp_path / "nothing", image_size=32, smallest_size=3)


def test_learner_folder_mixed_sizes_and_grey_images_are_said(tmp_path):
    root = make_folder(tmp_path / "m", {"a": 10, "b": 10}, mode="L", sizes=[(40, 30), (20, 20)])
    train, test, notices = tr.learner_domain(root, image_size=32, smallest_size=3)
    assert train.images.shape[1:] == (32, 32, 3) and len(train) + len(test) == 20
    assert np.bincount(test.labels).tolist() == [3, 3]
    assert any("different sizes" in n for n in notices) and any("grey" in n for n in notices)


# --------------------------------------------------------------------------- self-checks

def test_exercise_06_1_wants_the_auc_crossover_of_the_same_records():
    from tlwidgets.exercises import check

    rows = rows_for({"featuriser + linear SVM": {10: 0.8, 100: 0.8},
                     "fine-tune all layers": {10: 0.7, 100: 0.9}})
    auc = [{**r, "metric": "roc_auc"} for r in rows]
    assert check("06-1", tr.crossover(auc, metric="roc_auc")["d"], rows=auc)
    wrong = check("06-1", tr.crossover(rows)["d"], rows=auc)
    assert not wrong and "roc_auc" in wrong.message
    assert not check("06-1", 100, rows=auc)


def test_exercise_06_2_wants_the_top_two_blocks_with_batchnorm_frozen(tiny):
    from tlwidgets import freezing, training
    from tlwidgets.exercises import check

    base = tiny[0]
    model = training.build_classifier(base, 2)
    freezing.unfreeze_top(model, 2, train_bn=False)
    assert check("06-2", model)
    freezing.unfreeze_top(model, 1, train_bn=False)
    assert "top two" in check("06-2", model).message
    freezing.unfreeze_top(model, 2, train_bn=True)
    assert "BatchNormalization" in check("06-2", model).message


def test_one_network_at_a_time_groups_the_regimes_that_share_a_model():
    trained = [*tr.KERAS_REGIMES, "small CNN from scratch"]
    assert tr.one_network_at_a_time(trained) == [
        ["frozen base + new head"], ["LP-FT", "fine-tune all layers"], ["fine-tune top blocks"],
        ["same network, random init"], ["small CNN from scratch"]]
    assert tr.one_network_at_a_time(["fine-tune all layers", "HOG + linear SVM"]) == [
        ["fine-tune all layers"], ["HOG + linear SVM"]]
    assert tr.one_network_at_a_time(["small CNN from scratch"]) == [["small CNN from scratch"]]
