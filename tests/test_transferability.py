"""LogME against its defining properties, and the kNN / linear-probe scores."""

from __future__ import annotations

import numpy as np
import pytest

from tlwidgets.transferability import (
    knn_score,
    linear_probe_score,
    log_evidence,
    logme,
    logme_details,
    transferability_scores,
)


def _blobs(n=240, d=24, classes=3, signal=2.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    f = rng.normal(size=(n, d))
    f[:, :classes] += signal * np.eye(classes)[y]
    return f, y


@pytest.mark.parametrize("shape", [(240, 24), (40, 300)])  # more samples than features, and fewer
def test_fixed_point_is_the_evidence_maximum(shape):
    n, d = shape
    f, y = _blobs(n, d, classes=2)
    res = logme_details(f, y)
    assert np.all(res.iterations < 200)
    for c in range(2):
        target = (y == c).astype(float)
        a, b = res.alpha[c], res.beta[c]
        best = log_evidence(f, target, a, b)
        # The SVD shortcut equals the direct formula ...
        assert res.per_target[c] == pytest.approx(best, abs=1e-6)
        # ... and no nearby (alpha, beta) has more evidence.
        for fa in (0.8, 0.95, 1.05, 1.25):
            for fb in (0.8, 0.95, 1.05, 1.25):
                assert log_evidence(f, target, a * fa, b * fb) <= best + 1e-12


def test_invariant_to_label_permutation_sample_order_and_rotation():
    f, y = _blobs()
    base = logme(f, y)
    relabel = np.array([2, 0, 1])[y]  # the same classes under other names
    assert logme(f, relabel) == pytest.approx(base, abs=1e-12)
    assert logme(f, np.where(y == 0, "ant", np.where(y == 1, "bee", "wasp"))) == pytest.approx(base)
    order = np.random.default_rng(1).permutation(len(y))
    assert logme(f[order], y[order]) == pytest.approx(base, abs=1e-10)
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(f.shape[1],) * 2))
    assert logme(f @ q, y) == pytest.approx(base, abs=1e-9)  # a linear model cannot tell


def test_more_informative_features_score_higher():
    f, y = _blobs(signal=2.0)
    weak, _ = _blobs(signal=0.5)
    noise = np.random.default_rng(3).normal(size=f.shape)
    shuffled = np.random.default_rng(4).permutation(y)
    assert logme(f, y) > logme(weak, y) > logme(noise, y)
    assert logme(f, y) > logme(f, shuffled)
    # Regression targets: a linear function of the features beats noise.
    t = f @ np.linspace(1, -1, f.shape[1]) + 0.1 * np.random.default_rng(5).normal(size=len(f))
    assert logme(f, t, regression=True) > logme(noise, t, regression=True)


def test_bad_input_is_explained():
    f, y = _blobs()
    with pytest.raises(ValueError, match="two classes"):
        logme(f, np.zeros(len(f)))
    with pytest.raises(ValueError, match="labels"):
        logme(f, y[:-1])
    bad = f.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        logme(bad, y)


def test_knn_and_linear_probe():
    f, y = _blobs(signal=3.0)
    noise = np.random.default_rng(3).normal(size=f.shape)
    assert knn_score(f, y) > 0.8 > 0.5 > knn_score(noise, y)
    assert linear_probe_score(f, y) > 0.85 > 0.5 > linear_probe_score(noise, y)
    # Leave-one-out: duplicated points must not find themselves.
    assert knn_score(np.repeat(noise[:20], 2, axis=0), np.arange(40) % 2, k=1) == 0.0
    scores = transferability_scores(f, y)
    assert set(scores) == {"logme", "knn", "linear_probe"}


@pytest.fixture(scope="module")
def ants_bees_features(shared_assets):
    from tlwidgets.data import load_hymenoptera
    from tlwidgets.featurize import Featuriser

    train = load_hymenoptera("train", image_size=224)
    # The session's feature cache (test_featurize computes the same features).
    return {w: Featuriser("auto", weights=w, progress=False).transform(train.images)
            for w in ("imagenet", "random")}, train.labels


def test_logme_ranks_imagenet_above_random_on_ants_and_bees(ants_bees_features):
    feats, y = ants_bees_features
    imagenet, random = logme(feats["imagenet"], y), logme(feats["random"], y)
    assert imagenet > random
    # Label names do not matter: swapping ants and bees changes nothing.
    assert logme(feats["imagenet"], 1 - y) == pytest.approx(imagenet, abs=1e-10)
    assert knn_score(feats["imagenet"], y) > knn_score(feats["random"], y)
