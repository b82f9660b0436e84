"""The Keras genre classifier: pretrained Embedding initialisation helps when labels are few."""

from __future__ import annotations

import numpy as np
import pytest

from tlwidgets import embedding_classifier as C
from tlwidgets.embeddings import load_vectors
from tlwidgets.learning_curves import summarise_curves
from tlwidgets.oov import tokenize
from tlwidgets.word_ids import pretrained_vocabulary


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
    vocab, matrix, found = pretrained_vocabulary(
        [tokenize("the zorbly cat")], glove, also=[tokenize("a dog"), tokenize("a qwzxv")],
        min_count=1, max_size=None)
    # Training words by frequency (ties alphabetical), then the test words GloVe knows.
    assert vocab.words == ["<pad>", "<unk>", "cat", "the", "zorbly", "a", "dog"]
    np.testing.assert_array_equal(matrix[vocab.index["dog"]], glove["dog"])
    assert vocab.pretrained == {"the", "cat", "a", "dog"} and found == 4 / 5
    ids = C.encode(["the qwzxv", "!!"], vocab, maxlen=4)
    assert ids.tolist() == [[3, C.UNK, 0, 0], [C.UNK, 0, 0, 0]]


def test_frozen_embedding_stays_fixed_and_finetuned_moves(glove, genres):
    texts, labels, _ = genres
    vocab, matrix, _ = pretrained_vocabulary([tokenize(t) for t in texts[:40]], glove,
                                             min_count=1, max_size=None)
    x = C.encode(texts[:40], vocab)
    for method, should_move in [("frozen", False), ("finetune", True)]:
        run = C._Runner(matrix, 5, method)
        run.fit_predict(x, labels[:40], x[:2], epochs=3, seed=0)
        moved = not np.array_equal(run.model.get_layer("embedding").get_weights()[0], matrix)
        assert moved is should_move, method


def test_pretrained_embedding_beats_random_with_few_labels(glove, genres):
    texts, labels, _ = genres
    rows = C.compare_learning_curves(texts, labels, glove, sizes=(50,),
                                     methods=("random", "frozen", "bow"), repeats=3, epochs=40)
    assert {(r["size"], r["size_unit"], r["n_train"], r["metric"]) for r in rows} == {
        (50, "labelled sentences", 50, "accuracy")}
    assert [r["seed"] for r in rows] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    acc = {m: s[50]["mean"] for m, s in summarise_curves(rows).items()}
    assert acc["frozen"] > acc["random"] + 0.01, acc
    assert all(0.0 < a < 1.0 for a in acc.values())


def test_bad_methods_and_sizes(glove, genres):
    texts, labels, _ = genres
    with pytest.raises(ValueError, match="Unknown methods"):
        C.compare_learning_curves(texts, labels, glove, methods=("svm",))
    with pytest.raises(ValueError, match="exceeds"):
        C.compare_learning_curves(texts, labels, glove, sizes=(5000,), methods=("bow",))
    with pytest.raises(ValueError, match="write None"):
        C.compare_learning_curves(texts, labels, glove, sizes=(0,), methods=("bow",))
