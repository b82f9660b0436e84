"""Loading word vectors in every format, querying, scoring, domain continuation, fastText."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import Word2Vec
from gensim.test.utils import datapath

from tlwidgets import embeddings as E
from tlwidgets import oov, vector_files
from tlwidgets.assets import resolve


@pytest.fixture(scope="module")
def glove(shared_assets):
    return E.load_vectors("glove-6b-50d-top20k")


@pytest.fixture(scope="module")
def python_sentences():
    return oov.sentences(oov.python_reference())


def _write_glove(path, lines):
    path.write_bytes(b"".join(lines))
    return path


def _row(word: bytes, dim: int, value: float = 0.5) -> bytes:
    return word + b" " + b" ".join(b"%.3f" % (value + i / 100) for i in range(dim)) + b"\n"


# --------------------------------------------------------------------------- loading


def test_glove_fixture_loads_in_frequency_order(glove):
    assert len(glove) == 20_000 and glove.vector_size == 50
    assert glove.index_to_key[:3] == ["the", ",", "."]
    assert glove.vectors.dtype == np.float32


def test_limit_keeps_the_most_frequent_words(shared_assets):
    small = E.load_vectors(resolve("glove-6b-50d-top20k"), limit=1000)
    assert len(small) == 1000 and small.index_to_key[0] == "the"
    with pytest.raises(ValueError, match="positive"):
        E.load_vectors("glove-6b-50d-top20k", limit=0)


def test_package_form_matches_the_text_file(glove):
    found = resolve("glove-6b-50d")
    kv = E.load_vectors(found, limit=5000)
    assert vector_files.detect_format(found.path) == ("npy" if found.source == "package" else "glove")
    assert kv.index_to_key == glove.index_to_key[:5000]
    np.testing.assert_allclose(kv.vectors, glove.vectors[:5000], atol=1e-6)


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_round_trip(glove, tmp_path, binary):
    small = E.load_vectors("glove-6b-50d-top20k", limit=300)
    path = tmp_path / ("v.bin" if binary else "v.txt")
    small.save_word2vec_format(str(path), binary=binary)
    assert vector_files.detect_format(path) == ("word2vec-bin" if binary else "word2vec")
    back = E.load_vectors(path)
    assert back.index_to_key == small.index_to_key
    np.testing.assert_allclose(back.vectors, small.vectors, atol=1e-6)


def test_fasttext_bin_builds_vectors_for_unseen_words():
    path = datapath("lee_fasttext_new.bin")
    assert vector_files.detect_format(path) == "fasttext-bin"
    kv = E.load_vectors(path)
    word = "governmentalisation"
    assert word not in kv.key_to_index
    assert np.linalg.norm(E.vector(kv, word)) > 0
    assert len(E.nearest(kv, word, 5)) == 5
    assert vector_files.detect_format(datapath("lee_fasttext.vec")) == "word2vec"


def test_wrong_format_flag_is_detected_and_explained(glove):
    path = glove.source_path
    with pytest.raises(ValueError, match=r"looks like GloVe text.*format='glove'"):
        E.load_vectors(path, format="word2vec")
    with pytest.raises(ValueError, match="Unknown format"):
        E.load_vectors(path, format="hdf5")


def test_a_line_of_the_wrong_dimension_names_its_line(tmp_path):
    path = _write_glove(tmp_path / "bad.txt", [_row(b"a", 5), _row(b"b", 5), _row(b"c", 4)])
    with pytest.raises(ValueError, match=r"line 3: expected a word and 5 numbers, found 4"):
        E.load_vectors(path)
    header = tmp_path / "bad.vec"
    header.write_bytes(b"3 5\n" + _row(b"a", 5) + _row(b"b", 6) + _row(b"c", 5))
    with pytest.raises(ValueError, match=r"line 3: expected a word and 5 numbers, found 6"):
        E.load_vectors(header)


def test_not_a_vectors_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello world\nthis is prose\n")
    with pytest.raises(ValueError, match="not a word-vectors file"):
        E.load_vectors(path)
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        E.load_vectors(tmp_path / "empty.txt")
    with pytest.raises(FileNotFoundError, match="neither a vectors file nor a known asset"):
        E.load_vectors("no-such-vectors")


def test_non_utf8_words_are_replaced_and_counted(tmp_path):
    path = _write_glove(tmp_path / "latin1.txt", [_row(b"cafe", 4), _row(b"caf\xe9", 4)])
    kv = E.load_vectors(path)
    assert len(kv) == 2 and kv.decode_errors == 1
    assert "caf\ufffd" in kv.key_to_index


def test_text_reader_matches_gensims(glove):
    """Our block reader gives gensim's words and vectors, compact or as list and dict."""
    from gensim.models import KeyedVectors

    path = glove.source_path
    ref = KeyedVectors.load_word2vec_format(str(path), no_header=True, limit=3000)
    for compact in (True, False):
        kv = E.load_vectors(path, limit=3000, compact=compact)
        assert kv.index_to_key == ref.index_to_key and len(kv) == 3000
        np.testing.assert_array_equal(kv.vectors, ref.vectors)
        assert kv["king"].tolist() == ref["king"].tolist()
        assert isinstance(kv.key_to_index, dict) is not compact


