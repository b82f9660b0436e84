"""Does a pretrained Embedding layer help a text classifier with few labels?

A deliberately small Keras model: token ids -> ``Embedding`` -> average -> softmax.
Its Embedding layer is

* ``"random"``: initialised at random and trained;
* ``"frozen"``: initialised from pretrained vectors and kept fixed (a featuriser);
* ``"finetune"``: initialised from pretrained vectors and trained further;

compared with a bag-of-words logistic regression (``"bow"``). The task is real:
the genre of a UD English-EWT sentence (answers, email, newsgroup, reviews,
weblog), read from its ``sent_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tlwidgets.oov import ewt_sentences, tokenize

__all__ = [
    "METHODS",
    "Vocabulary",
    "build_classifier",
    "encode",
    "fit_predict",
    "genre_data",
    "learning_curve",
    "make_vocabulary",
]

METHODS = ("random", "frozen", "finetune", "bow")
PAD, UNK = 0, 1


def genre_data(splits: Sequence[str] = ("dev", "test")) -> tuple[list[str], np.ndarray, list[str]]:
    """Sentences, integer genre labels and the genre names, from UD English-EWT."""
    rows = ewt_sentences(splits)
    genres = [sent_id.split("-", 1)[0] for sent_id, _ in rows]
    names = sorted(set(genres))
    lookup = {g: i for i, g in enumerate(names)}
    return [t for _, t in rows], np.array([lookup[g] for g in genres]), names


@dataclass
class Vocabulary:
    """Token -> id (0 padding, 1 unknown), and the embedding matrix it implies."""

    words: list[str]
    index: dict[str, int]
    matrix: np.ndarray  # (len(words) + 2, dim): pretrained rows where known, small random else
    pretrained_rows: int

    def __len__(self) -> int:
        return len(self.words) + 2


def make_vocabulary(train_texts: Sequence[str], kv=None, *, other_texts: Sequence[str] = (),
                    dim: int = 50, seed: int = 0) -> Vocabulary:
    """Every training word, plus the words of ``other_texts`` that the pretrained set knows.

    Words the labelled set never shows still get pretrained vectors (that is what
    transfers to the test sentences); only the words used are kept, so the
    Embedding layer stays small.
    """
    known = kv.key_to_index if kv is not None else {}
    words: list[str] = []
    seen: set[str] = set()
    for texts, only_known in ((train_texts, False), (other_texts, True)):
        for text in texts:
            for tok in tokenize(text):
                if tok not in seen and (not only_known or tok in known):
                    seen.add(tok)
                    words.append(tok)
    index = {w: i + 2 for i, w in enumerate(words)}
    dim = kv.vector_size if kv is not None else dim
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-0.05, 0.05, size=(len(words) + 2, dim)).astype(np.float32)
    matrix[PAD] = 0.0
    rows = [(i, known[w]) for w, i in index.items() if w in known]
    if rows:
        ours, theirs = np.array(rows).T
        matrix[ours] = kv.vectors[theirs]
    return Vocabulary(words, index, matrix, len(rows))


def encode(texts: Sequence[str], vocab: Vocabulary, maxlen: int = 48) -> np.ndarray:
    """Token ids, padded/truncated to ``maxlen`` (unknown words -> 1)."""
    out = np.zeros((len(texts), maxlen), dtype=np.int32)
    for i, text in enumerate(texts):
        ids = [vocab.index.get(t, UNK) for t in tokenize(text)][:maxlen] or [UNK]
        out[i, : len(ids)] = ids
    return out


def build_classifier(vocab: Vocabulary, n_classes: int, method: str, *,
                     learning_rate: float = 0.01):
    """The Keras model for ``method`` in ``random``, ``frozen``, ``finetune`` (see :func:`initial_weights`)."""
    import keras

    if method not in METHODS[:3]:
        raise ValueError(f"method must be one of {METHODS[:3]} for a Keras model, not {method!r}.")
    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        keras.layers.Embedding(len(vocab), vocab.matrix.shape[1], mask_zero=True,
                               trainable=method != "frozen", name="embedding"),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(n_classes, activation="softmax", name="genre"),
    ])
    # A tiny model: XLA compilation would cost more than it saves; 16 steps per call.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=False, steps_per_execution=16)
    model.optimizer.build(model.trainable_variables)
    return model


def initial_weights(vocab: Vocabulary, n_classes: int, method: str, seed: int) -> list[np.ndarray]:
    """Seeded starting weights: Embedding (pretrained rows or uniform +-0.05), Dense (Glorot)."""
    rng = np.random.default_rng(seed)
    dim = vocab.matrix.shape[1]
    if method == "random":
        emb = rng.uniform(-0.05, 0.05, size=vocab.matrix.shape).astype(np.float32)
    else:
        emb = vocab.matrix.copy()
    limit = np.sqrt(6.0 / (dim + n_classes))
    kernel = rng.uniform(-limit, limit, size=(dim, n_classes)).astype(np.float32)
    return [emb, kernel, np.zeros(n_classes, dtype=np.float32)]


class _Runner:
    """One compiled model per method, reset to fresh seeded weights for each run (no retracing)."""

    def __init__(self, vocab: Vocabulary, n_classes: int, method: str):
        self.vocab, self.n_classes, self.method = vocab, n_classes, method
        self.model = build_classifier(vocab, n_classes, method)
        self.fresh_optimizer = [v.numpy() for v in self.model.optimizer.variables]

    def fit_predict(self, x, y, x_test, *, epochs: int, seed: int) -> np.ndarray:
        import keras

        keras.utils.set_random_seed(seed)
        self.model.set_weights(initial_weights(self.vocab, self.n_classes, self.method, seed))
        for var, value in zip(self.model.optimizer.variables, self.fresh_optimizer, strict=True):
            var.assign(value)
        # ``epochs`` shuffled passes laid end to end and fitted as one: Keras's per-epoch
        # overhead dwarfs a step of this model when the labelled set is tiny.
        rng = np.random.default_rng(seed)
        order = np.concatenate([rng.permutation(len(x)) for _ in range(epochs)])
        self.model.fit(x[order], np.asarray(y)[order], epochs=1, batch_size=32, shuffle=False,
                       verbose=0)
        # A direct call: for one small test set, tracing ``predict`` costs more than it saves.
        return np.asarray(self.model(x_test, training=False)).argmax(axis=1)


def _bow_predict(train_texts, train_labels, test_texts) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    clf = make_pipeline(TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None),
                        LogisticRegression(max_iter=2000, C=10.0))
    return clf.fit(list(train_texts), train_labels).predict(list(test_texts))


def fit_predict(method: str, train_texts, train_labels, test_texts, kv, *, n_classes: int,
                epochs: int = 20, seed: int = 0) -> np.ndarray:
    """Train one method on the labelled texts; return its predictions for the test texts."""
    if method == "bow":
        return _bow_predict(train_texts, train_labels, test_texts)
    vocab = make_vocabulary(train_texts, kv, other_texts=test_texts, seed=seed)
    run = _Runner(vocab, n_classes, method)
    return run.fit_predict(encode(train_texts, vocab), train_labels, encode(test_texts, vocab),
                           epochs=epochs, seed=seed)


def learning_curve(
    texts: Sequence[str],
    labels: np.ndarray,
    kv,
    *,
    sizes: Sequence[int] = (50, 100, 200, 400, 800),
    methods: Sequence[str] = METHODS,
    test_size: int = 1000,
    seeds: Sequence[int] = (0,),
    epochs: int = 20,
) -> list[dict]:
    """Test accuracy of each method as the labelled set grows (stratified samples).

    One row per (method, size, seed): ``{"method", "size", "seed", "accuracy"}``.
    The test set is the same for every row. The Embedding layer's vocabulary is
    every word of the labelled pool plus the test words the pretrained set knows.
    """
    from sklearn.model_selection import train_test_split

    texts = list(texts)
    labels = np.asarray(labels)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels.")
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"Unknown methods {sorted(unknown)}; choose from {METHODS}.")
    n_classes = int(labels.max()) + 1
    pool_x, test_x, pool_y, test_y = train_test_split(
        texts, labels, test_size=test_size, stratify=labels, random_state=0)
    if max(sizes) > len(pool_x):
        raise ValueError(f"The largest size {max(sizes)} exceeds the {len(pool_x)} labelled "
                         "sentences left after the test split.")
    vocab = make_vocabulary(pool_x, kv, other_texts=test_x)
    pool_ids, test_ids = encode(pool_x, vocab), encode(test_x, vocab)
    runners = {m: _Runner(vocab, n_classes, m) for m in methods if m != "bow"}
    positions = np.arange(len(pool_x))
    rows = []
    for seed in seeds:
        for size in sizes:
            if size < len(pool_x):
                pick = train_test_split(positions, train_size=size, stratify=pool_y,
                                        random_state=seed)[0]
            else:
                pick = positions
            for method in methods:
                if method == "bow":
                    pred = _bow_predict([pool_x[i] for i in pick], pool_y[pick], test_x)
                else:
                    pred = runners[method].fit_predict(pool_ids[pick], pool_y[pick], test_ids,
                                                       epochs=epochs, seed=seed)
                rows.append({"method": method, "size": int(size), "seed": int(seed),
                             "accuracy": float(np.mean(pred == test_y))})
    return rows
