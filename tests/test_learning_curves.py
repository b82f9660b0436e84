"""The one learning curve: records, samplers, the size rule, summary and plot."""

from __future__ import annotations

import numpy as np
import pytest

from tlwidgets.curves import make_classifier
from tlwidgets.learning_curves import (
    Fit,
    PerClass,
    Stratified,
    check_size,
    learning_curve,
    per_class_indices,
    plot_learning_curves,
    size_label,
    summarise_curves,
)


def test_per_class_indices():
    y = np.array([0] * 10 + [1] * 4)
    idx = per_class_indices(y, 3, seed=1)
    assert np.bincount(y[idx]).tolist() == [3, 3] and list(idx) == sorted(idx)
    assert len(per_class_indices(y, None)) == 14
    assert np.bincount(y[per_class_indices(y, 7)]).tolist() == [7, 4]


def test_learning_curve_records():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    x = rng.normal(size=(60, 5)) + 3 * y[:, None]
    seen = []
    rows = learning_curve({"lr": Fit(lambda: make_classifier("logistic regression"), x, y, x, y)},
                          PerClass(y), sizes=(2, 5, 100, None), repeats=3, domain="toy",
                          progress=seen.append)
    assert seen == rows
    assert set(rows[0]) == {"domain", "method", "size", "size_unit", "n_train", "n_classes",
                            "repeat", "seed", "metric", "score", "seconds"}
    # 100 per class is more than there is: it becomes "all", measured once.
    assert [r["size"] for r in rows] == [2, 2, 2, 5, 5, 5, None]
    assert [r["repeat"] for r in rows] == [0, 1, 2, 0, 1, 2, 0]
    assert {r["size_unit"] for r in rows} == {"labelled images per class"}
    summary = summarise_curves(rows)["lr"]
    assert list(summary) == [2, 5, None]
    assert [p["n_train"] for p in summary.values()] == [4, 10, 60]
    assert [p["n"] for p in summary.values()] == [3, 3, 1]
    assert summary[None]["mean"] == 1.0 and summary[None]["std"] == 0.0
    fives = [r["score"] for r in rows if r["size"] == 5]
    assert summary[5]["mean"] == pytest.approx(np.mean(fives))
    assert summary[5]["std"] == pytest.approx(np.std(fives, ddof=1))
    assert [size_label(s) for s in summary] == ["2", "5", "all"]
    ax = plot_learning_curves(rows)
    assert ax.get_xlabel() == "labelled images per class" and ax.get_ylabel() == "test accuracy"
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_xdata(), float), [2, 5, 30])  # all: 60/2
    assert list(ax.xaxis.get_majorticklocs()) == [2, 5, 30]  # a tick per size, not 2 x 10^0


def test_every_method_trains_on_the_same_subsets_and_scores_several_metrics():
    y = np.repeat([0, 1, 2], 10)
    x = np.arange(30.0)[:, None]
    used: dict[str, list] = {}

    def spy(name):
        def method(draw):
            used.setdefault(name, []).append(draw.index.tolist())
            return {"accuracy": 0.5, "twice": 1.0}
        return method

    rows = learning_curve({"a": spy("a"), "b": spy("b")}, Stratified(y, unit="sentences"),
                          sizes=(6, 30), repeats=2, seed=5, repeat_all=True)
    assert used["a"] == used["b"] and len(used["a"]) == 4
    assert used["a"][0] != used["a"][1] and sorted(used["a"][2]) == list(range(30))
    assert {r["seed"] for r in rows} == {5, 6}
    assert [r["size"] for r in rows[::4]] == [6, 6, None, None]  # 30 of 30 is all
    with pytest.raises(ValueError, match="several metrics"):
        summarise_curves(rows)
    assert summarise_curves(rows, metric="twice")["a"][6]["mean"] == 1.0
    fit = Fit(lambda: make_classifier("logistic regression"), x, y, x, y,
              scoring=("accuracy", "f1_macro"))
    assert set(fit(PerClass(y).draw(None, 0))) == {"accuracy", "f1_macro"}


def test_sizes_none_is_all_and_zero_is_an_error():
    y = np.repeat([0, 1], 5)
    assert check_size(None) is None and check_size(np.int64(3)) == 3
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="None for all"):
            check_size(bad)
    with pytest.raises(ValueError, match="0 no longer means all: write None"):
        per_class_indices(y, 0)
    with pytest.raises(ValueError, match="0 no longer means all"):
        learning_curve({"m": lambda d: 1.0}, PerClass(y), sizes=(2, 0))
    with pytest.raises(ValueError, match="exceeds the 10 sentences"):
        learning_curve({"m": lambda d: 1.0}, Stratified(y, unit="sentences"), sizes=(11,))
    with pytest.raises(ValueError, match="at least one method"):
        learning_curve({}, PerClass(y))
    with pytest.raises(ValueError, match="at least two classes"):
        PerClass(np.zeros(4))
    with pytest.raises(ValueError, match="several domains"):
        summarise_curves([{"domain": "a", "metric": "m"}, {"domain": "b", "metric": "m"}])


def test_methods_beyond_the_named_four_get_colours_of_their_own():
    from matplotlib.figure import Figure

    rows = [{"method": f"method {k}", "size": s, "repeat": 0, "score": 0.5 + 0.01 * k,
             "metric": "accuracy", "n_train": 2 * s, "n_classes": 2, "domain": "",
             "size_unit": "images per class", "seconds": 0.0}
            for k in range(6) for s in (5, 50)]
    rows += [{**r, "method": "featuriser + logistic regression"} for r in rows[:2]]
    ax = Figure().subplots()
    plot_learning_curves(rows, ax)
    colours = [c.lines[0].get_color() for c in ax.containers]  # one errorbar per method
    assert len(colours) == 7 and len(set(colours)) == 7  # no two methods share a colour
