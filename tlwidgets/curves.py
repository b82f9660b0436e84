"""Learning curves for every domain, and notebook 01's experiments (the depth sweep).

* :func:`learning_curve` -- the one learning curve: several methods trained on the
  same random subsets of the training set, size by size, scored on one test set;
  tidy records (method, size and its unit, repeat, metric, score), whatever the
  domain. A *sampler* says what a size counts: :class:`PerClass` (images per
  class), :class:`Stratified` (examples in total), ``multitask.NerLabels``
  (NER-labelled sentences); :class:`Fit` turns an estimator into a method.
  :func:`summarise_curves` gives the mean and spread, :func:`plot_learning_curves`
  draws them. Domain adapters: :func:`compare_learning_curves` (images, here),
  ``embedding_classifier.compare_learning_curves`` (text),
  ``multitask.compare_learning_curves`` (NER).
* :func:`depth_sweep` -- a Yosinski-style sweep: a linear probe on the pooled
  output of each block of a network, from the first convolutions to the last.
* :class:`SmallCNN` -- the baseline trained from scratch (scikit-learn API).

``None`` is "all the training data" wherever a size is asked for; 0 is an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = [
    "CLASSIFIERS",
    "METHODS",
    "Draw",
    "Fit",
    "PerClass",
    "SmallCNN",
    "Stratified",
    "check_size",
    "compare_learning_curves",
    "depth_sweep",
    "learning_curve",
    "make_classifier",
    "per_class_indices",
    "pixel_features",
    "plot_depth_sweep",
    "plot_learning_curves",
    "size_label",
    "summarise_curves",
]

CLASSIFIERS = ("logistic regression", "linear SVM", "kNN (k=5)")


def make_classifier(name: str = "logistic regression", *, seed: int = 0):
    """A scikit-learn classifier for features, by name (see :data:`CLASSIFIERS`).

    Logistic regression is the plain scikit-learn one (L2, C=1); the linear
    SVM standardises features first (it is sensitive to their scale).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if name == "logistic regression":
        return LogisticRegression(max_iter=3000)
    if name == "linear SVM":
        return make_pipeline(StandardScaler(), LinearSVC(C=0.01, max_iter=20000, random_state=seed))
    if name.startswith("kNN"):
        return KNeighborsClassifier(n_neighbors=5, metric="cosine")
    raise ValueError(f"Unknown classifier {name!r}; choose one of {CLASSIFIERS}.")


def per_class_indices(labels: np.ndarray, per_class: int | None, *, seed: int = 0) -> np.ndarray:
    """Indices of at most ``per_class`` samples of every class (``None``: all), sorted."""
    y = np.asarray(labels)
    if check_size(per_class) is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]
    return np.sort(np.concatenate(keep))


def pixel_features(images: np.ndarray, size: int | None = None) -> np.ndarray:
    """Raw pixels as features: images (resized to ``size``) flattened, scaled to [0, 1]."""
    x = np.asarray(images)
    if size is not None and x.shape[1:3] != (size, size):
        from PIL import Image

        x = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR))
                      for im in x])
    return x.reshape(len(x), -1).astype(np.float32) / 255.0


# --------------------------------------------------------------------------- from scratch


