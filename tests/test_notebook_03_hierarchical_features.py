"""Notebook 03 runs in the smoke profile and computes what its lesson relies on."""

import nbformat

from tests.conftest import NOTEBOOKS


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOKS / "03_hierarchical_features.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)


def test_hierarchical_features_smoke(run_notebook, shared_assets):
    _, rec = run_notebook("03_hierarchical_features.ipynb")
    # Receptive fields grow with depth, and some layer ends up seeing the whole image.
    assert rec["rf_first"] < rec["rf_last"]
    assert rec["first_layer_seeing_whole_image"] is not None
    assert 0 < rec["first_layer_seeing_whole_image"] < rec["n_layers"]
    # The explorer drew a grid small enough for the browser, on the device TF chose.
    assert rec["explorer_updates"] >= 2
    assert 0 < rec["explorer_payload_kb"] < 1024
    assert rec["explorer_device"] in ("CPU", "GPU")
    assert 0 < rec["explorer_gradcam_payload_kb"] < 1024
    # Activation maximisation raised every sampled layer's channels, even in a few steps.
    gains = rec["filter_gain_mean"].values()
    assert all(v >= 0 for v in gains) and sum(gains) > 0
    assert rec["filter_steps_per_s"] > 0
    # The comparisons produced real similarities and weight changes.
    for key in ("domain_similarity_early", "domain_similarity_late"):
        assert 0 <= rec[key] <= 1
    assert rec["ft_change_early"] > 0 and rec["ft_change_late"] > 0
    # Grad-CAM reached a layer inside the nested base.
    assert "/" in rec["gradcam_layer"]
    assert rec["gradcam_shape"][1:] == [128, 128]
