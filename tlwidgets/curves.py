"""Notebook 01's experiments: featurisers against pixels and a CNN from scratch.

* :func:`compare_learning_curves` -- the four methods of notebook 01 on one split
  of images, through :func:`tlwidgets.learning_curves.learning_curve` (sizes in
  images per class).
* :func:`depth_sweep` -- a Yosinski-style sweep: a linear probe on the pooled
  output of each block of a network, from the first convolutions to the last.
* :class:`SmallCNN` -- the baseline trained from scratch (scikit-learn API);
  :func:`make_classifier` -- the classifiers for features, by name;
  :func:`pixel_features` -- raw pixels as features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from tlwidgets.learning_curves import Fit, Method, PerClass, learning_curve

__all__ = [
    "CLASSIFIERS",
    "METHODS",
    "SmallCNN",
    "compare_learning_curves",
    "depth_sweep",
    "make_classifier",
    "pixel_features",
    "plot_depth_sweep",
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

    ``reuse_graph=True`` builds and compiles the network once per input shape and
    setting, and resets it to the same starting weights for every fit (building a
    training graph costs seconds, a reset milliseconds). Fits then share that network,
    so a later fit replaces an earlier one's weights: use it where each fit is scored
    at once (learning curves).
    """

    _graphs: dict = {}  # (input shape, classes, settings) -> (model, weights, optimizer state)

    def __init__(self, epochs: int | None = None, image_passes: int = 3000, min_epochs: int = 15,
                 max_epochs: int = 100, batch_size: int = 32, learning_rate: float = 1e-3,
                 augment: bool = True, seed: int = 0, reuse_graph: bool = False):
        self.epochs = epochs
        self.image_passes = image_passes
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.augment = augment
        self.seed = seed
        self.reuse_graph = reuse_graph

    def _reused_model(self, shape, n_classes):
        key = (tuple(shape), n_classes, self.augment, self.learning_rate, self.seed)
        if key not in SmallCNN._graphs:
            model = self._model(shape, n_classes)
            model.optimizer.build(model.trainable_variables)
            SmallCNN._graphs[key] = (model, model.get_weights(),
                                     [v.numpy() for v in model.optimizer.variables])
        model, weights, state = SmallCNN._graphs[key]
        model.set_weights(weights)
        for v, value in zip(model.optimizer.variables, state, strict=True):
            v.assign(value)
        return model

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
        from tlwidgets.training import release_traced_gradients

        release_traced_gradients()  # earlier models' graphs may go
        model.compile(keras.optimizers.Adam(self.learning_rate),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, X, y):
        import tensorflow as tf

        from tlwidgets.training import index_batches

        X = np.asarray(X)
        self.classes_, yi = np.unique(np.asarray(y), return_inverse=True)
        if self.reuse_graph:
            self.model_ = self._reused_model(X.shape[1:], len(self.classes_))
        else:
            self.model_ = self._model(X.shape[1:], len(self.classes_))
        epochs = self.epochs or int(np.clip(round(self.image_passes / len(X)),
                                            self.min_epochs, self.max_epochs))
        # A reused graph needs one batch shape: full batches from the repeated stream.
        batch = self.batch_size if self.reuse_graph else min(self.batch_size, len(X))
        steps = max(1, int(np.ceil(epochs * len(X) / batch)))
        # One long "epoch" over a repeated, reshuffled stream: Keras's per-epoch
        # overhead would dominate on tiny training sets otherwise.
        if self.reuse_graph:  # batches by index: no new tf.data pipeline per fit
            ds = index_batches([X], np.arange(len(X)), yi.astype(np.int32), batch,
                               seed=self.seed)
        else:
            ds = (tf.data.Dataset.from_tensor_slices((X, yi.astype(np.int32)))
                  .shuffle(len(X), seed=self.seed, reshuffle_each_iteration=True)
                  .repeat().batch(batch).prefetch(2))
        self.epochs_ = epochs
        self.history_ = self.model_.fit(ds, epochs=1, steps_per_epoch=steps, shuffle=False,
                                        verbose=0).history
        return self

    def predict_proba(self, X):
        from tlwidgets.training import call_in_chunks

        return call_in_chunks(self.model_, np.asarray(X))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# --------------------------------------------------------------------------- notebook 01


