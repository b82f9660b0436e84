"""The compact word list behind large vector files: same answers as a list and a dict."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
from gensim.test.utils import datapath

from tlwidgets import vocab as V
from tlwidgets.vocab import WordList, lookup_rows

WORDS = ["the", ",", "café", "naïve", "東京", "", "a b", "the", "zebra", "🙂", "Zebra"]


@pytest.fixture
def words():
    return WordList.from_words(WORDS)


def _first_rows(words):
    rows = {}
    for i, w in enumerate(words):
        rows.setdefault(w, i)
    return rows


def test_behaves_as_the_list_it_stores(words):
    assert len(words) == len(WORDS)
    assert list(words) == WORDS and words == WORDS and WORDS == words  # noqa: SIM300 (reflected)
    assert words[2] == "café" and words[-1] == "Zebra" and words[np.int64(4)] == "東京"
    assert words[1:4] == WORDS[1:4] and words[::-3] == WORDS[::-3]
    with pytest.raises(IndexError, match="out of range"):
        words[len(WORDS)]
    assert words != WORDS[:-1] and words != ["x"] * len(WORDS)


def test_lookups_match_a_dict_first_occurrence_wins(words):
    rows = _first_rows(WORDS)
    for w, i in rows.items():
        assert words.find(w) == i and words.mapping[w] == i and w in words.mapping
    assert words.find("the") == 0  # a repeated word maps to its first row
    for missing in ("zzz", "Café", "the ", "\ud800", 3, None, b"the"):
        assert words.find(missing) == -1 and missing not in words.mapping
        assert words.mapping.get(missing, "no") == "no"
    with pytest.raises(KeyError):
        words.mapping["zzz"]
    batch = ["zebra", "nope", "the", "", "東京", "\ud800", "🙂"]
    assert words.lookup(batch).tolist() == [rows.get(w, -1) for w in batch]
    assert words.lookup([]).shape == (0,)
    assert words.index("zebra") == 8
    assert words.index("the", 1) == WORDS.index("the", 1) == 7  # a repeat, as list.index
    assert words.index("the", -4) == 7
    for word, start, stop in (("nope", 0, None), ("the", 8, None), ("zebra", 0, 8)):
        with pytest.raises(ValueError):
            words.index(word, start, stop)
    assert words.lookup(["the", 3, None, b"the"]).tolist() == [0, -1, -1, -1]
    # the mapping has one key a word: repeats are not counted or listed twice
    assert len(words.mapping) == len(set(WORDS)) and list(words.mapping) == list(rows)
    assert words.repeats.tolist() == [7]


def test_vectorised_hash_matches_the_scalar_one():
    encoded = [w.encode() for w in WORDS] + [b"x" * 5000]
    bounds = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(w) for w in encoded], out=bounds[1:])
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    got = V._hash_spans(data, bounds)
    assert got.tolist() == [V._hash_one(w) for w in encoded]


def test_hash_collisions_still_find_the_right_word(monkeypatch):
    """Every word hashing alike forces the equal-hash walk on each lookup."""
    monkeypatch.setattr(V, "_hash_one", lambda key: 7 << 60)
    monkeypatch.setattr(V, "_hash_spans", lambda data, bounds: np.full(len(bounds) - 1, 7 << 60,
                                                                       dtype=np.uint64))
    words = WordList.from_words(WORDS)
    rows = _first_rows(WORDS)
    assert [words.find(w) for w in rows] == list(rows.values())
    assert words.lookup(list(rows) + ["nope"]).tolist() == [*rows.values(), -1]


def test_glove_vocabulary_lookups_agree_with_gensim(shared_assets):
    from tlwidgets.embeddings import load_vectors

    plain = load_vectors("glove-6b-50d-top20k", compact=False)
    compact = load_vectors("glove-6b-50d-top20k")
    assert isinstance(compact.index_to_key, WordList) and isinstance(plain.key_to_index, dict)
    assert compact.index_to_key == plain.index_to_key
    probe = plain.index_to_key[::7] + ["qwzxvb", "Paris", "ｐａｒｉｓ"]
    assert compact.key_to_index.lookup(probe).tolist() == [
        plain.key_to_index.get(w, -1) for w in probe]
    assert compact.most_similar("france", topn=5) == plain.most_similar("france", topn=5)
    pairs = datapath("wordsim353.tsv")
    assert compact.evaluate_word_pairs(pairs)[1] == plain.evaluate_word_pairs(pairs)[1]
    assert compact.doesnt_match(["king", "queen", "car"]) == "car"
    python = (sum(map(sys.getsizeof, plain.index_to_key)) + sys.getsizeof(plain.index_to_key)
              + sys.getsizeof(plain.key_to_index))
    assert compact.index_to_key.nbytes < 0.3 * python


def test_compact_keyed_vectors_save_and_load(shared_assets, tmp_path):
    from gensim.models import KeyedVectors

    from tlwidgets.embeddings import load_vectors

    kv = load_vectors("glove-6b-50d-top20k", limit=2000)
    kv.save(str(tmp_path / "kv.model"))
    back = KeyedVectors.load(str(tmp_path / "kv.model"))
    assert isinstance(back.index_to_key, WordList) and back.index_to_key == kv.index_to_key
    assert back.key_to_index["king"] == kv.key_to_index["king"]
    assert back.most_similar("king", topn=3) == kv.most_similar("king", topn=3)


def test_read_only_with_a_way_out(words):
    with pytest.raises(TypeError, match="compact=False"):
        words.append("new")
    with pytest.raises(TypeError, match="read-only"):
        words.mapping["new"] = 3


@pytest.mark.filterwarnings("ignore:Adding single vectors")
def test_adding_to_compact_keyed_vectors_explains_itself(shared_assets):
    from tlwidgets.embeddings import load_vectors

    kv = load_vectors("glove-6b-50d-top20k", limit=100)
    with pytest.raises(TypeError, match="compact=False"):
        kv.add_vector("brandnewword", np.ones(50, dtype=np.float32))
    kv.index_to_key, kv.key_to_index = list(kv.index_to_key), dict(kv.key_to_index)
    kv.add_vector("brandnewword", np.ones(50, dtype=np.float32))  # the advice works
    assert kv.key_to_index["brandnewword"] == 100


def test_pickles_and_counts(words):
    back = pickle.loads(pickle.dumps(words))
    assert back == words and back.find("東京") == 4
    assert WordList.from_words(["ok", "a\ufffdb", "\ufffd\ufffd", "fine"]).count_containing(
        "\ufffd") == 2
    empty = WordList.from_words([])
    assert empty == [] and len(empty) == 0 and empty.find("a") == -1
    assert empty.lookup(["a", "b"]).tolist() == [-1, -1]


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="from 0 to len"):
        WordList(b"abc", [0, 2])
    with pytest.raises(ValueError, match="decrease"):
        WordList(b"abc", [0, 2, 1, 3])


def test_shared_rows_map_many_words_onto_one_row():
    from tlwidgets.vocab import SharedRows

    keys = WordList.from_words(["de", "la", "concurrentiel", "anticoncurrentiel", "rare"])
    index = SharedRows(keys, np.array([0, 1, 2, 2, 0]))
    assert index["anticoncurrentiel"] == index["concurrentiel"] == 2 and len(index) == 5
    assert lookup_rows(index, ["rare", "missing", "la"]).tolist() == [0, -1, 1]
    assert index.keys_of_row(2) == ["concurrentiel", "anticoncurrentiel"]
    assert "rare" in index and "missing" not in index and index.get("missing", -1) == -1
    with pytest.raises(TypeError, match="read-only"):
        index["new"] = 3
    with pytest.raises(ValueError, match="one row a key"):
        SharedRows(keys, np.array([0, 1]))