def test_text_reader_takes_vec_quirks(tmp_path):
    """fastText's trailing space, Windows line ends and blank lines all read."""
    rows = [_row(w, 3) for w in (b"a", b"b", b"c")]
    vec = tmp_path / "quirks.vec"
    vec.write_bytes(b"3 3\r\n" + b"".join(r.replace(b"\n", b" \r\n") for r in rows))
    kv = E.load_vectors(vec)
    assert kv.index_to_key == ["a", "b", "c"] and kv.vectors.shape == (3, 3)
    np.testing.assert_allclose(kv["c"], [0.5, 0.51, 0.52])
    blanks = _write_glove(tmp_path / "blanks.txt", [rows[0], b"\n", rows[1], rows[2], b"\n\n"])
    kv = E.load_vectors(blanks)
    assert kv.index_to_key == ["a", "b", "c"] and kv.vectors.shape == (3, 3)
    assert E.load_vectors(blanks, limit=2).index_to_key == ["a", "b"]


def test_split_utf8_sequences_are_caught_word_by_word(tmp_path):
    """A word ending in a lead byte before one starting with a continuation byte."""
    path = _write_glove(tmp_path / "split.txt", [_row(b"the", 3), _row(b"a\xc3", 3),
                                                 _row(b"\xa9b", 3)])
    for compact in (True, False):
        kv = E.load_vectors(path, compact=compact)
        assert kv.decode_errors == 2 and kv.index_to_key == ["the", "a\ufffd", "\ufffdb"]
        assert len(kv.most_similar("the", topn=2)) == 2


def test_repeated_words_keep_their_first_row_as_in_gensim(tmp_path):
    path = _write_glove(tmp_path / "dups.txt", [_row(b"a", 3, 0.1), _row(b"b", 3, 0.2),
                                                _row(b"a", 3, 0.9), _row(b"c", 3, 0.3)])
    for compact in (True, False):
        with pytest.warns(UserWarning, match="1 words occur more than once.*'a'"):
            kv = E.load_vectors(path, compact=compact)
        assert kv.index_to_key == ["a", "b", "c"] and kv.vectors.shape == (3, 3)
        assert len(kv.key_to_index) == 3
        np.testing.assert_allclose(kv["a"], [0.1, 0.11, 0.12])
        np.testing.assert_allclose(kv["c"], [0.3, 0.31, 0.32])
        assert "a" not in [w for w, _ in kv.most_similar("a")]


@pytest.mark.filterwarnings("ignore:Adding single vectors")
def test_norms_follow_added_and_changed_vectors(glove):
    """Norms are filled a block at a time, and cleared when vectors are added or replaced."""
    kv = E.load_vectors(glove.source_path, compact=False)
    assert kv.norms is None  # filled by the first query, not by loading
    kv.most_similar("cat")
    np.testing.assert_allclose(kv.norms, np.linalg.norm(kv.vectors, axis=1), rtol=1e-6)
    kv.add_vector("brandnewword", kv["cat"] * 2)
    assert kv.most_similar("brandnewword", topn=1)[0][0] == "cat"
    kv["dog"] = kv["dog"] * 10
    assert max(s for _, s in kv.most_similar("cat", topn=5)) <= 1 + 1e-6
    matrix = np.ones((5, 2), np.float32)
    assert vector_files._shrink(matrix, 3) is matrix and matrix.shape == (3, 2)  # no copy


def test_truncated_and_damaged_text_files_say_where(tmp_path):
    short = tmp_path / "short.vec"
    short.write_bytes(b"5 3\n" + _row(b"a", 3) + _row(b"b", 3))
    with pytest.raises(ValueError, match=r"header promises 5 vectors but it holds 2"):
        E.load_vectors(short)
    assert E.load_vectors(short, limit=2).index_to_key == ["a", "b"]
    words = _write_glove(tmp_path / "nan.txt", [_row(b"a", 3)] * 4 + [b"b 0.1 zero 0.3\n"])
    with pytest.raises(ValueError, match=r"line 5: expected a word and 3 numbers"):
        E.load_vectors(words)
    # a bad line far into a big file: the number counts every line before its block
    big = _write_glove(tmp_path / "big.txt", [_row(b"w%d" % i, 3) for i in range(60_000)]
                       + [_row(b"bad", 2)])
    with pytest.raises(ValueError, match=r"line 60001: expected a word and 3 numbers, found 2"):
        E.load_vectors(big)


# --------------------------------------------------------------------------- querying and scores


def test_missing_word_gives_a_clear_key_error(glove):
    with pytest.raises(KeyError, match=r"'qwzxvb' is not in the vocabulary.*fastText"):
        E.nearest(glove, "qwzxvb")
    with pytest.raises(KeyError, match="Try 'paris'"):
        E.vector(glove, "Paris")
    assert [w for w, _ in E.nearest(glove, "france", 5)].count("french") == 1


