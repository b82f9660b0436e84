"""Featurise or fine-tune? Notebook 06's methods for image learning curves, and the crossover.

Every method is a learning-curve method (``method(draw) -> scores``) run by
:func:`tlwidgets.curves.compare_learning_curves` through
:func:`tlwidgets.learning_curves.learning_curve`, so the records are the same as
notebook 01's. The methods (:data:`METHODS`):

* hand-made features: raw pixels + logistic regression, HOG + linear SVM;
* the featuriser (cached features) + logistic regression or a linear SVM;
* Keras regimes on the pretrained base (:class:`KerasRegime`): a frozen base with a
  new head trained on augmented images; LP-FT (a linear probe, then every layer
  fine-tuned: Kumar et al., ICLR 2022); the top blocks fine-tuned; every layer
  fine-tuned at a low learning rate with BatchNormalization frozen; the same
  architecture from random initialisation;
* a small CNN from scratch (:class:`tlwidgets.curves.SmallCNN`).

:func:`crossover` finds, per domain, the smallest size from which fine-tuning beats
the featuriser (with the spread over repeats), or says it does not in range;
:func:`learner_domain` checks a learner's own folder of images before anything runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tlwidgets.learning_curves import Draw, size_label, summarise_curves

__all__ = [
    "FEATURISED",
    "FINE_TUNED",
    "KERAS_REGIMES",
    "METHODS",
    "DomainData",
    "KerasRegime",
    "RegimeSettings",
    "crossover",
    "crossover_sentence",
    "domain_curves",
    "hog_features",
    "one_network_at_a_time",
    "learner_domain",
    "prepare_folder",
    "prepare_domain",
]

KERAS_REGIMES = {
    "frozen base + new head": "frozen",
    "LP-FT": "lp-ft",
    "fine-tune top blocks": "top",
    "fine-tune all layers": "all",
    "same network, random init": "random",
}
METHODS = (
    "pixels + logistic regression",
    "HOG + linear SVM",
    "featuriser + logistic regression",
    "featuriser + linear SVM",
    *KERAS_REGIMES,
    "small CNN from scratch",
)
FEATURISED = ("featuriser + logistic regression", "featuriser + linear SVM")
FINE_TUNED = ("LP-FT", "fine-tune top blocks", "fine-tune all layers")
CACHED = ("frozen", "top")  # regimes trained on the frozen part's output, computed once
SHARED = ("lp-ft", "all")  # the same layers at the same rate: one compiled model for both


# --------------------------------------------------------------------------- hand-made features

def hog_features(images: np.ndarray, size: int = 64, *, pixels_per_cell: int = 8) -> np.ndarray:
    """Histograms of oriented gradients (Dalal & Triggs 2005) of grey ``size`` x ``size`` images.

    9 orientations, ``pixels_per_cell`` square cells, 2 x 2 cell blocks (L2-Hys), as
    ``skimage.feature.hog`` computes them: the hand-made features learned ones replaced.
    """
    from skimage.feature import hog

    from tlwidgets.images import resize_batch, to_rgb, to_uint8

    x = to_uint8(to_rgb(images, notices=[]))
    if x.shape[1] != size or x.shape[2] != size:
        x = resize_batch(x, size)
    grey = x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.stack([hog(g, orientations=9, pixels_per_cell=(pixels_per_cell,) * 2,
                         cells_per_block=(2, 2), feature_vector=True) for g in grey]
                    ).astype(np.float32)


# --------------------------------------------------------------------------- Keras regimes

@dataclass(frozen=True)
class RegimeSettings:
    """How long and how fast the Keras regimes train.

    Epochs follow the training set's size: about ``image_passes`` images in total,
    between ``min_epochs`` and ``max_epochs`` epochs (tiny sets get many epochs,
    large ones few). The regimes trained on the frozen part's cached output (a step
    costs a small fraction of a full one) get ``cached_passes`` and ``cached_max_epochs``.
    ``run_eagerly`` skips building the training graph (seconds of
    tracing per model), which pays only for a handful of steps. Learning rates: ``head_lr`` for a new head on a frozen base and
    for random initialisation, ``base_lr`` for fine-tuning pretrained layers (Adam).
    """

    image_passes: int = 1200
    min_epochs: int = 2
    max_epochs: int = 40
    batch_size: int = 16
    head_lr: float = 1e-3
    base_lr: float = 1e-4
    top_blocks: int = 2
    augment: bool = True
    augmented_copies: int = 2  # fixed augmented copies per image for the frozen base's cache
    run_eagerly: bool = False  # no graph to build: cheaper for a handful of steps (smoke)
    cached_passes: int = 4000
    cached_max_epochs: int = 200

    def epochs(self, n: int, *, cached: bool = False) -> int:
        passes, most = ((self.cached_passes, self.cached_max_epochs) if cached
                        else (self.image_passes, self.max_epochs))
        return int(np.clip(round(passes / max(n, 1)), self.min_epochs, most))


class KerasRegime:
    """One way of training the pretrained base, as a learning-curve method.

    ``regime``: ``"frozen"`` (new head on the frozen base, augmented images),
    ``"lp-ft"`` (the head first fitted as a logistic regression on the featuriser's
    features ``features_train``, then every layer fine-tuned at ``base_lr``),
    ``"top"`` (the top ``top_blocks`` blocks and the head at ``base_lr``), ``"all"``
    (every layer at ``base_lr``, BatchNormalization frozen) or ``"random"`` (the same
    architecture from random weights, every layer and BatchNormalization trained at
    ``head_lr``).

    ``"frozen"`` and ``"top"`` train only above a frozen part, so that part runs once
    per image (:func:`tlwidgets.frozen_cache.bottom_output`, cached on disk) and every
    draw trains the top on its output. The trade: augmentation cannot reach the raw
    image in every epoch. ``"frozen"`` keeps ``settings.augmented_copies`` fixed
    augmented copies of each image (epoch e reads copy e % k); ``"top"`` trains without
    augmentation.

    ``"random"`` trains BatchNormalization from scratch in a few dozen steps, too few
    for its moving statistics (momentum 0.99) to leave their start: after training
    they are re-estimated on a batch of the training images (as SWA's ``bn_update``
    does), so inference sees the statistics the trained weights produce.

    The model is built and compiled once (graph tracing costs seconds) and reset to
    its starting weights and a fresh optimizer state for every draw, so each draw
    trains from the same start. ``"lp-ft"`` and ``"all"`` train the same layers at the
    same rate and differ only in the head's start: pass the other as ``like`` and they
    share one compiled model (half the memory; ``predict_proba`` then answers for
    whichever trained last). Returns accuracy and ROC AUC on ``x_test``.
    """

    def __init__(self, regime: str, backbone, x_train: np.ndarray, y_train, x_test: np.ndarray,
                 y_test, *, settings: RegimeSettings = RegimeSettings(),
                 features_train: np.ndarray | None = None, seed: int = 0,
                 like: KerasRegime | None = None):
        if regime not in KERAS_REGIMES.values():
            raise ValueError(f"Unknown regime {regime!r}; choose one of "
                             f"{sorted(KERAS_REGIMES.values())}.")
        if regime == "lp-ft" and features_train is None:
            raise ValueError("LP-FT fits its linear probe on the featuriser's features: pass "
                             "features_train (the pooled output of the same base).")
        if like is not None and {regime, like.regime} != set(SHARED):
            raise ValueError(f"Only {' and '.join(SHARED)} can share a model (the same layers "
                             f"trained at the same rate); not {regime!r} and {like.regime!r}.")
        self.like = like
        self.regime, self.backbone, self.settings, self.seed = regime, backbone, settings, seed
        self.x_train, self.x_test = x_train, x_test
        self.y_train, self.y_test = np.asarray(y_train), np.asarray(y_test)
        self.features_train = features_train
        self.classes_ = np.unique(self.y_train)
        self.model_ = None
        self.epochs_: list[int] = []

    # --- the model, built once ------------------------------------------------------------
    def _build(self):
        if self.like is not None:  # the same compiled model and starting weights
            if self.like.model_ is None:
                self.like._build()
            for name in ("model_", "_trained", "_start", "_opt_start", "_head"):
                setattr(self, name, getattr(self.like, name))
            return
        import keras

        from tlwidgets import freezing
        from tlwidgets.training import augmentation, build_classifier, compile_classifier

        s = self.settings
        augment = augmentation(seed=self.seed) if (s.augment and self.regime == "frozen") else None
        if self.regime in ("all", "lp-ft", "random") and s.augment:
            augment = augmentation(rotation=0.0, zoom=0.0, contrast=0.0, seed=self.seed)
        # "top" trains from the frozen part's cached output: no augmentation (the trade).
        model = build_classifier(self.backbone, len(self.classes_), augment=augment,
                                 seed=self.seed, name=f"regime_{self.regime.replace('-', '_')}")
        if self.regime in ("all", "lp-ft"):
            freezing.unfreeze_all(model, train_bn=False)
        elif self.regime == "random":
            freezing.unfreeze_all(model, train_bn=True)
        elif self.regime == "top":
            freezing.unfreeze_top(model, s.top_blocks, train_bn=False)
        lr = s.head_lr if self.regime in ("frozen", "random") else s.base_lr
        compile_classifier(model, keras.optimizers.Adam(lr), run_eagerly=s.run_eagerly)
        trained = model
        if self.regime in CACHED:
            trained = self._cache_bottom(model)
            compile_classifier(trained, keras.optimizers.Adam(lr), run_eagerly=s.run_eagerly,
                               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        trained.optimizer.build(trained.trainable_variables)
        self.model_, self._trained = model, trained
        self._start = model.get_weights()
        self._opt_start = [v.numpy() for v in trained.optimizer.variables]
        self._head = model.get_layer("head")

    def _cache_bottom(self, model):
        """Cut below the trained part; its input for every training and test image, once."""
        from tlwidgets.frozen_cache import bottom_output, split_frozen

        s = self.settings
        split = split_frozen(model, s.top_blocks if self.regime == "top" else 0)
        copies = s.augmented_copies if split.random_layers else 0
        self._train_out = bottom_output(split, self.x_train, augmented_copies=copies,
                                        seed=self.seed, batch_size=128).features
        self._test_out = bottom_output(split, self.x_test, batch_size=128).features[0]
        return split.top

    def _reset(self):
        """The starting weights and a fresh optimizer (step 0, zero moments) for each draw."""
        self.model_.set_weights(self._start)
        for v, value in zip(self._trained.optimizer.variables, self._opt_start, strict=True):
            v.assign(value)

    def _linear_probe(self, idx):
        """LP of LP-FT: a logistic regression on the pooled features becomes the head."""
        from tlwidgets.training import linear_probe_head

        linear_probe_head(self._head, self.features_train[idx],
                          np.searchsorted(self.classes_, self.y_train[idx]))

    def __call__(self, draw: Draw) -> dict[str, float]:
        from tlwidgets.training import call_in_chunks, index_batches

        if self.model_ is None:
            self._build()
        self._reset()
        idx = draw.index if draw.index is not None else np.arange(len(self.y_train))
        if self.regime == "lp-ft":
            self._linear_probe(idx)
        y = np.searchsorted(self.classes_, self.y_train[idx]).astype(np.int32)
        s = self.settings
        epochs = s.epochs(len(idx), cached=self.regime in CACHED)
        steps = max(1, math.ceil(epochs * len(idx) / s.batch_size))
        # the top alone on the frozen part's output, or the whole network on the images
        parts = self._train_out if self.regime in CACHED else [self.x_train]
        ds = index_batches(parts, idx, y, s.batch_size, seed=self.seed + draw.seed)
        self._trained.fit(ds, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
        if self.regime == "random":
            self._reestimate_bn(idx)
        self.epochs_.append(epochs)
        if self.regime in CACHED:
            return _scores(_softmax(call_in_chunks(self._trained, self._test_out)), self.y_test,
                           self.classes_)
        return _scores(self.predict_proba(self.x_test), self.y_test, self.classes_)

    def _reestimate_bn(self, idx: np.ndarray, n: int = 128) -> None:
        """BatchNormalization's moving statistics from up to ``n`` training images."""
        from tlwidgets.training import reestimate_batchnorm

        rng = np.random.default_rng(self.seed)
        reestimate_batchnorm(self.model_, self.x_train[np.sort(rng.permutation(idx)[:n])])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of the whole classifier on images ``x``."""
        from tlwidgets.training import call_in_chunks

        if self.regime in CACHED:  # a small top model: plain calls
            return _softmax(call_in_chunks(self.model_, x))
        # the whole network: its prediction graph runs twice as fast as plain calls
        return _softmax(self.model_.predict(x, batch_size=128, verbose=0))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def _scores(proba: np.ndarray, y_test: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    y = np.searchsorted(classes, y_test)
    out = {"accuracy": float(np.mean(np.argmax(proba, axis=1) == y))}
    if len(classes) == 2 and len(np.unique(y)) == 2:
        out["roc_auc"] = float(roc_auc_score(y, proba[:, 1]))
    return out


# --------------------------------------------------------------------------- a domain's data

@dataclass
class DomainData:
    """One domain's train and test images at the network's size, and what is computed once.

    ``images_*``: uint8 (N, S, S, 3) at the base's input size; ``features_*``: the
    featuriser's pooled outputs (cached on disk by the Featuriser); ``pixels_*`` and
    ``hog_*``: the hand-made features; ``small_*``: images for the CNN from scratch.
    """

    name: str
    class_names: list[str]
    y_train: np.ndarray
    y_test: np.ndarray
    images_train: np.ndarray
    images_test: np.ndarray
    features_train: np.ndarray
    features_test: np.ndarray
    pixels_train: np.ndarray
    pixels_test: np.ndarray
    hog_train: np.ndarray
    hog_test: np.ndarray
    small_train: np.ndarray
    small_test: np.ndarray
    notices: list[str] = field(default_factory=list)

    @property
    def smallest_class(self) -> int:
        return int(np.bincount(self.y_train).min())


def prepare_domain(name: str, train, test, *, featuriser, small_size: int = 64,
                   pixel_size: int = 32, hog_size: int = 64) -> DomainData:
    """Everything a domain's curves need, computed once: ``train``/``test`` are
    :class:`tlwidgets.data.ImageSet` at the featuriser's input size."""
    from tlwidgets.curves import pixel_features
    from tlwidgets.images import resize_batch

    def small(x):
        return x if x.shape[1] == small_size else resize_batch(x, small_size)

    return DomainData(
        name, list(train.class_names), np.asarray(train.labels), np.asarray(test.labels),
        train.images, test.images,
        featuriser.transform(train.images), featuriser.transform(test.images),
        pixel_features(train.images, pixel_size), pixel_features(test.images, pixel_size),
        hog_features(train.images, hog_size), hog_features(test.images, hog_size),
        small(train.images), small(test.images),
        [n for n in (getattr(train, "notice", None),) if n])


