"""Notebook 02 runs in the smoke profile and records every comparison it teaches."""

from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_fine_tuning.ipynb"


def test_fine_tuning_notebook_smoke(run_notebook, shared_assets):
    nb, rec = run_notebook("02_fine_tuning.ipynb")
    # The fixtures stand in MobileNet alpha 0.25 for MobileNetV2 (a notice says so).
    assert rec["backbone"] == "mobilenet_0.25"
    assert (rec["n_train"], rec["n_val"]) == (8, 8)
    # Hand-computed: the head is 256 features x 2 classes + 2 biases; the top two blocks of
    # MobileNet 0.25 add 2,304 + 65,536 (block 13) and 1,152 + 32,768 (block 12), BN frozen.
    assert rec["frozen_head_trainable_params"] == 514
    assert rec["partial_trainable_params"] == 514 + 67_840 + 33_920
    assert rec["full_trainable_params"] > rec["partial_trainable_params"]
    for key in ("featuriser", "frozen_head", "partial", "full", "layerwise", "scratch",
                "bn_frozen_small_batch", "bn_training", "high_lr"):
        value = rec[f"{key}_val_accuracy"]
        assert 0.0 <= value <= 1.0, (key, value)
    assert rec["bn_moving_mean_drift"] > 0  # BN in training mode moved the pretrained statistics
    assert rec["small_n_train"] == 4 and 0.0 <= rec["small_train_accuracy"] <= 1.0
    assert 1e-7 < rec["lr_finder_suggestion"] < 1.0
    assert isinstance(rec["fine_tuning_beats_frozen_head"], bool)
    # Every code cell ran; widgets rendered as widget views.
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) >= 3  # two LayerFreezers and the monitor


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert len([c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]) == 1
