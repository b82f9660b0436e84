"""The OOV report: exact counts, every corpus form, bad input, real corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlwidgets import oov


@pytest.fixture(scope="module")
def glove_small(shared_assets):
    from tlwidgets.embeddings import load_vectors

    return load_vectors("glove-6b-50d-top20k")


VOCAB = ["the", "cat", "sat", "on", "mat", "dog"]  # most frequent first
TEXT = "The cat sat on the mat. The zorb sat on the flarp flarp!"


def test_counts_are_exact_on_a_constructed_corpus():
    r = oov.oov_report(oov.Text(TEXT), VOCAB, limits=(1, 2, 3))
    assert (r.tokens, r.types) == (13, 7)
    assert (r.covered_tokens, r.covered_types) == (10, 5)
    assert r.top_oov == [("flarp", 2), ("zorb", 1)]
    assert r.unk_share == pytest.approx(3 / 13)
    assert r.type_coverage == pytest.approx(5 / 7)
    # "the" and "on" are stop words; cat sat mat zorb sat flarp flarp are content tokens
    assert (r.content_tokens, r.covered_content_tokens) == (7, 4)
    assert r.content_lost == pytest.approx(3 / 7)
    assert r.coverage_by_limit == pytest.approx({1: 4 / 13, 2: 5 / 13, 3: 7 / 13, 6: 10 / 13})


def test_vocabulary_forms_agree(glove_small):
    words = glove_small.index_to_key
    a = oov.oov_report(oov.Text(TEXT), glove_small)
    b = oov.oov_report(oov.Text(TEXT), words)
    c = oov.oov_report(oov.Text(TEXT), {w: i for i, w in enumerate(words)})
    assert a.summary() == b.summary() == c.summary()


def test_tokens_split_clitics_like_glove():
    assert oov.tokenize("Don't re-use it’s __init__, we'll see") == [
        "do", "n't", "re-use", "it", "'s", "__init__", "we", "'ll", "see"]


def test_corpus_forms(tmp_path):
    (tmp_path / "a.txt").write_text("the cat sat", encoding="utf-8")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.md").write_bytes("the dog caf\u00e9 sat".encode() + b" \xff\xfe ")  # damaged UTF-8
    (sub / "skip.png").write_bytes(b"\x89PNG")
    folder = oov.oov_report(tmp_path, VOCAB)
    assert folder.tokens == 7 and folder.decode_errors == 2 and folder.files == 2
    assert "not valid UTF-8" in " ".join(folder.warnings)
    assert oov.read_corpus(tmp_path).files == 2
    assert oov.oov_report(tmp_path / "a.txt", VOCAB).tokens == 3
    assert oov.oov_report(["the cat", ["sat", "on"]], VOCAB).tokens == 4
    assert oov.oov_report(oov.Text(b"caf\xc3\xa9 ok \xef\xbf\xbd"), VOCAB).decode_errors == 0


def test_bad_corpora_are_explained(tmp_path):
    with pytest.raises(ValueError, match="no word tokens"):
        oov.oov_report(oov.Text(""), VOCAB)
    with pytest.raises(ValueError, match="no word tokens"):
        oov.oov_report(oov.Text(" ... !!"), VOCAB)
    with pytest.raises(TypeError, match="item 1 is int"):
        oov.oov_report(["fine", 3], VOCAB)
    with pytest.raises(TypeError, match="got int"):
        oov.oov_report(42, VOCAB)
    with pytest.raises(FileNotFoundError):
        oov.read_corpus(Path(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no text files"):
        oov.oov_report(Path(tmp_path), VOCAB)


def test_specialised_domain_loses_more_than_general_text(glove_small):
    domain = oov.oov_report(oov.python_reference(), glove_small)
    general = oov.oov_report(oov.ewt_corpus(), glove_small)
    assert domain.tokens > 50_000 and general.tokens > 40_000
    assert domain.unk_share > general.unk_share
    assert domain.content_lost > general.content_lost
    assert domain.type_coverage < general.type_coverage
    # coverage grows with the vocabulary limit and ends at the full report's value
    values = list(domain.coverage_by_limit.values())
    assert values == sorted(values)
    assert values[-1] == pytest.approx(domain.token_coverage)


def test_sentences_are_token_lists():
    sents = oov.sentences(oov.Text("One line here.\n\nAnd it's another."))
    assert sents == [["one", "line", "here"], ["and", "it", "'s", "another"]]