def domain_curves(domain: DomainData, methods: Sequence[str], sizes: Sequence[int | None], *,
                  backbone=None, random_backbone=None, repeats: int = 3,
                  settings: RegimeSettings = RegimeSettings(), cnn_image_passes: int = 3000,
                  cnn_options: Mapping | None = None, seed: int = 0,
                  regimes: Mapping[str, KerasRegime] | None = None) -> list[dict]:
    """Learning-curve records of ``methods`` (names in :data:`METHODS`) on one domain.

    Runs :func:`tlwidgets.curves.compare_learning_curves` with the hand-made and
    featuriser methods and the Keras regimes (``backbone``: the pretrained
    :class:`~tlwidgets.backbones.Backbone`; ``random_backbone``: the same network with
    random weights, for "same network, random init"). Pass the same ``regimes`` dict to
    several calls to reuse their compiled models. ``cnn_options``: more
    :class:`~tlwidgets.curves.SmallCNN` settings. Records accuracy and ROC AUC.
    """
    from tlwidgets.curves import compare_learning_curves

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; choose from {list(METHODS)}.")
    regimes = {} if regimes is None else regimes
    extra = {}
    for m in methods:
        if m not in KERAS_REGIMES:
            continue
        kind = KERAS_REGIMES[m]
        bb = random_backbone if kind == "random" else backbone
        if bb is None:
            raise ValueError(f"{m!r} trains a network: pass "
                             f"{'random_backbone' if kind == 'random' else 'backbone'}=.")
        if m not in regimes:
            like = next((r for r in regimes.values()
                         if kind in SHARED and r.regime in SHARED and r.regime != kind), None)
            regimes[m] = KerasRegime(kind, bb, domain.images_train, domain.y_train,
                                     domain.images_test, domain.y_test, settings=settings,
                                     features_train=domain.features_train, seed=seed, like=like)
        extra[m] = regimes[m]
    return compare_learning_curves(
        features=(domain.features_train, domain.features_test),
        pixels=(domain.pixels_train, domain.pixels_test),
        images=(domain.small_train, domain.small_test),
        hog=(domain.hog_train, domain.hog_test),
        y_train=domain.y_train, y_test=domain.y_test, sizes=sizes, repeats=repeats,
        cnn_image_passes=cnn_image_passes, cnn_options=cnn_options, seed=seed,
        methods=list(methods), extra=extra,
        scoring=("accuracy", "roc_auc"), domain=domain.name)


