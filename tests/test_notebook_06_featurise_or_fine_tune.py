"""Notebook 06 (featurise or fine-tune?) runs in the smoke profile; its numbers are its own."""

from __future__ import annotations

import pytest

from tlwidgets.exercises import record_key
from tlwidgets.transfer_regimes import METHODS


@pytest.mark.notebook
def test_featurise_or_fine_tune_notebook(run_notebook, shared_assets):
    nb, rec = run_notebook("06_featurise_or_fine_tune.ipynb")
    assert rec["backbone"] == "mobilenet_0.25"
    counts = rec["trainable_counts"]
    assert counts["frozen"] < counts["top"] < counts["all"]  # the three Keras moves
    assert rec["n_images"] == {"cats_train": 12, "cats_test": 12, "xray_train": 12,
                               "xray_test": 12}
    for domain in ("cats vs dogs", "chest X-rays"):
        curve = rec["curves"][domain]
        assert set(curve) == set(METHODS)  # every method measured on every domain
        assert all(0 <= a <= 1 for by in curve.values() for a in by.values())
        cross = rec["crossover"][domain]
        assert cross["in_range"] == (cross["size"] is not None)
        assert len(cross["per_repeat"]) == 1
    assert set(rec["xray_auc"]) == set(METHODS)
    sources = {r["source"] for r in rec["predicted"]}
    assert {"pixels", "random (small encoder)", "autoencoder, layer by layer"} <= sources
    assert all(r["n_images"] > 0 and r["knn"] >= 0 for r in rec["predicted"])
    assert "random (small encoder) + logistic regression" in rec["pretraining_curves"]
    assert rec["predicted_vs_measured"]  # a rank agreement per size and score
    assert 0 < rec["best_xray_auc"] <= 1
    assert "not a folder" in rec["widget_error"]
    assert rec["widget_crossover"]  # the widget says the crossover in words
    assert rec[record_key("06-1")] is True
    assert rec[record_key("06-2")] is True
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert "quoted" not in text  # quoted numbers live in the reference table only
    stderr = [o.get("text", "") for c in nb.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert not [t for t in stderr if "Warning" in t], stderr  # a learner sees no warnings
