"""Active learning on cached features: the model asks, the learner labels.

Pool-based active learning made cheap by transfer learning: a
:class:`~tlwidgets.featurize.Featuriser` turns every image of the pool into a
vector once (cached on disk), and each round only refits a linear model on
the labelled vectors and scores the rest. A *strategy* chooses which pool items
to label next:

============================  ===================================================
``random``                    the baseline every curve must show
``least confidence``          lowest top-class probability
``margin``                    smallest gap between the two likeliest classes
``entropy``                   highest predictive entropy
``k-center``                  core-set greedy: farthest from everything labelled
``typical``                   TypiClust (Hacohen et al., 2022): one most typical
                              point of each not-yet-labelled k-means cluster
``typical + margin``          hybrid: the typical start, then the most uncertain
                              item of each of ``n`` clusters of uncertain items
============================  ===================================================

Uncertainty needs a model, and a model needs labels of two classes: until the
labelled set has them, uncertainty strategies start with random picks (this is
where their *cold start* shows: worse than random for the first rounds, Chen et
al. 2022), while ``typical`` and the hybrid start with typical points.

:class:`ActiveLearner` keeps the labelling state (``labels``, savable to CSV)
for a person or a widget; :func:`simulate` replays the loop with known labels,
returning the same tidy records as :func:`tlwidgets.learning_curves.learning_curve`.
:mod:`tlwidgets.export` saves a featuriser and the learner's head as one Keras file.

(About 500 lines: the strategies, the :class:`Pool` they read and the learner that
builds it belong together; each strategy is a few lines.)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "STRATEGIES",
    "ActiveLearner",
    "ActiveLearningError",
    "Pool",
    "labels_to_reach",
    "simulate",
]


class ActiveLearningError(ValueError):
    """The pool, the labels or a request cannot be used; the message says what to do."""


# --------------------------------------------------------------------------- pool


@dataclass
class Pool:
    """What a strategy sees: the pool's features, who is labelled, and the model's view.

    ``X`` is standardised with the pool's own statistics (every pool item is
    available unlabelled, so this uses no label).
    """

    X: np.ndarray
    labelled: np.ndarray  # positions in X that have a label
    proba: np.ndarray | None = None  # model probabilities for `unlabelled`, None: no model
    reduce: Callable[[], np.ndarray] | None = None  # X in a few principal components
    _unlabelled: np.ndarray | None = field(default=None, repr=False)

    @property
    def clustering(self) -> np.ndarray:
        """The space that k-means and typicality work in: ``reduce()`` if given, else ``X``."""
        return self.X if self.reduce is None else self.reduce()

    @property
    def unlabelled(self) -> np.ndarray:
        if self._unlabelled is None:
            mask = np.ones(len(self.X), bool)
            mask[self.labelled] = False
            self._unlabelled = np.flatnonzero(mask)
        return self._unlabelled


Strategy = Callable[[Pool, int, np.random.Generator], np.ndarray]


def _random(pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(pool.unlabelled, size=n, replace=False)


def _uncertainty(score: Callable[[np.ndarray], np.ndarray]) -> Strategy:
    """A strategy that picks the ``n`` unlabelled items with the highest ``score(proba)``."""

    def pick(pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
        if pool.proba is None:  # cold start: no model yet
            return _random(pool, n, rng)
        s = score(pool.proba) + rng.uniform(0, 1e-9, len(pool.proba))  # random tie-break
        return pool.unlabelled[np.argsort(-s, kind="stable")[:n]]

    return pick


def _least_confidence(p: np.ndarray) -> np.ndarray:
    return 1.0 - p.max(axis=1)


def _margin(p: np.ndarray) -> np.ndarray:
    top2 = np.sort(p, axis=1)[:, -2:]
    return -(top2[:, 1] - top2[:, 0])


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1)


def _sq_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.maximum(d, 0.0)


def _k_center(pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
    """Core-set greedy (Sener & Savarese, 2018): each pick is the unlabelled item farthest
    from everything labelled or picked so far."""
    cand = pool.unlabelled
    Xc = pool.X[cand]
    if len(pool.labelled):
        nearest = np.full(len(cand), np.inf)
        for start in range(0, len(pool.labelled), 1024):  # bounded memory
            block = pool.X[pool.labelled[start:start + 1024]]
            nearest = np.minimum(nearest, _sq_dists(Xc, block).min(axis=1))
        first = int(np.argmax(nearest))
    else:
        first = int(rng.integers(len(cand)))
        nearest = np.full(len(cand), np.inf)
    chosen = []
    j = first
    for _ in range(n):
        chosen.append(j)
        nearest = np.minimum(nearest, _sq_dists(Xc, Xc[j:j + 1])[:, 0])
        nearest[chosen] = -1.0
        j = int(np.argmax(nearest))
    return cand[np.asarray(chosen)]


def _kmeans(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    seed = int(rng.integers(2**31 - 1))
    if len(X) > 20000:
        km = MiniBatchKMeans(n_clusters=k, n_init=1, random_state=seed, batch_size=4096)
    elif k <= 50:
        km = KMeans(n_clusters=k, n_init=3, max_iter=50, random_state=seed)
    else:  # many clusters: k-means++ seeding would cost more than the clustering itself
        km = KMeans(n_clusters=k, init="random", n_init=1, max_iter=50, random_state=seed)
    return km.fit_predict(X)


def principal_components(X: np.ndarray, n: int = 32, seed: int = 0) -> np.ndarray:
    """``X`` in its first ``n`` principal components: k-means in 32 dimensions instead
    of 256 keeps each query of the clustering strategies well under a second."""
    from sklearn.decomposition import PCA

    n = min(n, len(X))
    if X.shape[1] <= n:
        return X
    return PCA(n, random_state=seed).fit_transform(X).astype(np.float32)


def _typicality(X: np.ndarray, k: int = 20) -> np.ndarray:
    """Inverse mean distance to the ``k`` nearest neighbours (TypiClust's density)."""
    if len(X) == 1:
        return np.ones(1)
    k = min(k, len(X) - 1)
    d = np.sqrt(_sq_dists(X, X))
    np.fill_diagonal(d, np.inf)
    nn = np.partition(d, k - 1, axis=1)[:, :k]
    return 1.0 / (nn.mean(axis=1) + 1e-12)


def _typical(pool: Pool, n: int, rng: np.random.Generator,
             max_clusters: int = 500) -> np.ndarray:
    """TypiClust: cluster the pool into (labelled + n) groups (at most ``max_clusters``);
    from the largest groups holding no label, take each one's most typical point."""
    idx = np.arange(len(pool.X))
    k = min(len(idx), max(n, min(len(pool.labelled) + n, max_clusters)))
    space = pool.clustering
    assign = _kmeans(space, k, rng)
    taken = np.zeros(len(pool.X), bool)
    taken[pool.labelled] = True
    covered = np.bincount(assign[taken], minlength=k)
    sizes = np.bincount(assign, minlength=k)
    # uncovered clusters first, then the least covered; larger clusters before smaller
    order = sorted(range(k), key=lambda c: (covered[c], -sizes[c]))
    chosen: list[int] = []
    while len(chosen) < n:
        progressed = False
        for c in order:
            members = idx[(assign == c) & ~taken[idx]]
            if not len(members):
                continue
            best = members[int(np.argmax(_typicality(space[members])))]
            chosen.append(int(best))
            taken[best] = True
            progressed = True
            if len(chosen) == n:
                break
        if not progressed:
            break
    return np.asarray(chosen)


def _typical_then_margin(pool: Pool, n: int, rng: np.random.Generator) -> np.ndarray:
    """Hybrid: typical points until a model exists; then uncertainty with diversity:
    cluster the ``10 n`` most uncertain items into ``n`` groups, take each one's most
    uncertain item (margin), so a batch never spends its labels on near-copies."""
    if pool.proba is None:
        return _typical(pool, n, rng)
    m = min(len(pool.unlabelled), 10 * n)
    uncertain_order = np.argsort(-_margin(pool.proba), kind="stable")[:m]
    cand = pool.unlabelled[uncertain_order]
    if m <= n:
        return cand
    assign = _kmeans(pool.clustering[cand], n, rng)
    return np.asarray([cand[assign == c][0] for c in range(n) if np.any(assign == c)])


STRATEGIES: dict[str, Strategy] = {
    "random": _random,
    "least confidence": _uncertainty(_least_confidence),
    "margin": _uncertainty(_margin),
    "entropy": _uncertainty(_entropy),
    "k-center": _k_center,
    "typical": _typical,
    "typical + margin": _typical_then_margin,
}


def _strategy(name: str | Strategy) -> Strategy:
    if callable(name):
        return name
    if name not in STRATEGIES:
        raise ActiveLearningError(f"Unknown strategy {name!r}; choose one of "
                                  f"{list(STRATEGIES)}, or pass a callable(pool, n, rng).")
    return STRATEGIES[name]


# --------------------------------------------------------------------------- learner


def default_model(seed: int = 0):
    """The head refit each round: a logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=0.1, max_iter=2000, random_state=seed)


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ActiveLearningError(f"The pool's features must be a 2-D array (items x features); "
                                  f"got shape {X.shape}. Featurise the images first.")
    if not len(X):
        raise ActiveLearningError("The pool is empty: there is nothing to label.")
    if not np.isfinite(X).all():
        raise ActiveLearningError("The pool's features hold NaN or infinite values; check the "
                                  "images and the featuriser.")
    mean, std = X.mean(0), X.std(0)
    std[std == 0] = 1.0
    return (X - mean) / std, mean, std


class ActiveLearner:
    """The labelling state of one pool, and the loop: ``query`` -> ``teach`` -> ``fit``.

    ``features``: the pool's vectors (a Featuriser's output). ``classes``: the class
    names a label may take. ``items``: what each pool row is (file paths, ids) for
    CSV export; defaults to row numbers. ``strategy``: a name in :data:`STRATEGIES` or
    a callable ``(pool, n, rng) -> positions``.

    >>> learner = ActiveLearner(X_pool, classes=["cat", "dog"])      # doctest: +SKIP
    >>> batch = learner.query(10)                                     # doctest: +SKIP
    >>> learner.teach(batch, ["cat", "dog", ...]); learner.fit()      # doctest: +SKIP
    """

    def __init__(self, features, classes: Sequence[Hashable], *,
                 items: Sequence[Hashable] | None = None,
                 strategy: str | Strategy = "typical + margin",
                 make_model: Callable[[], object] | None = None, seed: int = 0):
        self.classes = list(classes)
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ActiveLearningError(f"Give two or more distinct class names; got "
                                      f"{self.classes!r}.")
        self.X, self.mean_, self.std_ = _standardise(features)
        self.items = list(range(len(self.X))) if items is None else list(items)
        if len(self.items) != len(self.X):
            raise ActiveLearningError(f"{len(self.items)} items named for {len(self.X)} "
                                      "feature rows; give one name per row.")
        self.strategy = strategy
        self.make_model = make_model or (lambda: default_model(seed))
        self.rng = np.random.default_rng(seed)
        self.labels: dict[int, int] = {}  # pool position -> class index
        self.model = None
        self._Z: np.ndarray | None = None

    # -- state
    @property
    def strategy(self) -> str | Strategy:
        """The strategy's name (or callable); set it to switch strategies between rounds."""
        return self._strategy

    @strategy.setter
    def strategy(self, value: str | Strategy) -> None:
        self._pick = _strategy(value)
        self._strategy = value

    def extend(self, features, items: Sequence[Hashable] | None = None) -> np.ndarray:
        """Add items to the pool (new uploads); return their positions. Labels are kept;
        the standardisation is recomputed on the grown pool and the model refit."""
        raw = np.vstack([self.X * self.std_ + self.mean_, np.asarray(features, np.float32)])
        new = np.arange(len(self.X), len(raw))
        names = list(range(len(self.X), len(raw))) if items is None else list(items)
        if len(names) != len(new):
            raise ActiveLearningError(f"{len(names)} items named for {len(new)} feature rows.")
        self.X, self.mean_, self.std_ = _standardise(raw)
        self.items += names
        self._Z = None
        if self.model is not None:
            self.fit()
        return new

    @property
    def labelled(self) -> np.ndarray:
        return np.fromiter(self.labels, dtype=int, count=len(self.labels))

    @property
    def n_unlabelled(self) -> int:
        return len(self.X) - len(self.labels)

    def _class_index(self, label) -> int:
        if isinstance(label, int | np.integer) and not isinstance(label, bool) \
                and label not in self.classes:
            if not 0 <= label < len(self.classes):
                raise ActiveLearningError(f"Label {label} is not a class index 0..."
                                          f"{len(self.classes) - 1} nor a class name.")
            return int(label)
        try:
            return self.classes.index(label)
        except ValueError:
            raise ActiveLearningError(f"Unknown label {label!r}; the classes are "
                                      f"{self.classes}.") from None

    # -- the loop
    def query(self, n: int) -> np.ndarray:
        """The ``n`` pool positions the strategy wants labelled next."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ActiveLearningError(f"Ask for a positive number of items, not {n!r}.")
        if n > self.n_unlabelled:
            raise ActiveLearningError(
                f"Asked for {n} items but only {self.n_unlabelled} of the pool's "
                f"{len(self.X)} are unlabelled; ask for at most {self.n_unlabelled}.")
        pool = Pool(self.X, self.labelled, self._proba_unlabelled(), self._reduced)
        picked = np.asarray(self._pick(pool, int(n), self.rng), dtype=int)
        if len(picked) < n:  # a strategy may run short (tiny clusters): top up at random
            rest = np.setdiff1d(pool.unlabelled, picked)
            picked = np.concatenate([picked, self.rng.choice(rest, n - len(picked), False)])
        return picked

    def teach(self, positions, labels) -> None:
        """Record labels for pool positions (class names or indices). Nothing is recorded
        if any of them is invalid."""
        positions = np.atleast_1d(np.asarray(positions))
        labels = list(labels) if not isinstance(labels, str) else [labels]
        if len(positions) != len(labels):
            raise ActiveLearningError(f"{len(positions)} positions but {len(labels)} labels.")
        new = {}
        for p, lab in zip(positions, labels, strict=True):
            if not (isinstance(p, int | np.integer) and 0 <= p < len(self.X)):
                raise ActiveLearningError(f"Position {p!r} is not in the pool "
                                          f"(0..{len(self.X) - 1}).")
            new[int(p)] = self._class_index(lab)
        self.labels.update(new)

    def fit(self):
        """Refit the head on every label so far; ``None`` until two classes are labelled."""
        y = np.fromiter(self.labels.values(), dtype=int, count=len(self.labels))
        if len(np.unique(y)) < 2:
            self.model = None
            return None
        model = self.make_model()
        model.fit(self.X[self.labelled], y)
        self.model = model
        return model

    def _reduced(self) -> np.ndarray:
        if self._Z is None:  # computed once, on the first query that clusters
            self._Z = principal_components(self.X)
        return self._Z

    def _proba_unlabelled(self) -> np.ndarray | None:
        if self.model is None:
            return None
        mask = np.ones(len(self.X), bool)
        mask[self.labelled] = False
        return self.model.predict_proba(self.X[mask])

    def transform(self, features) -> np.ndarray:
        """New features standardised like the pool's."""
        return (np.asarray(features, dtype=np.float32) - self.mean_) / self.std_

    def score(self, features, labels) -> float:
        """Accuracy on held-out items (``labels``: class names or indices)."""
        if self.model is None:
            raise ActiveLearningError("No model yet: label items of at least two classes, "
                                      "then call fit().")
        y = np.asarray([self._class_index(v) for v in labels])
        return float(np.mean(self.model.predict(self.transform(features)) == y))

    # -- saving the labels
    def to_csv(self, path: str | Path) -> Path:
        """Write ``item,label`` rows for every label so far (atomic; reload with
        :meth:`load_csv`)."""
        from tlwidgets.system import atomic_write

        text = io.StringIO()
        w = csv.writer(text)
        w.writerow(["item", "label"])
        w.writerows((self.items[p], self.classes[c]) for p, c in self.labels.items())
        path = Path(path)
        with atomic_write(path) as fh:
            fh.write(text.getvalue().encode("utf-8"))
        return path

    def load_csv(self, path: str | Path) -> int:
        """Read labels written by :meth:`to_csv`; return how many were loaded."""
        where = {str(item): i for i, item in enumerate(self.items)}
        positions, labels = [], []
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"item", "label"} <= set(reader.fieldnames):
                raise ActiveLearningError(f"{path}: expected a header 'item,label' "
                                          "(a file written by ActiveLearner.to_csv).")
            for line, row in enumerate(reader, start=2):
                if row["item"] not in where:
                    raise ActiveLearningError(f"{path}:{line}: item {row['item']!r} is not "
                                              "in this pool.")
                positions.append(where[row["item"]])
                labels.append(row["label"])
        self.teach(positions, labels)
        return len(positions)