def one_network_at_a_time(methods: Sequence[str]) -> list[list[str]]:
    """``methods`` in groups that need one compiled network each, in their order: the
    regimes that share a model (:data:`SHARED`) together, every other method alone. Run
    :func:`domain_curves` group by group and free each group's network before the next."""
    groups: list[list[str]] = []
    together: list[str] | None = None
    for m in dict.fromkeys(methods):
        if KERAS_REGIMES.get(m) not in SHARED:
            groups.append([m])
        elif together is None:
            together = [m]
            groups.append(together)
        else:
            together.append(m)
    return groups


# --------------------------------------------------------------------------- the crossover

def _best(summary: Mapping, names: Sequence[str], size) -> tuple[str, dict] | None:
    have = [(m, summary[m][size]) for m in names if m in summary and size in summary[m]]
    return max(have, key=lambda mp: mp[1]["mean"]) if have else None


def _first_from_which(sizes: list, wins: list[bool]):
    """The first size from which every later size wins too (None: not in range)."""
    for i, size in enumerate(sizes):
        if all(wins[i:]):
            return size
    return None


def crossover(rows: Sequence[Mapping], *, fine_tuned: Sequence[str] = FINE_TUNED,
              featurised: Sequence[str] = FEATURISED, metric: str = "accuracy") -> dict[str, dict]:
    """Per domain: the smallest size from which fine-tuning beats the featuriser.

    At each size measured by both, the best fine-tuning method's mean (of
    ``fine_tuned``) is set against the best featuriser's (of ``featurised``); the
    crossover is the first size from which the fine-tuned mean stays above, or ``None``
    ("not in range"). ``gap`` is the difference there with ``spread`` (the two standard
    deviations combined); ``per_repeat`` repeats the search on each repeat's own scores
    (a size with fewer repeats lends its mean), which gives the crossover's spread.
    """
    out = {}
    for domain in dict.fromkeys(r["domain"] for r in rows):
        mine = [r for r in rows if r["domain"] == domain and r["metric"] == metric]
        summary = summarise_curves(mine, metric=metric)
        sizes = [s for s in dict.fromkeys(r["size"] for r in mine)
                 if _best(summary, fine_tuned, s) and _best(summary, featurised, s)]
        sizes.sort(key=lambda s: math.inf if s is None else s)
        if not sizes:
            raise ValueError(f"{domain or 'The records'}: no size has both a fine-tuning method "
                             f"{list(fine_tuned)} and a featuriser {list(featurised)}.")
        pairs = {s: (_best(summary, fine_tuned, s), _best(summary, featurised, s)) for s in sizes}
        wins = [ft[1]["mean"] > fe[1]["mean"] for ft, fe in pairs.values()]
        at = _first_from_which(sizes, wins)
        repeats = sorted({r["repeat"] for r in mine})
        per_repeat = []
        for rep in repeats:
            rep_wins = []
            for s in sizes:
                (ft, _), (fe, _) = pairs[s]
                rep_wins.append(_score(mine, ft, s, rep, summary) > _score(mine, fe, s, rep, summary))
            per_repeat.append(_first_from_which(sizes, rep_wins))
        gaps = {size_label(s): {"fine-tuned": ft[0], "featuriser": fe[0],
                                "gap": ft[1]["mean"] - fe[1]["mean"],
                                "spread": math.hypot(ft[1]["std"], fe[1]["std"]),
                                "runs": min(ft[1]["n"], fe[1]["n"])}
                for s, (ft, fe) in pairs.items()}
        here = gaps[size_label(at)] if at is not None else None
        out[domain] = {"domain": domain, "size": at, "in_range": at is not None,
                       "sizes": sizes, "per_repeat": per_repeat, "gaps": gaps,
                       "gap": here["gap"] if here else None,
                       "spread": here["spread"] if here else None,
                       "metric": metric, "unit": mine[0]["size_unit"]}
    return out


