"""Notebook 01 runs in the smoke profile and its numbers make sense."""

import numpy as np


def test_featurisers_notebook_smoke(run_notebook, shared_assets):
    nb, rec = run_notebook("01_featurisers.ipynb")
    # The backbone actually used is named, stand-in included (fixtures: MobileNet 0.25).
    assert rec["backbone_name"] == "mobilenet_0.25"
    assert rec["backbone_is_standin"] is True
    assert "MobileNet (alpha 0.25)" in rec["backbone"] and "Stand-in" in rec["backbone"]
    assert rec["n_images"] == {"ants_train": 24, "ants_val": 20, "xray_train": 24, "xray_test": 20}
    # The size argument.
    assert rec["raw_dim"] == 224 * 224 * 3
    assert rec["feature_dim"] == 256
    # Features beat random weights even on a dozen images per class; the cache is hit.
    assert rec["ants_accuracy_imagenet"] >= 0.7
    assert rec["ants_accuracy_imagenet"] > rec["ants_accuracy_random"]
    assert rec["pipeline_accuracy"] == rec["ants_accuracy_imagenet"]
    assert rec["cache_hit"] is True and rec["cache_speedup"] > 1
    # Depth sweep: a cut per depth, ending at the last block.
    for key in ("depth_sweep_near", "depth_sweep_far"):
        layers = [layer for layer, _ in rec[key]]
        assert len(layers) == 4 and layers[-1] == "conv_pw_13_relu"
        assert all(0 <= acc <= 1 for _, acc in rec[key])
    # Learning curves: four methods at each size (3, all).
    for key in ("learning_curves_near", "learning_curves_far"):
        curves = rec[key]
        assert set(curves) == {"pixels + logistic regression", "small CNN from scratch",
                               "featuriser + logistic regression", "featuriser + linear SVM"}
        for accs in curves.values():
            assert set(accs) == {"3", "all"}
            assert all(0 <= a <= 1 for a in accs.values())
        assert curves["featuriser + logistic regression"]["all"] >= 0.6
    # Transferability: ImageNet features above random ones on the near domain, for LogME.
    rows = rec["transferability"]
    assert len(rows) == 8
    near = {(r["weights"], r["layer"]): r for r in rows if r["domain"].startswith("near")}
    assert near[("ImageNet", "conv_pw_13_relu")]["logme"] > near[("random", "conv_pw_13_relu")]["logme"]
    assert all(np.isfinite(r["logme"]) for r in rows)
    # The widget ran and answered a change made from code.
    assert 0 <= rec["widget_accuracy_lr"] <= 1 and 0 <= rec["widget_accuracy_svm"] <= 1
    assert rec["widget_updates"] >= 2
    # Stored without outputs.
    from pathlib import Path

    import nbformat

    src = nbformat.read(Path(__file__).parents[1] / "notebooks" / "01_featurisers.ipynb", 4)
    assert all(not c.get("outputs") for c in src.cells if c.cell_type == "code")
    assert any("parameters" in c.metadata.get("tags", []) for c in src.cells)
