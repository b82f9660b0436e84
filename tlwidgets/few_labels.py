"""Topic classification with few labels per class: which document features transfer?

Each document becomes one vector, and a linear classifier (ridge: least squares on
one-vs-rest targets, closed form, ten times faster than a logistic regression here)
learns the topics from ``k`` labelled documents per class; the held-out documents are the same for
every run, balanced across classes. Features:

* a bag of words (TF-IDF), learned from the labelled documents alone;
* the average of its word vectors (stop words left out): pretrained, continued
  on the domain, or random (one random vector per word: the same model with
  nothing learned, the baseline that says whether the vectors' knowledge helps).

Averaged vectors plus a linear classifier is the frozen-embedding classifier of
:mod:`tlwidgets.embedding_classifier` (Embedding -> average -> dense) without Keras:
fast enough to repeat every size many times and show the spread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FewLabelRun", "balanced_split", "few_label_curve", "mean_vectors", "random_vectors",
           "summarise", "verdict"]


def mean_vectors(docs: Sequence[Sequence[str]], kv, *, skip: Iterable[str] = (),
                 idf: bool = True) -> np.ndarray:
    """One unit-length row per tokenised document: the mean of its known words' vectors.

    With ``idf`` each word is weighted by its inverse document frequency over
    ``docs`` (no labels used), so a book's own terms outweigh words every article
    has. Words in ``skip`` (stop words) and words without a vector are left out; a
    document with none left is a row of zeros.
    """
    from scipy import sparse

    from tlwidgets.vocab import lookup_rows

    skip = frozenset(skip)
    vocab = sorted({t for d in docs for t in d if t not in skip})
    column = {w: j for j, w in enumerate(vocab)}
    rows = lookup_rows(kv.key_to_index, vocab)
    known = rows >= 0
    data, cols, ptr = [], [], [0]
    for doc in docs:
        counts: dict[int, int] = {}
        for t in doc:
            j = column.get(t)
            if j is not None and known[j]:
                counts[j] = counts.get(j, 0) + 1
        cols.extend(counts)
        data.extend(counts.values())
        ptr.append(len(cols))
    tf = sparse.csr_matrix((np.asarray(data, np.float32), np.asarray(cols, np.int64), ptr),
                           shape=(len(docs), len(vocab)))
    if idf:
        df = np.bincount(tf.indices, minlength=len(vocab))
        tf = tf @ sparse.diags(np.log((1 + len(docs)) / (1 + df)).astype(np.float32) + 1)
    matrix = np.zeros((len(vocab), kv.vector_size), dtype=np.float32)
    matrix[known] = kv.vectors[rows[known]]
    out = np.asarray(tf @ matrix, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def random_vectors(words: Iterable[str], dim: int, *, seed: int = 0):
    """A ``KeyedVectors`` giving each word an independent random (Gaussian) vector."""
    from gensim.models import KeyedVectors

    words = sorted(set(words))
    kv = KeyedVectors(dim, count=0, dtype=np.float32)
    kv.add_vectors(words, np.random.default_rng(seed).normal(size=(len(words), dim))
                   .astype(np.float32))
    return kv


def balanced_split(labels: np.ndarray, per_class: int, *, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(pool, test)`` indices: ``per_class`` held-out documents of each class, the rest pooled."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) <= per_class:
            raise ValueError(f"Class {c} has {len(members)} documents; {per_class} held out "
                             "would leave none to learn from.")
        test.extend(rng.choice(members, per_class, replace=False).tolist())
    test = np.array(sorted(test))
    pool = np.setdiff1d(np.arange(len(labels)), test)
    return pool, test


@dataclass(frozen=True)
class FewLabelRun:
    method: str
    per_class: int
    repeat: int
    accuracy: float


def _sample(labels: np.ndarray, pool: np.ndarray, k: int, rng) -> np.ndarray:
    picked = []
    for c in np.unique(labels[pool]):
        members = pool[labels[pool] == c]
        if len(members) < k:
            raise ValueError(f"Class {c} has only {len(members)} documents to label; "
                             f"{k} per class asked.")
        picked.extend(rng.choice(members, k, replace=False).tolist())
    return np.array(picked)


def few_label_curve(
    features: Mapping[str, np.ndarray | Sequence[str]],
    labels: Sequence,
    *,
    per_class: Sequence[int] = (5, 10, 20, 50, 100),
    repeats: int = 10,
    test_per_class: int = 50,
    seed: int = 0,
    alpha: float = 1.0,
) -> list[FewLabelRun]:
    """Held-out accuracy of a linear classifier on each feature set, ``k`` labels per class.

    ``features`` maps a method name to a feature matrix (one row per document) or,
    for a bag of words, to the documents' texts (a TF-IDF is fitted on the labelled
    ones each run). Every method sees the same labelled documents in a repeat; ``alpha``
    is the ridge penalty.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import RidgeClassifier
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels)
    pool, test = balanced_split(y, test_per_class, seed=seed)
    runs = []
    for k in per_class:
        for r in range(repeats):
            train = _sample(y, pool, k, np.random.default_rng([seed, k, r]))
            for name, x in features.items():
                if isinstance(x, np.ndarray):  # standardised on the labelled rows
                    scaler = StandardScaler().fit(x[train])
                    xtr, xte = scaler.transform(x[train]), scaler.transform(x[test])
                else:
                    tfidf = TfidfVectorizer(sublinear_tf=True)
                    xtr = tfidf.fit_transform([x[i] for i in train])
                    xte = tfidf.transform([x[i] for i in test])
                clf = RidgeClassifier(alpha=alpha)
                acc = float(np.mean(clf.fit(xtr, y[train]).predict(xte) == y[test]))
                runs.append(FewLabelRun(name, int(k), r, acc))
    return runs


def summarise(runs: Sequence[FewLabelRun]) -> dict[str, dict[int, tuple[float, float]]]:
    """method -> labels per class -> (mean accuracy, standard deviation over repeats)."""
    table: dict[str, dict[int, list[float]]] = {}
    for run in runs:
        table.setdefault(run.method, {}).setdefault(run.per_class, []).append(run.accuracy)
    return {m: {k: (float(np.mean(v)), float(np.std(v))) for k, v in by_k.items()}
            for m, by_k in table.items()}


def verdict(runs: Sequence[FewLabelRun], *, against: str, reference: str) -> list[str]:
    """Per size, in words: the best method, and ``against`` vs ``reference`` with the spread.

    A difference counts only when it exceeds the larger of the two standard deviations.
    """
    table = summarise(runs)
    lines = []
    for k in sorted(next(iter(table.values()))):
        best = max(table, key=lambda m: table[m][k][0])
        (a, sa), (b, sb) = table[against][k], table[reference][k]
        spread = max(sa, sb)
        if a - b > spread:
            cmp = f"{against} beats {reference} by {a - b:.1%} (spread {spread:.1%})"
        elif b - a > spread:
            cmp = f"{reference} beats {against} by {b - a:.1%} (spread {spread:.1%})"
        else:
            cmp = (f"{against} and {reference} are within the spread "
                   f"({a - b:+.1%}, spread {spread:.1%})")
        lines.append(f"{k} labels per class: best is {best} ({table[best][k][0]:.1%}); {cmp}.")
    return lines