class SmallCNN(ClassifierMixin, BaseEstimator):
    """A small convolutional network trained from scratch (the no-transfer baseline).

    Three conv blocks (16, 32, 64 filters), global average pooling, dropout and a
    softmax layer; random horizontal flips; Adam. ``fit(images, labels)`` takes
    uint8 images (n, h, w, 3) at any fixed size.

    ``epochs=None`` (the default) trains for about ``image_passes`` images in
    total, between ``min_epochs`` and ``max_epochs`` epochs: tiny training sets
    get many epochs, large ones few, so the cost stays bounded on a CPU.
    """

    def __init__(self, epochs: int | None = None, image_passes: int = 3000, min_epochs: int = 15,
                 max_epochs: int = 100, batch_size: int = 32, learning_rate: float = 1e-3,
                 augment: bool = True, seed: int = 0):
        self.epochs = epochs
        self.image_passes = image_passes
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.augment = augment
        self.seed = seed

    def _model(self, shape, n_classes):
        import keras
        from keras import layers

        keras.utils.set_random_seed(self.seed)
        inp = keras.Input(shape)
        x = layers.Rescaling(1 / 255.0)(inp)
        if self.augment:
            x = layers.RandomFlip("horizontal", seed=self.seed)(x)
        for filters in (16, 32, 64):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D()(x)
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dropout(0.3, seed=self.seed)(x)
        out = layers.Dense(n_classes, activation="softmax")(x)
        model = keras.Model(inp, out, name="small_cnn")
        model.compile(keras.optimizers.Adam(self.learning_rate),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, X, y):
        import tensorflow as tf

        X = np.asarray(X)
        self.classes_, yi = np.unique(np.asarray(y), return_inverse=True)
        self.model_ = self._model(X.shape[1:], len(self.classes_))
        epochs = self.epochs or int(np.clip(round(self.image_passes / len(X)),
                                            self.min_epochs, self.max_epochs))
        batch = min(self.batch_size, len(X))
        steps = max(1, int(np.ceil(epochs * len(X) / batch)))
        # One long "epoch" over a repeated, reshuffled stream: Keras's per-epoch
        # overhead would dominate on tiny training sets otherwise.
        ds = (tf.data.Dataset.from_tensor_slices((X, yi.astype(np.int32)))
              .shuffle(len(X), seed=self.seed, reshuffle_each_iteration=True)
              .repeat().batch(batch).prefetch(2))
        self.epochs_ = epochs
        self.history_ = self.model_.fit(ds, epochs=1, steps_per_epoch=steps, shuffle=False,
                                        verbose=0).history
        return self

    def predict_proba(self, X):
        X = np.asarray(X)
        # Plain calls in chunks: no new tf.function per model (and no retracing warnings).
        return np.concatenate([np.asarray(self.model_(X[i:i + 256], training=False))
                               for i in range(0, len(X), 256)])

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# --------------------------------------------------------------------------- learning curves

Score = float | Mapping[str, float]
Method = Callable[["Draw"], Score]


def check_size(size) -> int | None:
    """``size`` if it is a training size: a positive whole number, or ``None`` for all."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        hint = " (0 no longer means all: write None)" if size == 0 else ""
        raise ValueError(f"A training size is a positive whole number, or None for all the "
                         f"training data; got {size!r}{hint}.")
    return int(size)


def size_label(size: int | None) -> str:
    """``"all"`` for ``None``, else the number: the column names of a curve's table."""
    return "all" if size is None else str(size)


@dataclass(frozen=True)
class Draw:
    """One training subset of a learning curve, as a sampler drew it."""

    size: int | None  # in the sampler's unit; None: all the training data
    seed: int
    n_train: int  # labelled examples in the subset
    index: np.ndarray | None = None  # their positions in the training set
    data: Any = None  # what the sampler built instead of positions (NER: sentences)


class PerClass:
    """Sizes in examples per class: ``size`` random examples of every class.

    A size at or above the smallest class takes every example (``None``, "all").
    """

    def __init__(self, labels, *, unit: str = "labelled images per class"):
        self.labels = np.asarray(labels)
        self.unit = unit
        counts = np.unique(self.labels, return_counts=True)[1]
        if len(counts) < 2:
            raise ValueError(f"A learning curve needs at least two classes; the labels hold "
                             f"{len(counts)}.")
        self.n_classes, self.smallest = len(counts), int(counts.min())

    def resolve(self, size: int | None) -> int | None:
        return None if size is None or size >= self.smallest else size

    def draw(self, size: int | None, seed: int) -> Draw:
        idx = per_class_indices(self.labels, size, seed=seed)
        return Draw(size, seed, len(idx), idx)