METHODS = (
    "pixels + logistic regression",
    "small CNN from scratch",
    "featuriser + logistic regression",
    "featuriser + linear SVM",
)


def compare_learning_curves(
    *,
    features: tuple[np.ndarray, np.ndarray] | None = None,
    pixels: tuple[np.ndarray, np.ndarray] | None = None,
    images: tuple[np.ndarray, np.ndarray] | None = None,
    y_train,
    y_test,
    sizes: Sequence[int | None] = (5, 10, 20, 50, None),
    repeats: int = 3,
    cnn_image_passes: int = 3000,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
    cnn_options: Mapping | None = None,
    domain: str = "",
    hog: tuple[np.ndarray, np.ndarray] | None = None,
    extra: Mapping[str, Method] | None = None,
    scoring: str | Sequence[str] = "accuracy",
) -> list[dict]:
    """Learning curves of image methods on one train/test split (notebooks 01 and 06).

    ``features``: featuriser outputs (train, test); ``pixels``: raw pixels as vectors
    (train, test), e.g. from :func:`pixel_features`; ``images``: uint8 images (train,
    test) for the CNN trained from scratch; ``hog``: HOG features (train, test) for
    "HOG + linear SVM" (:func:`tlwidgets.transfer_regimes.hog_features`). Only the
    inputs of the chosen ``methods`` are needed. ``extra``: more methods by name
    (``method(draw) -> score``, e.g. notebook 06's Keras regimes), run on the same
    draws. Sizes count images per class (``None``: all); every method sees the same
    random subsets. ``scoring``: ``"accuracy"`` or several metrics (``("accuracy",
    "roc_auc")``: one record each). ``cnn_options``: more :class:`SmallCNN` settings
    (``min_epochs``, ``reuse_graph``...; they win over ``cnn_image_passes``). Returns
    :func:`~tlwidgets.learning_curves.learning_curve` records.
    """
    plans = {
        "pixels + logistic regression": (lambda: make_classifier("logistic regression"), pixels),
        "HOG + linear SVM": (lambda: make_classifier("linear SVM", seed=seed), hog),
        "small CNN from scratch": (
            lambda: SmallCNN(**{"image_passes": cnn_image_passes, "seed": seed,
                                **(cnn_options or {})}), images),
        "featuriser + logistic regression": (
            lambda: make_classifier("logistic regression"), features),
        "featuriser + linear SVM": (lambda: make_classifier("linear SVM", seed=seed), features),
    }
    extra = dict(extra or {})
    unknown = [m for m in methods if m not in plans and m not in extra]
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; choose from {[*plans, *extra]}.")
    missing = [m for m in methods if m not in extra and plans[m][1] is None]
    if missing:
        raise ValueError(f"{missing} need their inputs: pass features=, pixels=, images= or "
                         "hog= as (train, test).")
    chosen = {m: extra[m] if m in extra else
              Fit(plans[m][0], plans[m][1][0], y_train, plans[m][1][1], y_test, scoring=scoring)
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


def plot_depth_sweep(rows: list[dict], ax=None, *, label: str = "", title: str = ""):
    """Probe accuracy against the position of the cut in the network."""
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(6, 4)).subplots()
    x = [r["position"] for r in rows]
    ax.plot(x, [r["accuracy"] for r in rows], marker="o", label=label or None)
    # Each cut named on the axis (not beside its point, where it would cover the curves).
    ax.set_xticks(x, [r["layer"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("cut after layer (from the input, left, to the last layer, right)")
    ax.set_ylabel("linear-probe test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if label:
        ax.legend(fontsize=8)
    return ax
