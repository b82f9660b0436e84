"""Few-label topic classification: balanced held-out sets, same labelled documents for every
method, verdicts that respect the spread."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import KeyedVectors

from tlwidgets import few_labels as F


def _kv(words, vectors):
    kv = KeyedVectors(len(vectors[0]))
    kv.add_vectors(words, np.asarray(vectors, dtype=np.float32))
    return kv


def test_mean_vectors_skip_stop_and_unknown_words_and_weight_by_rarity():
    kv = _kv(["a", "b", "le"], [[1, 0], [0, 1], [5, 5]])
    docs = [["a", "le", "zzz"], ["a", "b"], ["b", "b", "a"], ["zzz"]]
    plain = F.mean_vectors(docs, kv, skip={"le"}, idf=False)
    np.testing.assert_allclose(plain[0], [1, 0], atol=1e-6)
    np.testing.assert_allclose(plain[1], np.array([1, 1]) / np.sqrt(2), atol=1e-6)
    np.testing.assert_allclose(plain[2], np.array([1, 2]) / np.sqrt(5), atol=1e-6)
    assert not plain[3].any()  # nothing known: zeros
    weighted = F.mean_vectors(docs, kv, skip={"le"})
    assert weighted[1][1] > weighted[1][0]  # "b" is in fewer documents than "a"


def test_balanced_split_and_samples_per_class():
    y = np.repeat([0, 1, 2], [30, 12, 50])
    pool, test = F.balanced_split(y, 5)
    assert np.bincount(y[test]).tolist() == [5, 5, 5] and not set(pool) & set(test)
    with pytest.raises(ValueError, match="Class 1 has 12 documents"):
        F.balanced_split(y, 12)
    with pytest.raises(ValueError, match="only 7 documents"):
        F._sample(y, pool, 10, np.random.default_rng(0))


def test_curve_scores_separable_topics_and_the_verdict_reads_the_spread():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    good = np.eye(3)[y] * 3 + rng.normal(size=(120, 3)) * 0.3
    noise = rng.normal(size=(120, 3))
    texts = [f"topic{c} word{c} filler" for c in y]
    runs = F.few_label_curve({"good": good, "noise": noise, "bow": texts}, y,
                             per_class=(2, 5), repeats=3, test_per_class=10)
    assert len(runs) == 2 * 3 * 3
    table = F.summarise(runs)
    assert table["good"][5][0] == 1.0 and table["bow"][5][0] == 1.0
    assert table["noise"][5][0] < 0.8
    lines = F.verdict(runs, against="good", reference="noise")
    assert lines[1].startswith("5 labels per class: best is ") and "good beats noise" in lines[1]
    same = F.verdict(runs, against="good", reference="bow")
    assert "within the spread" in same[1]