# --------------------------------------------------------------------------- experiment


def _check_budgets(budgets: Sequence[int], pool_size: int) -> list[int]:
    b = [int(x) for x in budgets]
    if not b or any(x < 1 for x in b) or b != sorted(set(b)):
        raise ActiveLearningError(f"Budgets must be increasing positive label counts; "
                                  f"got {list(budgets)}.")
    if b[-1] > pool_size:
        raise ActiveLearningError(f"The largest budget ({b[-1]} labels) exceeds the pool "
                                  f"({pool_size} items); use budgets up to {pool_size}.")
    return b


def simulate(features, labels, test_features, test_labels, *,
             strategies: Sequence[str] | Mapping[str, Strategy] = tuple(STRATEGIES),
             budgets: Sequence[int] = (10, 20, 40, 60, 100, 150, 200, 300, 500),
             repeats: int = 5, seed: int = 0, domain: str = "",
             make_model: Callable[[], object] | None = None,
             progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Replay active learning with known labels: accuracy on the test set after each
    budget, for each strategy and repeat.

    Each round labels the next ``budget - labelled`` items the strategy asks for
    (the labels come from ``labels``, as an oracle), refits, and scores. Repeats
    differ in their seed (random picks, k-means). Returns tidy records like
    :func:`tlwidgets.learning_curves.learning_curve`'s: ``domain``, ``method``
    (the strategy), ``size`` (labels so far), ``size_unit``, ``n_train``,
    ``n_classes``, ``repeat``, ``seed``, ``metric``, ``score``, ``seconds`` (query
    plus refit of that round).
    """
    import time

    y = np.asarray(labels)
    classes = list(np.unique(y))
    if len(classes) < 2:
        raise ActiveLearningError(f"The pool's labels hold {len(classes)} class; active "
                                  "learning needs at least two.")
    budgets = _check_budgets(budgets, len(y))
    named = (dict(strategies) if isinstance(strategies, Mapping)
             else {s: _strategy(s) for s in strategies})
    rows = []
    for repeat in range(repeats):
        for name, pick in named.items():
            learner = ActiveLearner(features, classes, strategy=pick, make_model=make_model,
                                    seed=seed + repeat)
            Xt = learner.transform(test_features)
            yt = np.asarray([classes.index(v) for v in test_labels])
            for budget in budgets:
                start = time.perf_counter()
                batch = learner.query(budget - len(learner.labels))
                learner.teach(batch, y[batch])
                model = learner.fit()
                seconds = time.perf_counter() - start
                acc = (float(np.mean(model.predict(Xt) == yt)) if model is not None
                       else float(np.mean(yt == np.bincount(
                           [learner.labels[p] for p in learner.labels]).argmax())))
                row = {"domain": domain, "method": name, "size": budget,
                       "size_unit": "labelled images", "n_train": budget,
                       "n_classes": len(classes), "repeat": repeat, "seed": seed + repeat,
                       "metric": "accuracy", "score": acc, "seconds": seconds}
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def labels_to_reach(summary: Mapping[str, Mapping[int, Mapping]], target: float
                    ) -> dict[str, int | None]:
    """The smallest budget whose mean accuracy reaches ``target``, per strategy
    (``None``: not within the budgets). ``summary`` is
    :func:`tlwidgets.learning_curves.summarise_curves` of :func:`simulate`'s records."""
    out: dict[str, int | None] = {}
    for method, by_size in summary.items():
        hit = [s for s, p in sorted(by_size.items()) if p["mean"] >= target]
        out[method] = hit[0] if hit else None
    return out
