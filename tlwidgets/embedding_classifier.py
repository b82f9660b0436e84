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

import numpy as np

from tlwidgets.learning_curves import Draw, Stratified, check_size, learning_curve
from tlwidgets.oov import ewt_sentences, tokenize
from tlwidgets.word_ids import UNK, Vocabulary, pretrained_vocabulary

__all__ = [
    "METHODS",
    "UNK",
    "build_classifier",
    "compare_learning_curves",
    "encode",
    "genre_data",
]

METHODS = ("random", "frozen", "finetune", "bow")


def genre_data(splits: Sequence[str] = ("dev", "test")) -> tuple[list[str], np.ndarray, list[str]]:
    """Sentences, integer genre labels and the genre names, from UD English-EWT."""
    rows = ewt_sentences(splits)
    genres = [sent_id.split("-", 1)[0] for sent_id, _ in rows]
    names = sorted(set(genres))
    lookup = {g: i for i, g in enumerate(names)}
    return [t for _, t in rows], np.array([lookup[g] for g in genres]), names


def encode(texts: Sequence[str], vocab: Vocabulary, maxlen: int = 48) -> np.ndarray:
    """Token ids, padded/truncated to ``maxlen`` (unknown words -> 1)."""
    return vocab.encode_padded([tokenize(t) for t in texts], maxlen)


def build_classifier(matrix: np.ndarray, n_classes: int, method: str, *,
                     learning_rate: float = 0.01):
    """The Keras model for ``method`` in ``random``, ``frozen``, ``finetune``, over an
    Embedding of ``matrix``'s shape (see :func:`initial_weights`)."""
    import keras

    if method not in METHODS[:3]:
        raise ValueError(f"method must be one of {METHODS[:3]} for a Keras model, not {method!r}.")
    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        keras.layers.Embedding(*matrix.shape, mask_zero=True, trainable=method != "frozen",
                               name="embedding"),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(n_classes, activation="softmax", name="genre"),
    ])
    # A tiny model: XLA compilation would cost more than it saves; 16 steps per call.
    from tlwidgets.training import release_traced_gradients

    release_traced_gradients()  # earlier models' graphs may go
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=False, steps_per_execution=16)
    model.optimizer.build(model.trainable_variables)
    return model


def initial_weights(matrix: np.ndarray, n_classes: int, method: str,
                    seed: int) -> list[np.ndarray]:
    """Seeded starting weights: Embedding (``matrix``, or uniform +-0.05 for ``"random"``),
    Dense (Glorot)."""
    rng = np.random.default_rng(seed)
    dim = matrix.shape[1]
    if method == "random":
        emb = rng.uniform(-0.05, 0.05, size=matrix.shape).astype(np.float32)
    else:
        emb = matrix.copy()
    limit = np.sqrt(6.0 / (dim + n_classes))
    kernel = rng.uniform(-limit, limit, size=(dim, n_classes)).astype(np.float32)
    return [emb, kernel, np.zeros(n_classes, dtype=np.float32)]


class _Runner:
    """One compiled model per method, reset to fresh seeded weights for each run (no retracing)."""

    def __init__(self, matrix: np.ndarray, n_classes: int, method: str):
        self.matrix, self.n_classes, self.method = matrix, n_classes, method
        self.model = build_classifier(matrix, n_classes, method)
        self.fresh_optimizer = [v.numpy() for v in self.model.optimizer.variables]

    def fit_predict(self, x, y, x_test, *, epochs: int, seed: int) -> np.ndarray:
        import keras

        keras.utils.set_random_seed(seed)
        self.model.set_weights(initial_weights(self.matrix, self.n_classes, self.method, seed))
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


def compare_learning_curves(
    texts: Sequence[str],
    labels: np.ndarray,
    kv,
    *,
    sizes: Sequence[int | None] = (50, 100, 200, 400, 800),
    methods: Sequence[str] = METHODS,
    test_size: int = 1000,
    repeats: int = 1,
    seed: int = 0,
    epochs: int = 20,
    domain: str = "",
) -> list[dict]:
    """Test accuracy of each method as the labelled set grows (stratified samples):
    :func:`tlwidgets.learning_curves.learning_curve` records, sizes in labelled sentences.

    The test set (``test_size`` sentences) is the same for every record; repeat ``r``
    draws its sentences and the model's initial weights with seed ``seed + r``. The
    Embedding layer's vocabulary is every word of the labelled pool plus the test
    words the pretrained set knows.
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
    sampler = Stratified(pool_y, unit="labelled sentences")
    for size in sizes:  # before the vocabulary and the models are built
        sampler.resolve(check_size(size))
    # Every word of the labelled pool, plus the test words the pretrained set knows: words
    # the labelled set never shows still get their vectors (what transfers to the test set).
    vocab, matrix, _ = pretrained_vocabulary([tokenize(t) for t in pool_x], kv,
                                             also=[tokenize(t) for t in test_x], min_count=1,
                                             max_size=None)
    pool_ids, test_ids = encode(pool_x, vocab), encode(test_x, vocab)

    def bow(draw: Draw) -> float:
        pred = _bow_predict([pool_x[i] for i in draw.index], pool_y[draw.index], test_x)
        return float(np.mean(pred == test_y))

    def keras_method(method: str):
        runner = _Runner(matrix, n_classes, method)

        def run(draw: Draw) -> float:
            pred = runner.fit_predict(pool_ids[draw.index], pool_y[draw.index], test_ids,
                                      epochs=epochs, seed=draw.seed)
            return float(np.mean(pred == test_y))
        return run

    chosen = {m: bow if m == "bow" else keras_method(m) for m in methods}
    return learning_curve(chosen, sampler, sizes, repeats=repeats, seed=seed, repeat_all=True,
                          domain=domain)
