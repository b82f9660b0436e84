"""CurveExplorer: a thin view over transfer_regimes, driven from Python."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_transfer_regimes import make_folder, rows_for
from tlwidgets import transfer_regimes as tr
from tlwidgets.widgets.curve_explorer import CurveExplorer


def fake_domain(name, n=20):
    y = np.repeat([0, 1], n // 2)
    x = np.zeros((n, 8, 8, 3), np.uint8)
    f = np.random.default_rng(0).normal(size=(n, 4)) + y[:, None]
    return tr.DomainData(name, ["a", "b"], y, y, x, x, f, f, f, f, f, f, x, x)


CURVES = {"featuriser + linear SVM": {10: 0.8, 100: 0.8},
          "fine-tune all layers": {10: 0.7, 100: 0.9}}


def run_fake(domain, methods):
    return rows_for({m: CURVES.get(m, {10: 0.6, 100: 0.6}) for m in methods}, domain.name)


def prepare(root):
    train, test, notices = tr.learner_domain(root, image_size=8, smallest_size=3)
    d = fake_domain(str(root).rsplit("/", 1)[-1], len(train))
    d.notices = notices
    return d


def test_explorer_shows_known_curves_and_computes_only_what_is_missing():
    calls = []

    def run(domain, methods):
        calls.append(list(methods))
        return run_fake(domain, methods)

    known = {"d": rows_for(CURVES, "d")}
    w = CurveExplorer({"d": fake_domain("d")}, run, known=known,
                      methods=["featuriser + linear SVM", "fine-tune all layers"])
    assert calls == [] and "from 100" in w.crossover_text
    assert "<img" in w._chart_w.value
    w.methods = ["featuriser + linear SVM", "fine-tune all layers", "HOG + linear SVM"]
    w.update()
    assert calls == [["HOG + linear SVM"]] and w.runs == 1
    w.update()
    assert calls == [["HOG + linear SVM"]]  # nothing left to compute
    w.methods = []
    w.update()
    assert "at least one method" in w.error


def test_a_failed_run_leaves_nothing_behind():
    def run(domain, methods):
        raise ValueError("the training size 500 exceeds what this domain has")

    w = CurveExplorer({"d": fake_domain("d")}, run, methods=["HOG + linear SVM"])
    w.update()
    assert "exceeds" in w.error and w.records() == [] and w.runs == 0


@pytest.mark.parametrize("counts, message", [({"cats": 9}, "one class folder"),
                                             ({"cats": 9, "dogs": 0}, "hold no images"),
                                             ({"cats": 9, "dogs": 2}, "needs at least")])
def test_bad_folders_get_a_notice_and_add_nothing(tmp_path, counts, message):
    w = CurveExplorer({"d": fake_domain("d")}, run_fake, prepare=prepare)
    assert w.add_folder(str(make_folder(tmp_path / "mine", counts))) is False
    assert message in w.error and list(w._domain_w.options) == ["d"] and w.domain == "d"


def test_a_good_folder_becomes_a_domain(tmp_path):
    root = make_folder(tmp_path / "mine", {"a": 10, "b": 10}, mode="L")
    w = CurveExplorer({"d": fake_domain("d")}, run_fake, prepare=prepare,
                      methods=["featuriser + linear SVM", "fine-tune all layers"])
    assert w.add_folder(str(root)) is True
    assert w.domain == "mine" and "grey" in w.status
    w.update()
    assert w.runs == 1 and "mine" in w.crossover_text
