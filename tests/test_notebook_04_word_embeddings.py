"""Notebook 04 runs in the smoke profile; its measured numbers tell the lesson's story."""

from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_word_embeddings.ipynb"


def test_word_embeddings_notebook(run_notebook, shared_assets):
    nb, rec = run_notebook("04_word_embeddings.ipynb")
    assert rec["n_words"] == 20_000
    # the words are held compactly: a fraction of the 50-number matrix beside them
    assert 0 < rec["words_mb"] < 0.2 * rec["vectors_mb"]
    # pretrained vectors know something a small corpus cannot teach
    assert rec["wordsim_glove"] > 0.4
    assert rec["wordsim_lee_word2vec"] < rec["wordsim_glove"] - 0.25
    assert rec["analogy_accuracy"] > 0.3
    # the specialised domain loses more of its tokens, and more of its content words
    general, domain = rec["oov_general"], rec["oov_domain"]
    assert general["token_coverage"] > domain["token_coverage"]
    assert domain["content_lost"] > general["content_lost"]
    # locking keeps general words exactly; freeing them lets them drift
    assert rec["locked_unchanged"] is True and rec["drift_locked"] == 0.0
    assert rec["drift_free"] > 0
    assert rec["n_new_words"] > 100 and len(rec["domain_words"]) >= 3
    assert rec["cooccur_share"] > 2 * rec["cooccur_chance"]
    # fastText answers for words it never saw
    assert len(rec["fasttext_unseen"]) >= 2
    assert all(len(v) == 6 for v in rec["fasttext_unseen"].values())
    # downstream: pretrained embeddings help most when labels are few
    small = rec["acc_smallest"]
    assert max(small["frozen"], small["finetune"]) > small["random"]
    assert rec["genres"] == ["answers", "email", "newsgroup", "reviews", "weblog"]
    # stored without outputs
    assert all(not c.get("outputs") for c in nbformat.read(NOTEBOOK, as_version=4).cells)
