"""Active learning on features: strategies, the labelling state, the simulated loop."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs

from tlwidgets.active import (
    STRATEGIES,
    ActiveLearner,
    ActiveLearningError,
    labels_to_reach,
    simulate,
)
from tlwidgets.learning_curves import summarise_curves


@pytest.fixture(scope="module")
def digits():
    d = load_digits()  # real handwritten digits: 1,797 images as 64 features
    rng = np.random.default_rng(0)
    order = rng.permutation(len(d.target))
    X, y = d.data[order].astype(np.float32), d.target[order]
    return X[:1200], y[:1200], X[1200:], y[1200:]


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_asks_for_new_distinct_items(name, digits):
    X, y, _, _ = digits
    learner = ActiveLearner(X, list(range(10)), strategy=name, seed=1)
    first = learner.query(30)
    assert len(first) == 30 and len(set(first.tolist())) == 30
    learner.teach(first, y[first])
    assert learner.fit() is not None
    second = learner.query(40)
    assert len(set(second.tolist())) == 40 and not set(second) & set(first)


def test_typical_start_takes_one_central_point_per_cluster():
    X, blob = make_blobs(n_samples=600, centers=6, cluster_std=0.6, random_state=3)
    learner = ActiveLearner(X, list(range(6)), strategy="typical", seed=0)
    picked = learner.query(6)
    assert sorted(blob[picked]) == list(range(6))  # one from every blob
    for p in picked:  # and each near its blob's centre, not an outlier
        members = X[blob == blob[p]]
        dist = np.linalg.norm(members - members.mean(0), axis=1)
        assert np.linalg.norm(X[p] - members.mean(0)) <= np.quantile(dist, 0.5)


def test_random_start_often_misses_clusters_that_typical_covers():
    X, blob = make_blobs(n_samples=600, centers=6, cluster_std=0.6, random_state=3)
    covered = [len(set(blob[ActiveLearner(X, list(range(6)), strategy="random", seed=s)
                            .query(6)])) for s in range(20)]
    assert np.mean(covered) < 5.5  # random six picks rarely hit all six blobs


def test_margin_asks_about_the_boundary():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(2000, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    learner = ActiveLearner(X, [0, 1], strategy="margin", seed=0)
    start = rng.choice(2000, 40, replace=False)
    learner.teach(start, y[start])
    learner.fit()
    asked = learner.query(20)
    assert np.abs(X[asked, 0]).mean() < 0.15 < np.abs(X[:, 0]).mean()


def test_k_center_goes_far_from_the_labelled():
    X, blob = make_blobs(n_samples=400, centers=4, cluster_std=0.3, random_state=1)
    learner = ActiveLearner(X, list(range(4)), strategy="k-center", seed=0)
    seen = np.flatnonzero(blob == 0)[:10]
    learner.teach(seen, blob[seen])
    asked = learner.query(3)
    assert set(blob[asked]) == {1, 2, 3}


def test_bad_input_is_refused_with_what_to_do(digits, tmp_path):
    X, y, _, _ = digits
    with pytest.raises(ActiveLearningError, match="two or more"):
        ActiveLearner(X, ["cat"])
    with pytest.raises(ActiveLearningError, match="2-D"):
        ActiveLearner(X[0], [0, 1])
    with pytest.raises(ActiveLearningError, match="NaN"):
        ActiveLearner(np.full((5, 3), np.nan), [0, 1])
    with pytest.raises(ActiveLearningError, match="Unknown strategy"):
        ActiveLearner(X, [0, 1], strategy="clever")
    learner = ActiveLearner(X[:20], list(range(10)))
    with pytest.raises(ActiveLearningError, match="at most 20"):
        learner.query(21)
    with pytest.raises(ActiveLearningError, match="Unknown label"):
        learner.teach([0, 1], [3, "seven"])
    assert learner.labels == {}  # nothing half-recorded
    learner.teach([0, 1], [3, 3])
    assert learner.fit() is None  # one class: no model yet, and no crash
    with pytest.raises(ActiveLearningError, match="No model yet"):
        learner.score(X[:5], y[:5])


def test_labels_survive_a_csv_round_trip(tmp_path):
    X, blob = make_blobs(n_samples=50, centers=2, random_state=0)
    names = [f"img_{i:03d}.jpg" for i in range(50)]
    a = ActiveLearner(X, ["cat", "dog"], items=names)
    a.teach([3, 7, 9], ["dog", "cat", "dog"])
    path = a.to_csv(tmp_path / "labels.csv")
    assert path.read_text().splitlines()[0] == "item,label"
    b = ActiveLearner(X, ["cat", "dog"], items=names)
    assert b.load_csv(path) == 3 and b.labels == a.labels
    (tmp_path / "other.csv").write_text("item,label\nnot_here.jpg,cat\n")
    with pytest.raises(ActiveLearningError, match="other.csv:2"):
        b.load_csv(tmp_path / "other.csv")
    assert b.labels == a.labels


def test_simulation_records_and_uncertainty_beats_random_on_digits(digits):
    X, y, Xt, yt = digits
    rows = simulate(X, y, Xt, yt, strategies=["random", "margin", "typical + margin"],
                    budgets=(20, 60, 150), repeats=2, domain="digits")
    assert len(rows) == 3 * 3 * 2
    assert {r["size_unit"] for r in rows} == {"labelled images"}
    assert all(r["n_train"] == r["size"] and 0 <= r["score"] <= 1 for r in rows)
    summary = summarise_curves(rows)
    assert summary["margin"][150]["mean"] > summary["random"][150]["mean"]
    need = labels_to_reach(summary, summary["random"][150]["mean"])
    assert need["random"] == 150 and need["margin"] <= 150
    with pytest.raises(ActiveLearningError, match="exceeds the pool"):
        simulate(X, y, Xt, yt, budgets=(10, 5000))
    with pytest.raises(ActiveLearningError, match="at least two"):
        simulate(X, np.zeros(len(y)), Xt, yt)


def test_export_is_one_keras_file_that_reproduces_the_predictions(tmp_path, shared_assets):
    import json
    import subprocess
    import sys

    from tlwidgets.data import load_hymenoptera
    from tlwidgets.export import LOADING_SNIPPET, export_classifier
    from tlwidgets.featurize import Featuriser

    val = load_hymenoptera("val", image_size=128)
    images = np.concatenate([val.images[val.labels == c][:12] for c in (0, 1)])
    labels = np.repeat([0, 1], 12)
    featuriser = Featuriser("mobilenet_0.25", input_size=128, cache=False, progress=False)
    learner = ActiveLearner(featuriser.transform(images), val.class_names, seed=0)
    learner.teach(np.arange(24), labels)
    learner.fit()
    expected = learner.model.predict_proba(learner.transform(featuriser.transform(images)))
    path = export_classifier(featuriser, learner, tmp_path / "ants_bees.keras")
    assert json.loads((tmp_path / "ants_bees.keras.labels.json").read_text()) == val.class_names
    np.save(tmp_path / "images.npy", images)
    code = ("import sys, keras, numpy as np\n"
            f"m = keras.models.load_model({str(path)!r}, safe_mode=True)\n"
            f"np.save({str(tmp_path / 'p.npy')!r}, m.predict(np.load({str(tmp_path / 'images.npy')!r}),"
            " verbose=0))\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300,
                   env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    got = np.load(tmp_path / "p.npy")
    np.testing.assert_allclose(got, expected, atol=1e-4)
    snippet = LOADING_SNIPPET.format(model=path.name, labels=path.name + ".labels.json", size=128)
    assert "safe_mode" in snippet and path.name in snippet
    with pytest.raises(ActiveLearningError, match=".keras"):
        export_classifier(featuriser, learner, tmp_path / "model.h5")


def test_strategy_can_change_and_the_pool_can_grow(digits):
    X, y, _, _ = digits
    learner = ActiveLearner(X[:300], list(range(10)), strategy="random", seed=0)
    first = learner.query(40)
    learner.teach(first, y[first])
    learner.fit()
    learner.strategy = "margin"
    assert learner.strategy == "margin" and len(learner.query(5)) == 5
    with pytest.raises(ActiveLearningError, match="Unknown strategy"):
        learner.strategy = "clever"
    assert learner.strategy == "margin"
    new = learner.extend(X[300:350], items=[f"up{i}" for i in range(50)])
    assert list(new) == list(range(300, 350)) and len(learner.X) == 350
    assert {p: learner.labels[p] for p in first} == dict(zip(first.tolist(), y[first].tolist(), strict=True))
    np.testing.assert_allclose(learner.X.mean(0), 0, atol=1e-4)
    assert learner.items[-1] == "up49" and learner.model is not None