class Stratified:
    """Sizes in examples in total, drawn with the classes' proportions (``train_test_split``).

    A size above the training set is an error; the whole set is ``None`` ("all").
    """

    def __init__(self, labels, *, unit: str = "labelled examples"):
        self.labels = np.asarray(labels)
        self.unit = unit
        self.n_classes = len(np.unique(self.labels))

    def resolve(self, size: int | None) -> int | None:
        if size is not None and size > len(self.labels):
            raise ValueError(f"The size {size} exceeds the {len(self.labels)} {self.unit} "
                             "available for training; use smaller sizes, or None for all.")
        return None if size is None or size == len(self.labels) else size

    def draw(self, size: int | None, seed: int) -> Draw:
        from sklearn.model_selection import train_test_split

        positions = np.arange(len(self.labels))
        if size is not None:
            positions = train_test_split(positions, train_size=size, stratify=self.labels,
                                         random_state=seed)[0]
        return Draw(size, seed, len(positions), positions)


class Fit:
    """A learning-curve method: a fresh ``make()`` estimator fitted on the drawn rows of
    ``X_train``, scored on all of ``X_test`` (the same test set at every size and repeat).

    ``scoring`` is ``"accuracy"`` or any scikit-learn scorer name (``"roc_auc"``); a
    sequence of names gives one record per metric.
    """

    def __init__(self, make: Callable[[], Any], X_train, y_train, X_test, y_test, *,
                 scoring: str | Sequence[str] = "accuracy"):
        self.make, self.X_train, self.X_test = make, X_train, X_test
        self.y_train, self.y_test = np.asarray(y_train), np.asarray(y_test)
        self.scoring = scoring

    def __call__(self, draw: Draw) -> Score:
        from sklearn.metrics import get_scorer

        model = self.make()
        model.fit(_take(self.X_train, draw.index), self.y_train[draw.index])
        names = [self.scoring] if isinstance(self.scoring, str) else list(self.scoring)
        scores = {n: float(np.mean(model.predict(self.X_test) == self.y_test)) if n == "accuracy"
                  else float(get_scorer(n)(model, self.X_test, self.y_test)) for n in names}
        return scores[self.scoring] if isinstance(self.scoring, str) else scores


def _take(X, idx):
    return X[idx] if isinstance(X, np.ndarray) else [X[i] for i in idx]


