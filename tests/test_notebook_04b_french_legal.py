"""Notebook 04b (French competition law) runs in the smoke profile; its numbers tell the story."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04b_french_legal.ipynb"
SOURCE = Path(__file__).resolve().parents[1] / "lessons" / "04b_french_legal.py"


@pytest.mark.notebook
def test_french_legal_notebook(run_notebook, shared_assets):
    nb, rec = run_notebook("04b_french_legal.ipynb")
    assert rec["n_articles"] == 5590 and rec["code_tokens"] > 500_000
    assert (rec["french_words"], rec["french_rows"]) == (500_000, 20_000)
    fr, en = rec["oov Livre IV / French"], rec["oov Livre IV / GloVe"]
    gsd_en = rec["oov GSD / GloVe"]
    # English vectors on French text: the report says so first, for law and general French
    for r in (en, gsd_en):
        assert (r["language"], r["vectors_language"]) == ("fr", "en")
        assert r["warnings"][0].startswith("Language mismatch")
    assert not any(w.startswith("Language mismatch") for w in fr["warnings"])
    assert fr["top1000_coverage"] > 0.45 > 0.2 > en["top1000_coverage"]
    assert fr["token_coverage"] > en["token_coverage"]
    # meaning-carrying losses: words (no article numbers), shared vectors named with their owner
    assert rec["unk_content"] and not any(ch.isdigit() for w in rec["unk_content"] for ch in w)
    assert rec["shared_livre_iv"] and all(w != owner for w, owner in rec["shared_livre_iv"])
    # continuation: locked keeps the general words exactly, free lets them move
    assert rec["drift_locked"] == 0.0 and rec["drift_free"] > 0
    assert rec["n_new_words"] > 0 and rec["neighbours_before_after"]
    for views in rec["neighbours_before_after"].values():
        assert set(views) == {"general", "locked", "free"}
    # few labels: every method scored at every size, and the verdict is computed in words
    acc = rec["topic_accuracy"]
    assert set(acc) == {"bag of words", "general French", "continued (locked)",
                        "continued (free)", "random vectors"}
    chance = 1 / 9
    assert all(0 <= m <= 1 and s >= 0 for by_k in acc.values() for m, s in by_k.values())
    assert acc["bag of words"]["20"][0] > 3 * chance
    assert len(rec["verdict"]) == 2 * len(acc["bag of words"])
    assert all("labels per class: best is" in line for line in rec["verdict"])
    # stored without outputs, and built from its jupytext source
    stored = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in stored.cells)
    from tools.build_notebooks import build

    built = build(SOURCE)  # the exercise solutions as collapsed markdown, as a learner gets them
    assert [c.source for c in built.cells] == [c.source for c in stored.cells]
