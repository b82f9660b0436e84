"""Shared trunk, task heads, loss weighting and masking, on real EWT sentences."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from tlwidgets import assets
from tlwidgets import multitask as mt
from tlwidgets.conll import Sentence, load_ewt
from tlwidgets.learning_curves import summarise_curves


@pytest.fixture(scope="module")
def dev():
    return load_ewt("dev")[:120]


@pytest.fixture(scope="module")
def vocab(dev):
    return mt.Vocabulary.fit(dev)


def small_model(vocab, names=("ner", "pos"), **kwargs):
    lm_words = vocab.words[2:50] if "lm" in names else ()
    tasks = mt.make_tasks(names, lm_words=lm_words)
    kwargs = {"units": 8, "head_units": 8, "dropout": 0.0, **kwargs}
    return mt.build_multitask_model(vocab, tasks, **kwargs), tasks


def one_batch(data, n=16):
    x, y, _ = next(mt.batches(data, n))
    return x, y


def grads(model, x, y, loss_fn):
    with tf.GradientTape() as tape:
        loss = loss_fn(model.task_losses(y, model(x, training=True)))
    variables = model.trainable_variables
    dense = [None if g is None else tf.convert_to_tensor(g)  # embeddings give IndexedSlices
             for g in tape.gradient(loss, variables)]
    return dict(zip([v.path for v in variables], dense, strict=True))


def nonzero(g):
    return {k for k, v in g.items() if v is not None and float(tf.reduce_max(tf.abs(v))) > 0}


# ----------------------------------------------------------------------------- encoding


def test_vocabulary_and_casing():
    s = [Sentence("a", ("The", "cat", "the", "dog", "THE")), Sentence("b", ("cat", "Paris"))]
    v = mt.Vocabulary.fit(s, min_count=2)
    assert v.words == ["<pad>", "<unk>", "the", "cat"]
    assert v.encode(["THE", "Cat", "Paris"]) == [2, 3, mt.UNK]
    assert [mt.casing(t) for t in ("word", "Word", "NASA", "2004", "iPhone", ",")] == [
        1, 2, 3, 4, 5, 5]


def test_encode_masks_missing_labels_and_drops_unlabelled(dev, vocab):
    tasks = mt.make_tasks(["ner", "pos"])
    sents = [dev[0], replace(dev[1], ner=None), replace(dev[2], ner=None, upos=None)]
    data = mt.encode(sents, vocab, tasks)
    assert len(data) == 2  # the sentence with no label at all is dropped
    assert (data.targets["ner"][1] == mt.IGNORE).all()
    assert (data.targets["pos"][1] >= 0).all()
    assert data.labelled("ner") == 1 and data.labelled("pos") == 2
    expected = [tasks[1].labels.index(t) for t in dev[1].upos]
    assert data.targets["pos"][1].tolist() == expected


def test_lm_targets_are_the_next_word(dev, vocab):
    tasks = mt.make_tasks(["lm"], lm_words=["the", "of"])
    s = Sentence("x", ("In", "the", "house", "of", "the", "Lord"))
    y = mt.encode([s], vocab, tasks).targets["lm"][0]
    assert y.tolist() == [1, 0, 2, 1, 0, mt.IGNORE]


def test_task_without_labels_and_unknown_tags_are_errors(dev, vocab):
    tasks = mt.make_tasks(["ner", "pos"])
    no_ner = [replace(s, ner=None) for s in dev[:5]]
    with pytest.raises(ValueError, match="Task 'ner' has no labelled sentence"):
        mt.encode(no_ner, vocab, tasks)
    bad = replace(dev[0], ner=("B-MISC",) + dev[0].ner[1:])
    with pytest.raises(ValueError, match="tag 'B-MISC' is not a ner label"):
        mt.encode([bad], vocab, tasks)
    with pytest.raises(ValueError, match="Unknown task 'chunk'"):
        mt.make_tasks(["ner", "chunk"])
    with pytest.raises(ValueError, match="needs lm_words"):
        mt.make_tasks(["lm"])


def test_batches_pad_to_the_longest_and_cover_every_sentence(dev, vocab):
    data = mt.encode(dev, vocab, mt.make_tasks(["pos"]))
    seen = []
    for x, y, idx in mt.batches(data, 16, shuffle=True, rng=np.random.default_rng(0)):
        lengths = [len(data.words[i]) for i in idx]
        assert x["words"].shape == (len(idx), max(lengths)) == y["pos"].shape
        assert all((x["words"][r, n:] == mt.PAD).all() and (y["pos"][r, n:] == mt.IGNORE).all()
                   for r, n in enumerate(lengths))
        seen += idx.tolist()
    assert sorted(seen) == list(range(len(data)))


def test_mixed_batches_pair_end_task_sentences_with_auxiliary_ones(dev, vocab):
    sents = [s if i < 20 else replace(s, ner=None) for i, s in enumerate(dev)]
    data = mt.encode(sents, vocab, mt.make_tasks(["ner", "pos"]))
    seen = []
    for _, y, idx in mt.batches(data, 8, shuffle=True, rng=np.random.default_rng(1), mix="ner"):
        has_ner = (y["ner"] >= 0).any(axis=1)
        assert has_ner.sum() == min(8, len(idx) - 8) and (~has_ner).sum() == 8
        seen += [i for i in idx.tolist() if i < 20]
    assert sorted(seen) == list(range(20))  # one pass covers the NER sentences once


# ----------------------------------------------------------------------------- model


def test_heads_share_exactly_the_trunk_variables(dev, vocab):
    model, tasks = small_model(vocab)
    x, y = one_batch(mt.encode(dev, vocab, tasks))
    reached = {t.name: nonzero(grads(model, x, y, lambda ls, n=t.name: ls[n])) for t in tasks}
    trunk = {v.path for v in model.trunk.trainable_variables}
    heads = {t.name: {v.path for v in model.head_variables(t.name)} for t in tasks}
    # Each task's loss reaches the whole trunk and its own head, nothing else...
    for t in tasks:
        assert reached[t.name] == trunk | heads[t.name]
    # ...so the variables both tasks train are exactly the trunk's.
    assert reached["ner"] & reached["pos"] == trunk
    assert not heads["ner"] & heads["pos"]


def test_zero_weight_sends_no_gradient_into_the_trunk(dev, vocab):
    model, tasks = small_model(vocab, loss_weights={"ner": 1.0, "pos": 0.0})
    x, y = one_batch(mt.encode(dev, vocab, tasks))
    total = grads(model, x, y, model.combine)
    ner_only = grads(model, x, y, lambda ls: ls["ner"])
    pos_heads = {v.path for v in model.head_variables("pos")}
    assert not nonzero(total) & pos_heads
    for path, g in ner_only.items():
        if path not in pos_heads:
            np.testing.assert_allclose(total[path], g, rtol=1e-5, atol=1e-7)
    model.set_loss_weights({"ner": 1.0, "pos": 0.5})
    weighted = grads(model, x, y, model.combine)
    trunk = [v.path for v in model.trunk.trainable_variables]
    assert any(not np.allclose(weighted[p], ner_only[p]) for p in trunk)
    assert pos_heads <= nonzero(weighted)


def test_zero_weight_head_is_untouched_by_training(dev, vocab):
    model, tasks = small_model(vocab, loss_weights={"ner": 0.0, "pos": 1.0})
    before_ner = [v.numpy() for v in model.head_variables("ner")]
    before_trunk = [v.numpy() for v in model.trunk.trainable_variables]
    mt.train(model, mt.encode(dev, vocab, tasks), steps=3, batch_size=16)
    for b, v in zip(before_ner, model.head_variables("ner"), strict=True):
        np.testing.assert_array_equal(b, v.numpy())
    assert any(not np.array_equal(b, v.numpy())
               for b, v in zip(before_trunk, model.trunk.trainable_variables, strict=True))


def test_sentences_without_ner_labels_give_ner_no_loss_but_train_the_trunk(dev, vocab):
    model, tasks = small_model(vocab)
    pos_only = [replace(s, ner=None) for s in dev[:16]]
    x, y = one_batch(mt.encode(pos_only, vocab, tasks, require_labels=False), n=16)
    assert (y["ner"] == mt.IGNORE).all() and (y["pos"] >= 0).any()
    assert float(model.task_losses(y, model(x))["ner"]) == 0.0
    g = grads(model, x, y, model.combine)
    assert {v.path for v in model.trunk.trainable_variables} <= nonzero(g)
    assert not nonzero(g) & {v.path for v in model.head_variables("ner")}


@pytest.mark.parametrize("encoder", ["bilstm", "cnn"])
def test_padding_changes_neither_predictions_nor_loss(dev, vocab, encoder):
    model, tasks = small_model(vocab, encoder=encoder)
    data = mt.encode(dev[:1], vocab, tasks)
    x, y, _ = next(mt.batches(data, 1))
    n = x["words"].shape[1]
    xp = {k: np.pad(v, ((0, 0), (0, 5))) for k, v in x.items()}
    yp = {k: np.pad(v, ((0, 0), (0, 5)), constant_values=mt.IGNORE) for k, v in y.items()}
    out, outp = model(x), model(xp)
    for name in out:
        np.testing.assert_allclose(out[name], np.asarray(outp[name])[:, :n], rtol=1e-5, atol=1e-6)
    a, b = model.task_losses(y, out), model.task_losses(yp, outp)
    for name in a:
        assert float(a[name]) == pytest.approx(float(b[name]), rel=1e-5)


def test_uncertainty_weights_are_trainable_and_follow_kendall(dev, vocab):
    model, tasks = small_model(vocab, ("ner", "pos", "lm"), weighting="uncertainty")
    assert any(v is model.log_variances for v in model.trainable_variables)
    lr = 0.1
    model.compile(optimizer=keras.optimizers.SGD(lr), jit_compile=False)
    x, y = one_batch(mt.encode(dev, vocab, tasks))
    losses = {k: float(v) for k, v in model.task_losses(y, model(x, training=True)).items()}
    model.train_on_batch(x, y)
    moved = model.log_variances.numpy()
    # d/ds [exp(-s) L + s/2] at s = 0 is 1/2 - L, so SGD moves s by lr (L - 1/2).
    expected = [lr * (losses[n] - 0.5) for n in model.task_names]
    np.testing.assert_allclose(moved, expected, rtol=1e-4, atol=1e-6)
    assert np.argmax(moved) == model.task_names.index("lm")  # hardest task: smallest weight
    w = model.loss_weights_
    assert w["lm"] < w["pos"] and w["lm"] < w["ner"]


def test_fixed_weighting_keeps_log_variances_frozen(dev, vocab):
    model, tasks = small_model(vocab)
    assert not any(v is model.log_variances for v in model.trainable_variables)
    mt.train(model, mt.encode(dev, vocab, tasks), steps=2, batch_size=16)
    assert np.all(model.log_variances.numpy() == 0)
    assert model.loss_weights_ == {"ner": 1.0, "pos": 1.0}


@pytest.mark.parametrize("weights, says", [
    ({"ner": -1.0}, "finite and >= 0"),
    ({"ner": float("nan")}, "finite and >= 0"),
    ({"ner": 0.0, "pos": 0.0}, "All loss weights are zero"),
    ({"chunk": 1.0}, "unknown tasks"),
])
def test_bad_loss_weights(vocab, weights, says):
    tasks = mt.make_tasks(["ner", "pos"])
    with pytest.raises(ValueError, match=says):
        mt.build_multitask_model(vocab, tasks, units=4, loss_weights=weights)


def test_next_word_head_needs_the_bilstm(vocab):
    with pytest.raises(ValueError, match="left-to-right states"):
        small_model(vocab, ("ner", "lm"), encoder="cnn")
    with pytest.raises(ValueError, match="encoder must be"):
        small_model(vocab, ("ner",), encoder="transformer")


def test_training_learns_pos_tags(dev, vocab):
    model, tasks = small_model(vocab, ("pos",), units=16, learning_rate=1e-2)
    data = mt.encode(dev, vocab, tasks)
    before = mt.evaluate(model, data)["pos_accuracy"]
    history = mt.train(model, data, epochs=6, batch_size=16)
    after = mt.evaluate(model, data)["pos_accuracy"]
    assert history.history["pos_loss"][-1] < history.history["pos_loss"][0]
    assert after > 0.6 and after > before + 0.3


def test_evaluate_reports_entity_f1_from_predicted_tags(dev, vocab):
    model, tasks = small_model(vocab)
    data = mt.encode(dev[:30], vocab, tasks)
    pred = mt.predict_tags(model, data, "ner")
    assert [len(p) for p in pred] == [len(s) for s in dev[:30]]
    from tlwidgets.ner_metrics import entity_scores

    gold = [list(s.ner) for s in dev[:30]]
    scores = mt.evaluate(model, data)
    assert scores["ner_f1"] == entity_scores(gold, pred)["f1"]
    assert 0 <= scores["pos_accuracy"] <= 1


def test_glove_initialisation(vocab):
    path = assets.resolve("glove-6b-50d-top20k").path
    v = mt.Vocabulary(["the", "qzxqzxq"])
    matrix, found = v.embedding_matrix(path)
    assert matrix.shape == (4, 50) and found == 0.5
    first = path.read_text(encoding="utf-8").split("\n", 1)[0].split()
    assert first[0] == "the"
    np.testing.assert_allclose(matrix[2], np.asarray(first[1:], dtype="float32"))
    assert not matrix[0].any()
    from tlwidgets.embeddings import load_vectors

    same, _ = v.embedding_matrix(load_vectors(path))  # loaded vectors serve as well as a file
    np.testing.assert_array_equal(same, matrix)
    assert np.abs(matrix[3]).max() <= 0.05  # no vector: started as Keras starts an Embedding
    with pytest.raises(ValueError, match="50-d, not 100-d"):
        v.embedding_matrix(path, dim=100)
    model, _ = small_model(v, ("pos",), embeddings=matrix, train_embeddings=False)
    layer = model.trunk.get_layer("word_embedding")
    np.testing.assert_allclose(layer.embeddings.numpy(), matrix)
    assert not layer.trainable


def test_subsample_labels_and_summary(dev):
    sub = mt.subsample_labels(dev, "ner", 10, seed=1)
    assert sum(s.ner is not None for s in sub) == 10
    assert all(s.upos is not None for s in sub) and len(sub) == len(dev)
    assert mt.subsample_labels(dev, "ner", 10, seed=1) == sub
    with pytest.raises(ValueError, match="only 120 have labels"):
        mt.subsample_labels(dev, "ner", 500)
    rows = [{"domain": "", "method": "a", "size": 10, "n_train": 10, "metric": "ner_f1",
             "score": f} for f in (0.2, 0.4)]
    s = summarise_curves(rows)["a"][10]
    assert s["mean"] == pytest.approx(0.3) and s["std"] == pytest.approx(np.std([0.2, 0.4], ddof=1))


def test_ner_learning_curve_records(dev):
    sents = dev[:40]
    seen = []
    rows = mt.compare_learning_curves(
        sents, dev[40:60], sizes=(10, None), configs={"NER only": ["ner"]}, repeats=2, steps=2,
        glove=False, metrics=("ner_f1", "ner_recall"), progress=seen.append, encoder="cnn",
        units=4, head_units=4)
    assert seen == rows
    assert [(r["size"], r["n_train"], r["seed"], r["metric"]) for r in rows] == [
        (10, 10, 0, "ner_f1"), (10, 10, 0, "ner_recall"), (10, 10, 1, "ner_f1"),
        (10, 10, 1, "ner_recall"), (None, 40, 0, "ner_f1"), (None, 40, 0, "ner_recall"),
        (None, 40, 1, "ner_f1"), (None, 40, 1, "ner_recall")]
    assert {r["size_unit"] for r in rows} == {"NER-labelled sentences"}
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)
    with pytest.raises(ValueError, match="only 40 have labels"):
        mt.compare_learning_curves(sents, dev[40:60], sizes=(41,), configs={"a": ["ner"]})
    with pytest.raises(ValueError, match=r"\['pos_accuracy'\] are not measured for 'a'"):
        mt.compare_learning_curves(sents, dev[40:60], sizes=(5,), configs={"a": ["ner"]},
                                   glove=False, metrics=("pos_accuracy",))


def test_glove_vocabulary_keeps_test_words_known_in_every_run():
    """Test words with a GloVe vector get their id and vector even if no training
    sentence holds them, and stay known when a run restricts the vocabulary to its
    own sentences (the old vocabulary mapped them to <unk>: a fifth of test tokens)."""
    train = [Sentence("a", ("The", "cat", "sat", "the", "qzxqzxq", "qzxqzxq")),
             Sentence("b", ("Boston", "rain"))]
    test = [Sentence("t", ("Seattle", "cat", "wqwqwq"))]
    vocab, matrix, found = mt.pretrained_vocabulary(train, "glove-6b-50d-top20k", also=test)
    assert vocab.words[2:4] == ["qzxqzxq", "the"]  # seen twice, GloVe or not
    assert {"seattle", "boston", "cat", "sat", "rain"} <= set(vocab.words)
    assert "wqwqwq" not in vocab.words  # once, test only and not in GloVe: unknown
    assert vocab.pretrained == {"the", "cat", "sat", "boston", "rain", "seattle"}
    assert matrix.shape == (len(vocab), 50) and found == pytest.approx(6 / 7)
    path = assets.resolve("glove-6b-50d-top20k").path
    ref, _ = vocab.embedding_matrix(path)
    np.testing.assert_allclose(matrix[vocab.index["seattle"]], ref[vocab.index["seattle"]])
    # A run on sentence "b" alone still knows GloVe words, not the unseen rare one.
    run = mt.Vocabulary.fit(train[1:], base=vocab)
    assert run.encode(["Seattle", "the", "qzxqzxq"]) == [
        vocab.index["seattle"], vocab.index["the"], mt.UNK]
    assert len(run) == len(vocab)