def _score(rows, method, size, repeat, summary) -> float:
    got = [r["score"] for r in rows if r["method"] == method and r["size"] == size
           and r["repeat"] == repeat]
    return got[0] if got else summary[method][size]["mean"]


def crossover_sentence(result: Mapping) -> str:
    """The crossover in words, from :func:`crossover`'s result for one domain."""
    d, unit = result["domain"], result["unit"]
    largest = result["sizes"][-1]
    last = result["gaps"][size_label(largest)]

    def spread(gap: Mapping) -> str:  # one run at a size has no spread to compare with
        if gap["runs"] < 2:
            return "one run there: no spread measured"
        return (f"spread ±{gap['spread']:.3f}: "
                f"{'more' if gap['gap'] > gap['spread'] else 'less'} than the spread")

    if result["size"] is None:
        return (f"{d}: fine-tuning does not overtake the featuriser in the range measured (up to "
                f"{size_label(largest)} {unit}); at the largest size the best fine-tuning "
                f"({last['fine-tuned']}) is {last['gap']:+.3f} {result['metric']} from the best "
                f"featuriser ({last['featuriser']}; {spread(last)}).")
    reps = [size_label(s) if s is not None else "not in range" for s in result["per_repeat"]]
    at = result["gaps"][size_label(result["size"])]
    return (f"{d}: from {size_label(result['size'])} {unit} on, fine-tuning "
            f"({at['fine-tuned']}) beats the featuriser by {result['gap']:+.3f} "
            f"{result['metric']} ({spread(at)}); repeat by repeat the crossover falls at "
            f"{', '.join(reps)}.")


