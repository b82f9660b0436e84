"""Measured curves for notebook 01: accuracy vs labelled examples, and vs cut depth.

* :func:`learning_curve` -- accuracy as the number of labelled images per class
  grows, for any "fit on the training subset, predict the test set" method,
  averaged over a few random subsets.
* :func:`depth_sweep` -- a Yosinski-style sweep: a linear probe on the pooled
  output of each block of a network, from the first convolutions to the last.
* :class:`SmallCNN` -- the baseline trained from scratch (scikit-learn API).
* :class:`ProbeLab` -- features of every candidate layer of a backbone on one
  train/test split, computed once, then any classifier, layer and training
  size in milliseconds (what the FeaturiserExplorer widget shows).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = [
    "CLASSIFIERS",
    "METHODS",
    "ProbeLab",
    "SmallCNN",
    "compare_learning_curves",
    "depth_sweep",
    "learning_curve",
    "make_classifier",
    "per_class_indices",
    "pixel_features",
    "plot_depth_sweep",
    "plot_learning_curves",
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
    if per_class is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]
    return np.sort(np.concatenate(keep))


def pixel_features(images: np.ndarray, size: int | None = None) -> np.ndarray:
    """Raw pixels as features: images as RGB (resized to ``size``) flattened, scaled to [0, 1]."""
    from tlwidgets.images import resize_batch, to_rgb, to_uint8

    x = to_uint8(to_rgb(images))
    if size is not None:
        x = resize_batch(x, size)
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


# --------------------------------------------------------------------------- curves


@dataclass
class CurvePoint:
    method: str
    per_class: int | None
    n_train: int
    accuracy: float
    std: float
    accuracies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"method": self.method, "per_class": self.per_class, "n_train": self.n_train,
                "accuracy": self.accuracy, "std": self.std, "accuracies": self.accuracies,
                "seconds": self.seconds}


def learning_curve(
    make_model: Callable[[], object],
    X_train,
    y_train,
    X_test,
    y_test,
    sizes: Sequence[int | None] = (5, 10, 20, 50, None),
    *,
    repeats: int = 3,
    seed: int = 0,
    method: str = "",
) -> list[dict]:
    """Test accuracy vs labelled examples per class (``None`` = all of them).

    For each size, ``repeats`` random per-class subsets of the training set are
    drawn (one for "all"), a fresh ``make_model()`` is fitted on each and scored
    on the whole test set. Returns one dict per size: method, per_class,
    n_train, accuracy (mean), std, accuracies, seconds.
    """
    y_train = np.asarray(y_train)
    y_test = np.asarray(y_test)
    smallest = int(np.bincount(np.unique(y_train, return_inverse=True)[1]).min())
    n_classes = len(np.unique(y_train))
    rows = []
    for size in sizes:
        # A size at or above the smallest class is "all" (measured once, reported once).
        size_eff = None if size is None or size >= smallest else size
        if size_eff is None and any(r["per_class"] is None for r in rows):
            continue
        reps = 1 if size_eff is None else repeats
        accs, n = [], 0
        t0 = time.perf_counter()
        for r in range(reps):
            idx = per_class_indices(y_train, size_eff, seed=seed + r)
            n = len(idx)
            model = make_model()
            model.fit(_take(X_train, idx), y_train[idx])
            accs.append(float(np.mean(model.predict(X_test) == y_test)))
        row = CurvePoint(method, size_eff, n, float(np.mean(accs)), float(np.std(accs)),
                         accs, time.perf_counter() - t0).as_dict()
        row["n_classes"] = n_classes
        rows.append(row)
    return rows


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
) -> list[dict]:
    """The four learning curves of notebook 01 on one train/test split.

    ``features``: featuriser outputs (train, test); ``pixels``: raw pixels as
    vectors (train, test), e.g. from :func:`pixel_features`; ``images``: uint8
    images (train, test) for the CNN trained from scratch. Every method sees
    the same random per-class subsets (same ``seed``).
    """
    plans = {
        "pixels + logistic regression": (lambda: make_classifier("logistic regression"), pixels),
        "small CNN from scratch": (
            lambda: SmallCNN(image_passes=cnn_image_passes, seed=seed), images),
        "featuriser + logistic regression": (
            lambda: make_classifier("logistic regression"), features),
        "featuriser + linear SVM": (lambda: make_classifier("linear SVM", seed=seed), features),
    }
    rows = []
    for m in methods:
        make, (tr, te) = plans[m]
        rows += learning_curve(make, tr, y_train, te, y_test, sizes, repeats=repeats, seed=seed,
                               method=m)
    return rows


def _take(X, idx):
    return X[idx] if isinstance(X, np.ndarray) else [X[i] for i in idx]


def summarise_curves(rows: list[dict]) -> dict[str, dict[str, float]]:
    """{method: {"5": acc, ..., "all": acc}} from learning-curve rows."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        key = "all" if r["per_class"] is None else str(r["per_class"])
        out.setdefault(r["method"], {})[key] = round(r["accuracy"], 4)
    return out


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