def learning_curve(
    methods: Mapping[str, Method],
    sampler,
    sizes: Sequence[int | None] = (5, 10, 20, 50, None),
    *,
    repeats: int = 3,
    seed: int = 0,
    repeat_all: bool = False,
    metric: str = "accuracy",
    domain: str = "",
    progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Test scores of several methods as the labelled training set grows: tidy records.

    ``sampler`` says what a size counts (:class:`PerClass` images, :class:`Stratified`
    examples, :class:`tlwidgets.multitask.NerLabels` sentences) and draws the training
    subsets; ``None`` in ``sizes`` is all the training data. For each size, ``repeats``
    subsets are drawn (seeds ``seed``, ``seed + 1``, ...; "all" once, unless
    ``repeat_all``: when the methods' own randomness follows the seed) and every method
    trains on the same subset. A method is a callable ``method(draw)`` returning its
    score on the test set (named ``metric``) or a dict of scores; :class:`Fit` makes one
    from an estimator.

    One record per (size, repeat, method, metric): ``domain``, ``method``, ``size``
    (``None``: all), ``size_unit``, ``n_train``, ``n_classes``, ``repeat``, ``seed``,
    ``metric``, ``score``, ``seconds`` (the fit and scoring). :func:`summarise_curves`
    gives the mean and spread.
    """
    if not methods:
        raise ValueError("Give at least one method: {name: callable(draw) -> score}.")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive whole number, not {repeats!r}.")
    plan: list[int | None] = []
    for size in sizes:  # every size checked before anything trains
        resolved = sampler.resolve(check_size(size))
        if resolved not in plan:  # a size that means "all" is measured once
            plan.append(resolved)
    if not plan:
        raise ValueError("Give at least one training size.")
    rows = []
    for size in plan:
        for repeat in range(repeats if size is not None or repeat_all else 1):
            draw = sampler.draw(size, seed + repeat)
            for name, method in methods.items():
                start = time.perf_counter()
                out = method(draw)
                seconds = time.perf_counter() - start
                for m, value in (out.items() if isinstance(out, Mapping) else [(metric, out)]):
                    row = {"domain": domain, "method": name, "size": size,
                           "size_unit": sampler.unit, "n_train": int(draw.n_train),
                           "n_classes": getattr(sampler, "n_classes", None), "repeat": repeat,
                           "seed": draw.seed, "metric": m, "score": float(value),
                           "seconds": seconds}
                    rows.append(row)
                    if progress is not None:
                        progress(row)
    return rows


def summarise_curves(rows: Sequence[Mapping], *, metric: str | None = None,
                     ) -> dict[str, dict[int | None, dict]]:
    """Mean and spread over repeats: ``{method: {size: {"mean", "std", "n", "n_train"}}}``.

    ``std`` is the sample standard deviation (ddof=1; 0 for a single repeat). Sizes
    keep the curve's order (``None``: all). ``metric`` picks one where the records hold
    several.
    """
    domains = {r["domain"] for r in rows}
    if len(domains) > 1:
        raise ValueError(f"The records come from several domains {sorted(domains)}; "
                         "summarise each domain's records on their own.")
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    if metric is None and len(metrics) > 1:
        raise ValueError(f"The records hold several metrics {metrics}; choose one with metric=.")
    if metric is not None and rows and metric not in metrics:
        raise ValueError(f"No record measures {metric!r}; the records hold {metrics}.")
    metric = metric or (metrics[0] if metrics else None)
    groups: dict[str, dict[int | None, list[Mapping]]] = {}
    for r in rows:
        if r["metric"] == metric:
            groups.setdefault(r["method"], {}).setdefault(r["size"], []).append(r)
    out: dict[str, dict[int | None, dict]] = {}
    for method, by_size in groups.items():
        for size, rs in by_size.items():
            v = [r["score"] for r in rs]
            out.setdefault(method, {})[size] = {
                "mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                "n": len(v), "n_train": int(round(np.mean([r["n_train"] for r in rs])))}
    return out


METHODS = (
    "pixels + logistic regression",
    "small CNN from scratch",
    "featuriser + logistic regression",
    "featuriser + linear SVM",
)


def compare_learning_curves(
    *,
    features: tuple[np.ndarray, np.ndarray],
    pixels: tuple[np.ndarray, np.ndarray],
    images: tuple[np.ndarray, np.ndarray],
    y_train,
    y_test,
    sizes: Sequence[int | None] = (5, 10, 20, 50, None),
    repeats: int = 3,
    cnn_image_passes: int = 3000,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
    domain: str = "",
) -> list[dict]:
    """Notebook 01's learning curves (:data:`METHODS`) on one train/test split of images.

    ``features``: featuriser outputs (train, test); ``pixels``: raw pixels as vectors
    (train, test), e.g. from :func:`pixel_features`; ``images``: uint8 images (train,
    test) for the CNN trained from scratch. Sizes count images per class; every method
    sees the same random subsets. Returns :func:`learning_curve` records.
    """
    plans = {
        "pixels + logistic regression": (lambda: make_classifier("logistic regression"), pixels),
        "small CNN from scratch": (
            lambda: SmallCNN(image_passes=cnn_image_passes, seed=seed), images),
        "featuriser + logistic regression": (
            lambda: make_classifier("logistic regression"), features),
        "featuriser + linear SVM": (lambda: make_classifier("linear SVM", seed=seed), features),
    }
    unknown = [m for m in methods if m not in plans]
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; choose from {METHODS}.")
    chosen = {m: Fit(plans[m][0], plans[m][1][0], y_train, plans[m][1][1], y_test)
              for m in methods}
    return learning_curve(chosen, PerClass(y_train), sizes, repeats=repeats, seed=seed,
                          domain=domain)


def depth_sweep(
    featuriser,
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    layers: Sequence[str] | None = None,
    n_layers: int = 8,
    classifier: str = "logistic regression",
) -> list[dict]:
    """Accuracy of a linear probe on the pooled output of each layer, shallow to deep.

    ``featuriser`` supplies the backbone, pooling and cache; ``layers`` defaults
    to ``n_layers`` block outputs evenly spaced through the network
    (:func:`tlwidgets.featurize.candidate_layers`). All layers are featurised in
    one pass over the images. Returns one dict per layer: layer, position (0-1
    through the network), depth (index among all layers), dim, accuracy.
    """
    from tlwidgets.featurize import candidate_layers, featurise_layers
    from tlwidgets.layers import iter_layers

    featuriser._ensure_built()
    model = featuriser.model_
    layers = list(layers) if layers is not None else candidate_layers(model, n=n_layers)
    tr = featurise_layers(featuriser, layers, X_train)
    te = featurise_layers(featuriser, layers, X_test)
    order = {info.path: info.index for info in iter_layers(model)}
    total = max(order.values())
    rows = []
    for path in tr.layers:
        clf = make_classifier(classifier).fit(tr.layers[path], np.asarray(y_train))
        acc = float(np.mean(clf.predict(te.layers[path]) == np.asarray(y_test)))
        rows.append({"layer": path, "depth": order[path], "position": order[path] / total,
                     "dim": int(tr.layers[path].shape[1]), "accuracy": acc})
    return rows


# --------------------------------------------------------------------------- plots

_STYLES = {
    "pixels + logistic regression": ("#8c8c8c", "s", ":"),
    "small CNN from scratch": ("#d62728", "^", "--"),
    "featuriser + logistic regression": ("#1f77b4", "o", "-"),
    "featuriser + linear SVM": ("#2ca02c", "D", "-"),
}


def plot_learning_curves(rows: Sequence[Mapping], ax=None, *, title: str = "",
                         chance: float | None = None, metric: str | None = None):
    """Mean score vs training size (log axis), one line per method, the spread as error bars.

    "All" sits at its mean size: its examples per class, or in total.
    """
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(6, 4)).subplots()
    summary = summarise_curves(rows, metric=metric)
    unit = rows[0]["size_unit"] if rows else ""
    per_class = unit.endswith("per class")
    for m, by_size in summary.items():
        n_classes = next(r["n_classes"] for r in rows if r["method"] == m)
        x = [s if s is not None else p["n_train"] / (n_classes if per_class else 1)
             for s, p in by_size.items()]
        colour, marker, ls = _STYLES.get(m, (None, "o", "-"))
        ax.errorbar(x, [p["mean"] for p in by_size.values()],
                    yerr=[p["std"] for p in by_size.values()], label=m, color=colour,
                    marker=marker, linestyle=ls, capsize=3)
    if chance is not None:
        ax.axhline(chance, color="#999", lw=0.8, ls=":")
        ax.text(ax.get_xlim()[0], chance, " chance", va="bottom", fontsize=8, color="#666")
    ax.set_xscale("log")
    ax.set_xlabel(unit)
    ax.set_ylabel(f"test {metric or (rows[0]['metric'] if rows else 'score')}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_depth_sweep(rows: list[dict], ax=None, *, label: str = "", title: str = ""):
    """Probe accuracy against the position of the cut in the network."""
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(6, 4)).subplots()
    x = [r["position"] for r in rows]
    ax.plot(x, [r["accuracy"] for r in rows], marker="o", label=label or None)
    ax.set_xlabel("cut position (0 = input, 1 = last layer)")
    ax.set_ylabel("linear-probe test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if label:
        ax.legend(fontsize=8)
    return ax