def test_glove_beats_word2vec_on_a_small_corpus_on_wordsim(glove):
    score = E.evaluate_similarity(glove, "wordsim353")
    assert score.spearman > 0.4 and score.covered > 300 and score.pairs == 353
    lee = oov.sentences(oov.read_corpus(oov.Path(datapath("lee_background.cor"))))
    small = E.train_word2vec(lee, epochs=5)
    weak = E.evaluate_similarity(small.wv, "wordsim353")
    assert weak.covered > 50
    assert weak.spearman < score.spearman - 0.25
    assert E.evaluate_similarity(glove, "simlex999").covered > 900


def test_batched_analogies_agree_with_gensim(glove):
    score = E.evaluate_analogies(glove, restrict_vocab=20_000, max_questions=1500)
    assert score.accuracy > 0.3 and score.covered > 800
    assert sum(c for _, c in score.sections.values()) == score.covered
    # the same answers as gensim's most_similar on a handful of questions
    questions = [q for _, q in E._read_analogies(E._dataset("google-analogies"))][::997]
    right = 0
    for a, b, c, d in questions:
        if all(w in glove.key_to_index for w in (a, b, c, d)):
            top = glove.most_similar(positive=[b, c], negative=[a], topn=1)[0][0]
            right += E.analogy(glove, a, b, c, topn=1)[0][0] == top
    assert right == sum(all(w in glove.key_to_index for w in q) for q in questions)


def test_projection_is_2d(glove):
    xy = E.project_2d(glove, ["king", "queen", "man", "woman", "paris"])
    assert xy.shape == (5, 2) and np.all(np.isfinite(xy))
    with pytest.raises(ValueError, match="at least two"):
        E.project_2d(glove, ["king"])


# --------------------------------------------------------------------------- domain continuation


def _initial_vectors(sentences, words, seed=0):
    model = Word2Vec(vector_size=50, window=5, min_count=2, seed=seed, workers=1)
    model.build_vocab(sentences)
    return {w: model.wv[w].copy() for w in words}


def test_locked_continuation_keeps_general_words_bit_for_bit(glove, python_sentences):
    result = E.continue_training(glove, python_sentences, lock=True, epochs=10)
    assert len(result.imported) > 1000 and len(result.new_words) > 500
    for w in result.imported:
        assert np.array_equal(result.wv[w], glove[w]), w
    assert result.mean_drift == 0.0
    # domain words moved from their seeded random start ...
    watch = ["iterable", "metaclass", "__getitem__", "namespace", "tuple"]
    assert set(watch) <= set(result.new_words)
    start = _initial_vectors(python_sentences, watch)
    for w in watch:
        assert not np.allclose(result.wv[w], start[w])
    # ... and their neighbours are words they share a line with, far more often than
    # chance (the share of the vocabulary that shares a line with them)
    vocab = set(result.wv.index_to_key)
    hits, chance = 0, 0.0
    for w in watch:
        together = set().union(*(set(s) for s in python_sentences if w in s)) - {w}
        neighbours = [n for n, _ in E.nearest(result.wv, w, 10)]
        hits += sum(n in together for n in neighbours)
        chance += len(together & vocab) / len(vocab) * 10
        assert any(n in together for n in neighbours), (w, neighbours)
    assert hits >= 3 * chance and hits >= 0.3 * 10 * len(watch), (hits, chance)
    assert result.words_per_second > 0


def test_unlocked_continuation_lets_general_words_drift(glove, python_sentences):
    result = E.continue_training(glove, python_sentences[:3000], lock=False, epochs=3)
    moved = [w for w in result.imported if not np.array_equal(result.wv[w], glove[w])]
    assert len(moved) > 0.9 * len(result.imported)
    assert result.mean_drift > 0


def test_training_rejects_bad_corpora(glove):
    with pytest.raises(ValueError, match="empty"):
        E.continue_training(glove, [[], []])
    with pytest.raises(TypeError, match="not one string"):
        E.train_fasttext("just a string")
    with pytest.raises(TypeError, match="tokens must be str"):
        E.train_word2vec([[1, 2, 3]])


# --------------------------------------------------------------------------- fastText subwords


def _ngrams(word: str, n: int = 4) -> set[str]:
    w = f"<{word}>"
    return {w[i : i + n] for i in range(len(w) - n + 1)}


def test_fasttext_vectors_for_unseen_domain_words(python_sentences):
    model = E.train_fasttext(python_sentences, epochs=5)
    for word in ["__getitems__", "subclassable"]:
        assert word not in model.wv.key_to_index
        assert np.linalg.norm(E.vector(model.wv, word)) > 0
        neighbours = [n for n, _ in E.nearest(model.wv, word, 5)]
        shared = [n for n in neighbours if _ngrams(n) & _ngrams(word)]
        assert len(shared) >= 2, (word, neighbours)
