"""The Keras genre classifier: pretrained Embedding initialisation helps when labels are few."""

from __future__ import annotations

import numpy as np
import pytest

from tlwidgets import embedding_classifier as C
from tlwidgets.embeddings import load_vectors


@pytest.fixture(scope="module")
def glove(shared_assets):
    return load_vectors("glove-6b-50d-top20k")


@pytest.fixture(scope="module")
def genres(shared_assets):
    return C.genre_data()


def test_genre_labels_come_from_sent_ids(genres):
    texts, labels, names = genres
    assert names == ["answers", "email", "newsgroup", "reviews", "weblog"]
    assert len(texts) == len(labels) == 4078
    assert np.bincount(labels).tolist() == [857, 1129, 558, 1089, 445]


def test_vocabulary_uses_pretrained_rows_for_known_words(glove):
    vocab = C.make_vocabulary(["the zorbly cat"], glove, other_texts=["a dog", "a qwzxv"])
    assert vocab.words == ["the", "zorbly", "cat", "a", "dog"]  # unknown test word left out
    np.testing.assert_array_equal(vocab.matrix[vocab.index["dog"]], glove["dog"])
    assert vocab.pretrained_rows == 4
    ids = C.encode(["the qwzxv", "!!"], vocab, maxlen=4)
    assert ids.tolist() == [[2, C.UNK, 0, 0], [C.UNK, 0, 0, 0]]


def test_frozen_embedding_stays_fixed_and_finetuned_moves(glove, genres):
    texts, labels, _ = genres
    vocab = C.make_vocabulary(texts[:40], glove)
    x = C.encode(texts[:40], vocab)
    for method, should_move in [("frozen", False), ("finetune", True)]:
        run = C._Runner(vocab, 5, method)
        run.fit_predict(x, labels[:40], x[:2], epochs=3, seed=0)
        moved = not np.array_equal(run.model.get_layer("embedding").get_weights()[0], vocab.matrix)
        assert moved is should_move, method


def test_pretrained_embedding_beats_random_with_few_labels(glove, genres):
    texts, labels, _ = genres
    rows = C.learning_curve(texts, labels, glove, sizes=(50,), methods=("random", "frozen", "bow"),
                            seeds=(0, 1, 2), epochs=40)
    acc = {m: np.mean([r["accuracy"] for r in rows if r["method"] == m])
           for m in ("random", "frozen", "bow")}
    assert acc["frozen"] > acc["random"] + 0.01, acc
    assert all(0.0 < a < 1.0 for a in acc.values())


def test_bad_methods_and_sizes(glove, genres):
    texts, labels, _ = genres
    with pytest.raises(ValueError, match="Unknown methods"):
        C.learning_curve(texts, labels, glove, methods=("svm",))
    with pytest.raises(ValueError, match="exceeds"):
        C.learning_curve(texts, labels, glove, sizes=(5000,), methods=("bow",))
