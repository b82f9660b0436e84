"""Unlabelled pretraining (autoencoders) and the comparison of starts on the X-rays."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tlwidgets import autoencoders as ae
from tlwidgets import unlabelled_pretraining as up
from tlwidgets.images import ImageError
from tlwidgets.learning_curves import PerClass, learning_curve


@pytest.fixture(scope="module")
def xrays():
    from tlwidgets.data import load_pneumoniamnist

    train = load_pneumoniamnist("train", rgb=False, per_class=24, seed=0)
    test = load_pneumoniamnist("test", rgb=False, per_class=12, seed=0)
    return train.images, train.labels, test.images, test.labels


def test_each_greedy_stage_trains_only_its_new_pair_and_leaves_the_layers_below_unchanged(xrays):
    x = xrays[0]
    first, _ = ae.train_next_layer(None, x, 4, epochs=1, seed=0)
    before = [w.copy() for w in first.layers[0].get_weights()]
    stage, conv = ae.layerwise_stage(first, 6, (28, 28, 1))
    trainable = {id(v) for v in stage.trainable_weights}
    assert trainable == {id(v) for v in conv.trainable_weights + stage.layers[-1].trainable_weights}
    second, losses = ae.train_next_layer(first, x, 6, epochs=2, seed=0)
    assert second.layers[0] is first.layers[0]
    for w, w0 in zip(second.layers[0].get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, w0)
    assert [layer.name for layer in second.layers] == ["encoder_conv1", "encoder_conv2"]
    assert second.output_shape == (None, 7, 7, 6)
    assert second.trainable and all(layer.trainable for layer in second.layers)
    assert len(losses) == 2


def test_layerwise_and_end_to_end_reconstruction_losses_fall(xrays):
    x = xrays[0]
    log = []
    enc = up.pretrain_layerwise(x, filters=(4, 8), epochs_per_layer=4, seed=0,
                                progress=log.append)
    assert enc.output_shape == (None, 7, 7, 8)
    for stage in ("layer 1", "layer 2"):
        losses = [r["loss"] for r in log if r["stage"] == stage]
        assert len(losses) == 4 and losses[-1] < losses[0]
    log = []
    enc = up.pretrain_end_to_end(x, filters=(4, 8), epochs=4, seed=0, progress=log.append)
    assert enc.output_shape == (None, 7, 7, 8)
    assert log[-1]["loss"] < log[0]["loss"]


def test_reconstruct_pretrain_trains_the_encoder_itself(xrays):
    x = xrays[0]
    enc = ae.random_encoder((28, 28, 1), filters=(4, 8), seed=1)
    before = [w.copy() for w in enc.get_weights()]
    log = []
    out = up.reconstruct_pretrain(enc, x, epochs=3, decoder_epochs=1, lr=1e-3,
                                  progress=log.append)
    assert out is enc
    assert [r["stage"] for r in log] == ["decoder"] + ["encoder and decoder"] * 3
    joint = [r["loss"] for r in log[1:]]
    assert joint[-1] < joint[0]
    assert any(not np.array_equal(a, b) for a, b in zip(enc.get_weights(), before, strict=True))


def test_the_comparison_gives_learning_curve_records_with_the_random_start_always_in(xrays):
    xtr, ytr, xte, yte = xrays
    rows = up.compare_pretraining(xtr, ytr, xte, yte, sizes=(3, None), repeats=2,
                                  profile="smoke", sources=["autoencoder, layer by layer"],
                                  finetune_steps=2)
    plain = learning_curve({"m": lambda d: 0.5}, PerClass(ytr), (3,), repeats=1)[0]
    for r in rows:
        assert set(plain) <= set(r) and 0.0 <= r["score"] <= 1.0
        assert r["size_unit"] == "labelled images per class"
    methods = list(dict.fromkeys(r["method"] for r in rows))
    assert methods == ["pixels + logistic regression",
                       "random (small encoder) + logistic regression",
                       "random (small encoder), fine-tuned",
                       "autoencoder, layer by layer + logistic regression",
                       "autoencoder, layer by layer, fine-tuned"]
    by = {r["method"]: r for r in rows}
    assert by["autoencoder, layer by layer, fine-tuned"]["baseline"] == \
        "random (small encoder), fine-tuned"
    assert by["random (small encoder), fine-tuned"]["baseline"] is None
    assert by["autoencoder, layer by layer + logistic regression"]["use"] == "featuriser"
    assert sorted({(r["size"], r["repeat"]) for r in rows}, key=str) == \
        sorted({(3, 0), (3, 1), (None, 0)}, key=str)
    assert {r["n_train"] for r in rows if r["size"] == 3} == {6}


def test_fine_tuning_leaves_the_given_encoders_as_they_came(xrays):
    xtr, ytr, xte, yte = xrays
    enc = ae.random_encoder((28, 28, 1), filters=(4,), seed=2)
    before = [w.copy() for w in enc.get_weights()]
    rows = up.compare_pretraining(xtr, ytr, xte, yte, sizes=(4,), repeats=1, profile="smoke",
                                  sources={up.RANDOM_SMALL: enc, "pixels": None},
                                  uses=["fine-tuned"],
                                  pixels=False, finetune_steps=3)
    assert [r["method"] for r in rows] == ["random (small encoder), fine-tuned"]
    for a, b in zip(enc.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fine_tuning_starts_from_a_linear_probe_on_the_encoders_features(xrays):
    from sklearn.linear_model import LogisticRegression

    from tlwidgets.learning_curves import Draw
    from tlwidgets.training import call_in_chunks

    xtr, ytr, xte, yte = xrays
    x, y = ae.grey01(xtr), np.asarray(ytr).ravel()
    enc = ae.random_encoder((28, 28, 1), filters=(4,), seed=3)
    feats = ae.encoder_features(enc, x)
    tuner = up._FineTune(enc, x, y, ae.grey01(xte), np.asarray(yte).ravel(), n_classes=2,
                         steps=3, lr=1e-4, features_train=feats)
    index = np.arange(0, len(y), 2)
    tuner._linear_probe(Draw(size=len(index) // 2, seed=0, n_train=len(index), index=index))
    probe = LogisticRegression(max_iter=3000).fit(feats[index], y[index])
    np.testing.assert_allclose(call_in_chunks(tuner.model, x), probe.predict_proba(feats),
                               atol=2e-3)


def test_encoders_of_one_architecture_share_a_fine_tuning_model_and_keep_their_weights(xrays):
    from tlwidgets.learning_curves import Draw

    xtr, ytr, xte, yte = xrays
    x, y, xt, yt = ae.grey01(xtr), np.asarray(ytr).ravel(), ae.grey01(xte), np.asarray(yte).ravel()
    a, b = (ae.random_encoder((28, 28, 1), filters=(4,), seed=s) for s in (1, 2))
    a0, b0 = a.get_weights(), b.get_weights()
    kw = dict(n_classes=2, steps=2, lr=1e-4)
    owner = up._FineTune(a, x, y, xt, yt, features_train=ae.encoder_features(a, x), **kw)
    other = up._FineTune(b, x, y, xt, yt, features_train=ae.encoder_features(b, x), like=owner,
                         **kw)
    assert other.model is owner.model
    other.reset()  # the shared model now starts from b's weights
    for w, w0 in zip(owner.model.get_weights(), b0, strict=False):
        np.testing.assert_array_equal(w, w0)
    other(Draw(size=4, seed=0, n_train=8, index=np.r_[0:4, 24:28]))
    owner.reset()
    for w, w0 in zip(a.get_weights(), a0, strict=True):  # the owner's encoder put back
        np.testing.assert_array_equal(w, w0)
    for w, w0 in zip(b.get_weights(), b0, strict=True):  # the borrower's never trained
        np.testing.assert_array_equal(w, w0)
    wider = ae.random_encoder((28, 28, 1), filters=(8,), seed=3)
    with pytest.raises(ValueError, match="differ in architecture"):
        up._FineTune(wider, x, y, xt, yt, features_train=ae.encoder_features(wider, x),
                     like=owner, **kw)


def _rec(method, size, repeat, score, baseline=None):
    return {"domain": "", "method": method, "size": size, "size_unit": "per class",
            "n_train": 2 * (size or 50), "n_classes": 2, "repeat": repeat, "seed": repeat,
            "metric": "accuracy", "score": score, "seconds": 0.0, "baseline": baseline}


def test_negative_transfer_is_a_pretrained_start_below_the_random_one_beyond_the_spread():
    rows = []
    for rep, (r, low, close, high) in enumerate([(0.80, 0.70, 0.78, 0.90),
                                                 (0.82, 0.72, 0.83, 0.92)]):
        rows += [_rec("random", 10, rep, r), _rec("low", 10, rep, low, "random"),
                 _rec("close", 10, rep, close, "random"), _rec("high", 10, rep, high, "random")]
    rows += [_rec("random", None, 0, 0.85), _rec("low", None, 0, 0.84, "random")]
    flags = {(f["method"], f["size"]): f for f in up.negative_transfer(rows)}
    assert set(flags) == {("low", 10), ("close", 10), ("high", 10), ("low", None)}
    assert flags[("low", 10)]["negative"]
    assert flags[("low", 10)]["gap"] == pytest.approx(-0.10)
    assert flags[("low", 10)]["spread"] == pytest.approx(2 * np.std([0.8, 0.82], ddof=1))
    assert not flags[("close", 10)]["negative"]  # below on average, within the spread
    assert not flags[("high", 10)]["negative"]
    assert flags[("low", None)]["negative"]  # measured once: no spread to hide in
    assert flags[("low", 10)]["runs"] == 2 and flags[("low", None)]["runs"] == 1
    assert not up.negative_transfer(rows, margin=0.02)[-1]["negative"]
    with pytest.raises(ValueError, match="baseline 'random'"):
        up.negative_transfer([r for r in rows if r["method"] != "random"])


def test_predicted_transferability_gives_one_finite_row_per_source(xrays):
    xtr, ytr = xrays[0], xrays[1]
    sources = {"random": ae.random_encoder((28, 28, 1), filters=(4, 8)), "pixels": None}
    rows = up.predicted_transferability(sources, xtr, ytr)
    assert [r["source"] for r in rows] == ["random", "pixels"]
    for r in rows:
        assert np.isfinite(r["logme"]) and 0.0 <= r["knn"] <= 1.0
    assert rows[0]["n_features"] == 7 * 7 * 8 and rows[1]["n_features"] == 28 * 28
    assert all(r["n_images"] == len(xtr) for r in rows)


def test_the_imagenet_encoder_holds_the_backbone_weights_for_grey_images():
    from tlwidgets.backbones import load_backbone

    enc = ae.imagenet_encoder((28, 28, 1), image_size=32)
    assert enc.output_shape == (None, 1, 1, 256)
    ref = load_backbone("mobilenet_0.25", input_size=128).model.get_weights()
    np.testing.assert_array_equal(enc.get_weights()[0], ref[0])
    with pytest.raises(ValueError, match="at least 32 px"):
        ae.imagenet_encoder(image_size=16)


def test_a_random_mobilenet_takes_its_batchnorm_statistics_from_the_images(xrays):
    """Untouched, a random MobileNet in inference mode passes on almost nothing (features
    of about 1e-18): a fine-tuning from there can only score chance. With statistics from
    unlabelled images, the first BatchNormalization normalises its input."""
    xtr = xrays[0]
    plain = ae.imagenet_encoder((28, 28, 1), image_size=32, weights="random")
    fitted = ae.imagenet_encoder((28, 28, 1), image_size=32, weights="random",
                                 statistics_from=xtr[:32])  # one chunk: its own mean
    assert np.abs(ae.encoder_features(plain, xtr)).max() < 1e-6
    features = ae.encoder_features(fitted, xtr)
    assert features.std() > 1e-2
    body = fitted.layers[-1]
    bn = body.get_layer("conv1_bn")
    first_conv = keras.Model(body.input, body.get_layer("conv1").output)
    prepare = keras.Model(fitted.input, fitted.get_layer("preprocess").output)
    out = np.asarray(first_conv(prepare(ae.grey01(xtr[:32]))))
    np.testing.assert_allclose(np.asarray(bn.moving_mean), out.mean(axis=(0, 1, 2)),
                               rtol=1e-3, atol=1e-4)
    # the same convolutions as without statistics: only BatchNormalization's moved
    np.testing.assert_array_equal(fitted.get_weights()[0], plain.get_weights()[0])


def test_bad_input_gets_a_clear_error(xrays):
    xtr, ytr, xte, yte = xrays
    enc = ae.random_encoder((28, 28, 1), filters=(4,))
    with pytest.raises(ValueError, match="48 images but 47 labels"):
        up.predicted_transferability({"r": enc}, xtr, ytr[:-1])
    with pytest.raises(ValueError, match="too few"):
        up.pretrain_layerwise(xtr[:3], filters=(4,))
    with pytest.raises(ImageError, match="got shape"):
        up.pretrain_end_to_end(xtr.reshape(len(xtr), -1), filters=(4,))
    with pytest.raises(ImageError, match="got shape"):
        ae.grey01(np.zeros((10, 28, 28, 2), np.uint8))
    with pytest.raises(ValueError, match="single class"):
        up.predicted_transferability({"r": enc}, xtr, np.zeros(len(xtr)))
    with pytest.raises(ValueError, match="test set: 24 images but 23 labels"):
        up.compare_pretraining(xtr, ytr, xte, yte[:-1], profile="smoke")
    with pytest.raises(ValueError, match="positive whole numbers"):
        up.pretrain_layerwise(xtr, filters=(4, 0))
    with pytest.raises(ValueError, match="uses must be"):
        up.compare_pretraining(xtr, ytr, xte, yte, uses=["fine-tune"])
    with pytest.raises(ValueError, match="Unknown settings"):
        up.settings("smoke", epoch=3)
    with pytest.raises(ValueError, match="Unknown sources"):
        up.pretrain_sources(xtr, names=["imagenet"], profile="smoke")


def test_predicted_vs_measured_puts_the_scores_beside_the_accuracies_and_ranks_them():
    rows = [{**_rec(f"{s} + logistic regression", 10, rep, acc + 0.01 * rep), "source": s,
             "use": "featuriser"}
            for s, acc in [("a", 0.6), ("b", 0.7), ("c", 0.8)] for rep in range(2)]
    rows.append({**_rec("c, fine-tuned", 10, 0, 0.1), "source": "c", "use": "fine-tuned"})
    predicted = [{"source": "a", "logme": -1.0, "knn": 0.9}, {"source": "b", "logme": -0.5,
                                                              "knn": 0.8},
                 {"source": "c", "logme": 0.2, "knn": 0.7}]
    out = up.predicted_vs_measured(predicted, rows)
    assert [t["source"] for t in out["table"]] == ["a", "b", "c"]
    assert out["table"][2]["measured"] == {10: pytest.approx(0.805)}
    tau = {a["score"]: a["kendall_tau"] for a in out["agreement"]}
    assert tau["logme"] == pytest.approx(1.0) and tau["knn"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="use must be"):
        up.predicted_vs_measured(predicted, rows, use="probe")