# --------------------------------------------------------------------------- a learner's folder

def learner_domain(root: str | Path, *, image_size: int, smallest_size: int,
                   test_fraction: float = 0.3, seed: int = 0):
    """A learner's ``root/<class>/<images>`` folder as (train, test, notices), checked first.

    Raises ``ValueError`` (saying what to fix) for fewer than two classes, an empty
    class, or a class with fewer training images than ``smallest_size`` after the
    ``test_fraction`` split; mixed image sizes and grey images are resized and
    converted, and said so in ``notices``. Nothing is featurised or cached here.
    """
    from PIL import Image

    from tlwidgets.data import ImageSet, list_image_folder
    from tlwidgets.images import load_image

    root = Path(root).expanduser()
    items, classes, skipped = list_image_folder(root)
    counts = {c: sum(1 for _, label in items if label == i) for i, c in enumerate(classes)}
    if len(classes) < 2:
        raise ValueError(f"{root} has one class folder ({classes[0]!r}); a classifier needs at "
                         "least two: put each class's images in its own sub-folder.")
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise ValueError(f"{root}: the class folder(s) {empty} hold no images; add images or "
                         "remove the folder.")
    need = math.ceil(smallest_size / (1 - test_fraction)) + 1
    short = {c: n for c, n in counts.items() if n < need}
    if short:
        raise ValueError(f"{root}: the smallest curve size is {smallest_size} training images per "
                         f"class, and {test_fraction:.0%} of each class is kept for testing, so "
                         f"every class needs at least {need} images; "
                         + ", ".join(f"{c!r} has {n}" for c, n in short.items()) + ".")
    notices = []
    shapes, modes = set(), set()
    for path, _ in items:
        try:
            with Image.open(path) as im:
                shapes.add(im.size)
                modes.add(im.mode)
        except OSError:
            skipped.append(str(path))
    if len(shapes) > 1:
        notices.append(f"The images come in {len(shapes)} different sizes; each is resized to "
                       f"{image_size} x {image_size} px (the network's input).")
    if modes & {"L", "LA", "1", "I", "I;16", "F"}:
        notices.append("Some images are grey; they are converted to RGB (three equal channels).")
    if skipped:
        notices.append(f"Skipped {len(skipped)} unreadable or non-image files.")
    good = [(p, label) for p, label in items if str(p) not in set(skipped)]
    images = np.stack([load_image(p, image_size) for p, _ in good])
    labels = np.array([label for _, label in good], dtype=np.int64)
    rng = np.random.default_rng(seed)
    test_idx = np.sort(np.concatenate([
        rng.permutation(np.flatnonzero(labels == c))[:max(1, round(test_fraction * counts[name]))]
        for c, name in enumerate(classes)]))
    train_mask = np.ones(len(labels), bool)
    train_mask[test_idx] = False
    paths = [str(p) for p, _ in good]
    train = ImageSet(images[train_mask], labels[train_mask], classes,
                     [p for p, k in zip(paths, train_mask, strict=True) if k])
    test = ImageSet(images[test_idx], labels[test_idx], classes, [paths[i] for i in test_idx])
    if int(np.bincount(train.labels).min()) < smallest_size:
        raise ValueError(f"{root}: after unreadable files were skipped a class has fewer than "
                         f"{smallest_size} training images; add images.")
    return train, test, notices



def prepare_folder(root: str | Path, *, featuriser, smallest_size: int, **kwargs) -> DomainData:
    """A learner's folder as a domain: checked by :func:`learner_domain` first (a bad folder
    raises before anything is featurised, so no cache entry is started), then prepared."""
    image_size = featuriser.fit().input_size_
    train, test, notices = learner_domain(root, image_size=image_size,
                                          smallest_size=smallest_size)
    domain = prepare_domain(Path(root).expanduser().name or str(root), train, test,
                            featuriser=featuriser, **kwargs)
    domain.notices = notices
    return domain
