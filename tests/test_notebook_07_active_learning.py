"""Notebook 07 (active learning) runs in the smoke profile; its numbers tell the story."""

from __future__ import annotations

import pytest

from tlwidgets.exercises import record_key


@pytest.mark.notebook
def test_active_learning_notebook(run_notebook, shared_assets):
    nb, rec = run_notebook("07_active_learning.ipynb")
    assert rec["pool_size"] == 40 and rec["test_size"] == 40
    assert rec["uncertainty_scores_agree"] is True  # two classes: one ranking
    for name in ("cats vs dogs", "chest X-rays"):
        curves = rec[f"{name} curves"]
        assert set(curves) == {"random", "margin", "k-center", "typical", "typical + margin"}
        assert all(0 <= a <= 1 for by in curves.values() for a in by.values())
        assert 0.5 < rec[f"{name} all-labels accuracy"] <= 1
        for fraction in ("95%", "98%"):
            need = rec[f"{name} labels to {fraction}"]
            assert set(need) == set(curves)
            assert all(n is None or n in (4, 8, 16, 30) for n in need.values())
    assert rec["widget_labels"] >= 8
    assert rec["export_matches"] is True
    assert rec[record_key("07-1")] is True