def plot_learning_curves(rows: list[dict], ax=None, *, title: str = "", chance: float | None = None):
    """Accuracy vs labelled images per class (log axis), one line per method."""
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(6, 4)).subplots()
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for m in methods:
        pts = [r for r in rows if r["method"] == m]
        x = [r["n_train"] / max(1, _n_classes_guess(r)) for r in pts]
        colour, marker, ls = _STYLES.get(m, (None, "o", "-"))
        ax.errorbar(x, [r["accuracy"] for r in pts], yerr=[r["std"] for r in pts], label=m,
                    color=colour, marker=marker, linestyle=ls, capsize=3)
    if chance is not None:
        ax.axhline(chance, color="#999", lw=0.8, ls=":")
        ax.text(ax.get_xlim()[0], chance, " chance", va="bottom", fontsize=8, color="#666")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images per class")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def _n_classes_guess(row: dict) -> int:
    return row.get("n_classes", 2)


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


# --------------------------------------------------------------------------- ProbeLab


class ProbeLab:
    """Features of every candidate layer on one train/test split, then fast probes.

    ``ProbeLab(train_images, y_train, test_images, y_test)`` keeps the images;
    :meth:`features` featurises them once per (backbone, weights) for all
    candidate layers (cached on disk too), and :meth:`evaluate` fits a
    classifier on a per-class subset of one layer in milliseconds.
    """

    def __init__(self, X_train, y_train, X_test, y_test, *, class_names: Sequence[str] = (),
                 input_size: int | None = None, n_layers: int = 8, batch_size: int = 32,
                 progress: bool = False):
        self.X_train, self.y_train = X_train, np.asarray(y_train)
        self.X_test, self.y_test = X_test, np.asarray(y_test)
        self.class_names = list(class_names)
        self.input_size = input_size
        self.n_layers = n_layers
        self.batch_size = batch_size
        self.progress = progress
        self._features: dict[tuple, dict] = {}
        self._featurisers: dict[tuple, object] = {}

    def featuriser(self, backbone: str = "auto", weights: str = "imagenet"):
        from tlwidgets.featurize import Featuriser

        key = (backbone, weights)
        if key not in self._featurisers:
            f = Featuriser(backbone, weights=weights, input_size=self.input_size,
                           batch_size=self.batch_size, progress=self.progress)
            self._featurisers[key] = f.fit()
        return self._featurisers[key]

    def layers(self, backbone: str = "auto", weights: str = "imagenet") -> list[str]:
        from tlwidgets.featurize import candidate_layers

        return candidate_layers(self.featuriser(backbone, weights).model_, n=self.n_layers)

    def features(self, backbone: str = "auto", weights: str = "imagenet") -> dict:
        """{"train": {layer: array}, "test": {layer: array}} for every candidate layer."""
        from tlwidgets.featurize import featurise_layers

        key = (backbone, weights)
        if key not in self._features:
            f = self.featuriser(backbone, weights)
            layers = self.layers(backbone, weights)
            tr = featurise_layers(f, layers, self.X_train)
            te = featurise_layers(f, layers, self.X_test)
            self._features[key] = {"train": tr.layers, "test": te.layers}
        return self._features[key]

    def evaluate(self, *, backbone: str = "auto", weights: str = "imagenet",
                 layer: str | None = None, classifier: str = "logistic regression",
                 per_class: int | None = None, seed: int = 0) -> dict:
        """Accuracy of ``classifier`` trained on ``per_class`` images of each class."""
        feats = self.features(backbone, weights)
        layer = layer or list(feats["train"])[-1]
        idx = per_class_indices(self.y_train, per_class, seed=seed)
        clf = make_classifier(classifier).fit(feats["train"][layer][idx], self.y_train[idx])
        acc = float(np.mean(clf.predict(feats["test"][layer]) == self.y_test))
        return {"accuracy": acc, "n_train": int(len(idx)), "layer": layer,
                "dim": int(feats["train"][layer].shape[1]), "train_index": idx}

    def curve(self, *, sizes: Sequence[int | None] = (5, 10, 20, 50, None), repeats: int = 3,
              **kwargs) -> list[dict]:
        """Accuracy at each training size (mean over ``repeats`` subsets)."""
        smallest = int(np.bincount(np.unique(self.y_train, return_inverse=True)[1]).min())
        rows = []
        for size in sizes:
            if size is not None and size >= smallest:
                size = None
            if rows and rows[-1]["per_class"] is None and size is None:
                continue
            reps = 1 if size is None else repeats
            accs = [self.evaluate(per_class=size, seed=s, **kwargs) for s in range(reps)]
            rows.append({"per_class": size, "n_train": accs[0]["n_train"],
                         "accuracy": float(np.mean([a["accuracy"] for a in accs]))})
        return rows

    def projection(self, *, backbone: str = "auto", weights: str = "imagenet",
                   layer: str | None = None) -> dict:
        """2D PCA of the training features (fitted on train), test points projected too."""
        from sklearn.decomposition import PCA

        feats = self.features(backbone, weights)
        layer = layer or list(feats["train"])[-1]
        pca = PCA(2, random_state=0).fit(feats["train"][layer])
        return {"train": pca.transform(feats["train"][layer]),
                "test": pca.transform(feats["test"][layer]),
                "explained": pca.explained_variance_ratio_.tolist(), "layer": layer}
