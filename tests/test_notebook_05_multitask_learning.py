"""Notebook 05 runs in the smoke profile and reports what it measured."""


def test_multitask_notebook_smoke(run_notebook, shared_assets):
    nb, rec = run_notebook("05_multitask_learning.ipynb")
    assert rec["aligned"] is True
    assert rec["n_train_pool"] == 300 and rec["n_test"] == 200 and rec["n_pos_only"] == 200
    assert rec["n_train_entities"] > 0
    # The two heads share exactly the trunk's variables, and the trunk holds most weights.
    assert rec["heads_share_trunk"] is True and rec["n_shared_variables"] >= 5
    assert rec["trunk_weights"] > 5 * max(rec["head_weights"].values())
    curve = rec["curve"]
    assert set(curve) == {"NER only", "NER + POS"}
    for by_n in curve.values():
        assert sorted(int(n) for n in by_n) == [40, 120]
        assert all(0.0 <= s["mean"] <= 1.0 and s["n"] == 1 for s in by_n.values())
    assert set(rec["multitask_gain"]) == {"40", "120"}
    assert set(rec["multitask_verdict"]) == {"better", "worse"}
    assert 0.8 < rec["glove_coverage"] <= 1.0
    assert set(rec["aux"]) == {"NER only", "NER + POS", "NER + POS + POS-only sents",
                               "NER + POS + next word", "NER + POS, learned weights"}
    # Exercise 2's solution trained NER on random embeddings, and its self-check passed.
    assert rec["exercise 05-2"] is True
