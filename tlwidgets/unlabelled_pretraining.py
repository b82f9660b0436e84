"""When transfer fails: pretrain on the unlabelled target images, and compare the starts.

The experiment of notebook 06 on the chest X-rays. Each *source* is an encoder
(grey ``(n, h, w, 1)`` images in [0, 1] in, a feature map out), built by
:func:`pretrain_sources` before any label is seen:

====================================  ==========================================
source                                how its weights were obtained
====================================  ==========================================
``random (small encoder)``            Glorot initialisation (the baseline)
``autoencoder, layer by layer``       :func:`~tlwidgets.autoencoders.pretrain_layerwise`
``autoencoder, end to end``           :func:`~tlwidgets.autoencoders.pretrain_end_to_end`
``random (MobileNet)``                MobileNet alpha 0.25, untrained (the baseline)
``ImageNet (MobileNet)``              the ImageNet weights
``ImageNet + reconstruction``         ImageNet weights, then :func:`reconstruct_pretrain`
====================================  ==========================================

* :func:`compare_pretraining` -- every source as a featuriser (+ logistic regression)
  and as the start of fine-tuning with a small head, over labelled sizes and repeats
  (:func:`tlwidgets.learning_curves.learning_curve`; tidy records). The random start of
  each architecture is always included.
* :func:`negative_transfer` -- where a pretrained start ends below the random start.
* :func:`predicted_transferability` -- LogME and the kNN score of each source
  (:mod:`tlwidgets.transferability`), computed before any labelled training.

Profile-sized defaults are in :data:`SETTINGS`.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np

from tlwidgets.autoencoders import (
    MIN_IMAGES,
    encoder_features,
    grey01,
    imagenet_encoder,
    pretrain_end_to_end,
    pretrain_layerwise,
    random_encoder,
    reconstruct_pretrain,
    set_trainable,
)
from tlwidgets.learning_curves import Draw, Fit, PerClass, learning_curve, summarise_curves
from tlwidgets.training import release_traced_gradients

__all__ = [
    "BASELINES",
    "SETTINGS",
    "SOURCES",
    "compare_pretraining",
    "negative_transfer",
    "predicted_transferability",
    "predicted_vs_measured",
    "pretrain_end_to_end",
    "pretrain_layerwise",
    "pretrain_sources",
    "reconstruct_pretrain",
    "settings",
]

RANDOM_SMALL, RANDOM_MOBILENET = "random (small encoder)", "random (MobileNet)"
#: The sources, in the order they are shown.
SOURCES = (RANDOM_SMALL, "autoencoder, layer by layer", "autoencoder, end to end",
           RANDOM_MOBILENET, "ImageNet (MobileNet)", "ImageNet + reconstruction")
#: Each source's random start: the same architecture, untrained.
BASELINES = {s: (RANDOM_SMALL if i < 3 else RANDOM_MOBILENET) for i, s in enumerate(SOURCES)}
USES = ("featuriser", "fine-tuned")
PIXELS = "pixels + logistic regression"

#: Sizes of every run by notebook profile: pretraining, and the comparison's curve.
SETTINGS: dict[str, dict] = {
    "smoke": {"filters": (4, 8), "epochs_per_layer": 1, "epochs": 2, "reconstruct_epochs": 1,
              "image_size": 32, "batch_size": 64, "pretrain_images": 256,
              "sizes": (5,), "repeats": 1, "finetune_steps": 3, "finetune_lr": 1e-3,
              "sources": SOURCES[:3]},  # no MobileNet: tracing it alone takes many seconds
    "quick": {"filters": (16, 32, 64), "epochs_per_layer": 2, "epochs": 4,
              "reconstruct_epochs": 1, "image_size": 48, "batch_size": 64,
              "pretrain_images": 1200, "sizes": (20, 1000), "repeats": 1,
              "finetune_steps": 20, "finetune_lr": 1e-4, "sources": SOURCES},
    "workshop": {"filters": (16, 32, 64), "epochs_per_layer": 2, "epochs": 4,
                 "reconstruct_epochs": 1, "image_size": 48, "batch_size": 64,
                 "pretrain_images": None, "sizes": (20, None), "repeats": 2,
                 "finetune_steps": 20, "finetune_lr": 1e-4, "sources": SOURCES},
}


def settings(profile: str = "workshop", **overrides) -> dict:
    """The settings of ``profile`` (see :data:`SETTINGS`), with ``overrides`` applied."""
    if profile not in SETTINGS:
        raise ValueError(f"profile must be one of {tuple(SETTINGS)}, not {profile!r}.")
    unknown = set(overrides) - set(SETTINGS[profile])
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)}; the settings are "
                         f"{sorted(SETTINGS[profile])}.")
    return {**SETTINGS[profile], **overrides}


def _labels(x: np.ndarray, labels, what: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{what}: labels must be one class per image; got shape {y.shape}.")
    if len(y) != len(x):
        raise ValueError(f"{what}: {len(x)} images but {len(y)} labels; give one label per "
                         "image.")
    if len(np.unique(y)) < 2:
        raise ValueError(f"{what}: the labels hold a single class; give at least two.")
    return y


def _with_baselines(names: Sequence[str], baselines: Mapping[str, str]) -> list[str]:
    """``names`` with each one's random start added before it (always shown)."""
    out: list[str] = []
    for name in names:
        base = baselines.get(name)
        for n in ([base] if base and base != name else []) + [name]:
            if n not in out:
                out.append(n)
    return out


# --------------------------------------------------------------------------- sources


def pretrain_sources(images, *, names: Sequence[str] | None = None, profile: str = "workshop",
                     seed: int = 0, progress: Callable[[dict], None] | None = None,
                     **overrides) -> dict[str, keras.Model]:
    """Build the encoders of ``names`` (default: the profile's ``sources``), with their random
    starts, from
    unlabelled ``images``: no label is used. ``progress`` gets each pretraining epoch's
    ``{"source", "stage", "epoch", "loss"}`` and ``{"source", "seconds"}`` when one is built.
    """
    cfg = settings(profile, **overrides)
    names = _with_baselines(cfg["sources"] if names is None else list(names), BASELINES)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise ValueError(f"Unknown sources {unknown}; choose from {list(SOURCES)}.")
    x = grey01(images, min_images=MIN_IMAGES)
    if cfg["pretrain_images"] is not None and len(x) > cfg["pretrain_images"]:
        x_pre = x[np.sort(np.random.default_rng(seed).permutation(len(x))[:cfg["pretrain_images"]])]
    else:
        x_pre = x
    shape, filters, small = x.shape[1:], cfg["filters"], cfg["image_size"]
    common = {"batch_size": cfg["batch_size"], "seed": seed}
    out: dict[str, keras.Model] = {}
    for name in names:
        start = time.process_time()
        tell = None if progress is None else (lambda row, n=name: progress({"source": n, **row}))
        if name == RANDOM_SMALL:
            enc = random_encoder(shape, filters=filters, seed=seed)
        elif name == "autoencoder, layer by layer":
            enc = pretrain_layerwise(x_pre, filters=filters, epochs_per_layer=cfg[
                "epochs_per_layer"], progress=tell, **common)
        elif name == "autoencoder, end to end":
            enc = pretrain_end_to_end(x_pre, filters=filters, epochs=cfg["epochs"],
                                      progress=tell, **common)
        elif name == RANDOM_MOBILENET:
            some = np.random.default_rng(seed).permutation(len(x_pre))[:128]  # no labels
            enc = imagenet_encoder(shape, image_size=small, weights="random", seed=seed,
                                   statistics_from=x_pre[np.sort(some)])
        elif name == "ImageNet (MobileNet)":
            enc = imagenet_encoder(shape, image_size=small, seed=seed)
        else:
            enc = reconstruct_pretrain(imagenet_encoder(shape, image_size=small, seed=seed),
                                       x_pre, epochs=cfg["reconstruct_epochs"], progress=tell,
                                       **common)
        out[name] = enc
        release_traced_gradients()  # the training model (decoder, graphs) goes: keep the
        gc.collect()                # encoder alone, not every source's training graph
        if progress is not None:
            progress({"source": name, "cpu_seconds": time.process_time() - start})
    return out


# --------------------------------------------------------------------------- methods


def _featuriser_method(features_train, y_train, features_test, y_test) -> Fit:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return Fit(lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
               features_train, y_train, features_test, y_test)


def _architecture(model: keras.Model) -> list:
    """What a model computes, without names, initialisers or trainable flags: each
    layer's class and configuration, in order, nested models included."""
    from tlwidgets.layers import iter_layers

    skip = {"name", "trainable", "seed"}
    out = []
    for info in iter_layers(model):
        config = info.layer.get_config()
        out.append((type(info.layer).__name__,
                    repr(sorted((k, v) for k, v in config.items() if k not in skip
                                and not k.endswith(("_initializer", "layers")))),
                    [tuple(w.shape) for w in info.layer.weights]))
    return out


class _FineTune:
    """A learning-curve method: ``encoder`` + a small head (flatten, dropout, softmax),
    fine-tuned as LP-FT: the head starts as a logistic regression on the encoder's raw
    features of the draw (``features_train``), then every layer trains for about
    ``steps`` batches at ``lr`` (a new random head at a low rate barely moves; at a high
    rate it wrecks a pretrained encoder). Each draw starts again from the encoder's
    weights (the model is built and compiled once, then reset).

    ``like``: the fine-tuning of an encoder of the same architecture (MobileNet from
    random, ImageNet, or ImageNet + reconstruction weights), whose compiled model this
    one borrows with its own starting weights: a traced training graph costs seconds and
    tens of MB, so one graph serves the three. Only the owner's
    encoder is trained in place; ``reset`` of the owner puts it back."""

    def __init__(self, encoder, x_train, y_train, x_test, y_test, *, n_classes: int,
                 steps: int, lr: float, features_train: np.ndarray, batch_size: int = 32,
                 like: _FineTune | None = None):
        self.encoder, self.like = encoder, like
        self.architecture = _architecture(encoder)  # computed once: owners are matched on it
        set_trainable(encoder, True)
        if like is None:
            inputs = keras.Input(encoder.input_shape[1:])
            h = keras.layers.Flatten()(encoder(inputs, training=False))
            h = keras.layers.Dropout(0.3)(h)
            out = keras.layers.Dense(n_classes, activation="softmax", name="head")(h)
            self.model = keras.Model(inputs, out, name=f"fine_tune_{encoder.name}")
            release_traced_gradients()  # earlier fine-tunes' graphs may go
            self.model.compile(optimizer=keras.optimizers.Adam(lr),
                               loss="sparse_categorical_crossentropy")
            self.model.optimizer.build(self.model.trainable_variables)
            self.start = self.model.get_weights()
            self.optimizer_start = [v.numpy() for v in self.model.optimizer.variables]
        else:
            own = encoder.get_weights()
            if self.architecture != like.architecture:
                raise ValueError(f"{encoder.name} and {like.encoder.name} differ in "
                                 "architecture: they cannot share a fine-tuning model.")
            self.model, self.optimizer_start = like.model, like.optimizer_start
            self.start = own + like.start[len(own):]  # this encoder, the same new head
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self.features_train, self.n_classes = features_train, n_classes
        self.steps, self.batch_size = steps, batch_size

    def reset(self) -> None:
        self.model.set_weights(self.start)
        for v, value in zip(self.model.optimizer.variables, self.optimizer_start, strict=True):
            v.assign(value)

    def _linear_probe(self, draw: Draw) -> None:
        """The head as a logistic regression on the draw's features (raw, as in
        :class:`tlwidgets.transfer_regimes.KerasRegime`)."""
        from tlwidgets.training import linear_probe_head

        linear_probe_head(self.model.get_layer("head"), self.features_train[draw.index],
                          self.y_train[draw.index])

    def __call__(self, draw: Draw) -> float:
        from tlwidgets.training import index_batches

        self.reset()  # (no keras.utils.set_random_seed here: it makes fit trace again)
        self._linear_probe(draw)
        y = self.y_train[draw.index].astype(np.int32)
        steps = max(self.steps, math.ceil(draw.n_train / self.batch_size))  # >= one epoch
        batches = index_batches([self.x_train], draw.index, y, self.batch_size, seed=draw.seed)
        self.model.fit(batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
        # scored after every draw: its prediction graph, traced once, runs 4x faster than
        # plain calls (and is freed with the model)
        proba = self.model.predict(self.x_test, batch_size=128, verbose=0)
        return float(np.mean(proba.argmax(axis=1) == self.y_test))


def compare_pretraining(x_train, y_train, x_test, y_test, *,
                        sizes: Sequence[int | None] | None = None, repeats: int | None = None,
                        profile: str = "workshop",
                        sources: Sequence[str] | Mapping[str, keras.Model] | None = None,
                        uses: Sequence[str] = USES, pixels: bool = True, seed: int = 0,
                        progress: Callable[[dict], None] | None = None,
                        **overrides) -> list[dict]:
    """Each source as a featuriser and as a fine-tuning start, on the same labelled subsets:
    the tidy records of :func:`~tlwidgets.learning_curves.learning_curve`.

    ``sources``: names from :data:`SOURCES` (default: the profile's; pretrained here on all
    of ``x_train``, without its labels), or ``{name: encoder}`` from
    :func:`pretrain_sources` (fine-tuning leaves their weights as they were). The random
    start of each architecture is always added. Methods are named
    ``"<source> + logistic regression"`` and ``"<source>, fine-tuned"`` (``uses`` picks
    them), plus ``"pixels + logistic regression"`` with ``pixels`` (a
    source that is ``None``, as in :func:`predicted_transferability`, is left to it). Sizes
    are labelled images per class; ``sizes``, ``repeats`` and the training settings default
    to ``profile``'s (:data:`SETTINGS`). Each record also holds ``source``, ``use`` and
    ``baseline`` (the method of the same use from the random start; ``None`` for a baseline).
    """
    cfg = settings(profile, **overrides)
    sizes = cfg["sizes"] if sizes is None else sizes
    repeats = cfg["repeats"] if repeats is None else repeats
    bad = [u for u in uses if u not in USES]
    if bad or not uses:
        raise ValueError(f"uses must be some of {USES}; got {list(uses)}.")
    xtr, xte = grey01(x_train, min_images=MIN_IMAGES), grey01(x_test)
    ytr, yte = _labels(xtr, y_train, "training set"), _labels(xte, y_test, "test set")
    if xtr.shape[1:] != xte.shape[1:]:
        raise ValueError(f"Training images are {xtr.shape[1:3]} but test images "
                         f"{xte.shape[1:3]}; give both at one size.")
    if isinstance(sources, Mapping):
        sources = {n: e for n, e in sources.items() if e is not None}  # None: pixels, below
        missing = [BASELINES[n] for n in sources if n in BASELINES and BASELINES[n] not in sources]
        encoders = dict(sources)
        if missing:
            encoders.update(pretrain_sources(xtr, names=missing, profile=profile, seed=seed,
                                             **overrides))
        order = _with_baselines(list(sources), BASELINES)
        encoders = {n: encoders[n] for n in order}
    else:
        encoders = pretrain_sources(xtr, names=sources, profile=profile, seed=seed,
                                    **overrides)
    n_classes = len(np.unique(ytr))
    methods: dict[str, Callable] = {}
    meta: dict[str, dict] = {}
    if pixels:
        methods[PIXELS] = _featuriser_method(xtr.reshape(len(xtr), -1), ytr,
                                             xte.reshape(len(xte), -1), yte)
        meta[PIXELS] = {"source": "pixels", "use": "featuriser", "baseline": None}
    names = {"featuriser": "{} + logistic regression", "fine-tuned": "{}, fine-tuned"}
    tuners: list[_FineTune] = []
    for name, enc in encoders.items():
        base = BASELINES.get(name)
        features_train = encoder_features(enc, xtr)  # the featuriser's, and LP-FT's probe
        for use in uses:
            method = names[use].format(name)
            if use == "featuriser":
                methods[method] = _featuriser_method(features_train, ytr,
                                                     encoder_features(enc, xte), yte)
            else:
                arch = _architecture(enc)
                like = next((t for t in tuners if t.like is None and t.architecture == arch),
                            None)
                methods[method] = _FineTune(enc, xtr, ytr, xte, yte, n_classes=n_classes,
                                            steps=cfg["finetune_steps"], lr=cfg["finetune_lr"],
                                            features_train=features_train, like=like)
                tuners.append(methods[method])
            meta[method] = {"source": name, "use": use,
                            "baseline": names[use].format(base) if base and base != name
                            else None}
    try:
        rows = learning_curve(methods, PerClass(ytr), sizes, repeats=repeats, seed=seed,
                              domain="chest X-rays", progress=progress)
    finally:
        for tuner in tuners:  # the encoders leave as they came (only owners train theirs)
            if tuner.like is None:
                tuner.reset()
    return [{**r, **meta[r["method"]]} for r in rows]


# --------------------------------------------------------------------------- reading

def negative_transfer(rows: Sequence[Mapping], *, margin: float = 0.0) -> list[dict]:
    """Each pretrained method against its random start, size by size.

    One dict per (method, size) whose records name a ``baseline``: ``mean``, ``std``,
    ``baseline_mean``, ``baseline_std``, ``gap`` (mean - baseline mean), ``spread``
    (std + baseline std: the error bars touch when ``|gap|`` is within it), ``runs`` (the
    fewer runs of the two), and ``negative``: ``gap < -(spread + margin)``, the pretrained
    start ends below the random one beyond the spread. A size measured once (``runs`` 1)
    has no spread; only ``margin`` guards it.
    """
    pairs = {r["method"]: r["baseline"] for r in rows if r.get("baseline")}
    summary = summarise_curves(rows)
    out = []
    for method, base in pairs.items():
        if base not in summary:
            raise ValueError(f"The records of {method!r} name the baseline {base!r}, which "
                             "they do not hold; keep the random start's records with them.")
        for size, p in summary[method].items():
            b = summary[base].get(size)
            if b is None:
                continue
            gap, spread = p["mean"] - b["mean"], p["std"] + b["std"]
            out.append({"method": method, "baseline": base, "size": size, "mean": p["mean"],
                        "std": p["std"], "baseline_mean": b["mean"], "baseline_std": b["std"],
                        "gap": gap, "spread": spread, "runs": min(p["n"], b["n"]),
                        "negative": bool(gap < -(spread + margin))})
    return out


def predicted_transferability(sources: Mapping[str, keras.Model | None], images, labels, *,
                              k: int = 5) -> list[dict]:
    """LogME and the leave-one-out kNN accuracy of each source's features on labelled
    ``images``, computed without training anything: one row per source
    (``source``, ``logme``, ``knn``, ``n_images``, ``n_features``, ``seconds``).
    A source that is ``None`` stands for the raw pixels.
    """
    from tlwidgets.transferability import knn_score, logme

    if not sources:
        raise ValueError("Give at least one source: {name: encoder}.")
    x = grey01(images, min_images=2)
    y = _labels(x, labels, "predicted_transferability")
    rows = []
    for name, enc in sources.items():
        start = time.perf_counter()
        f = x.reshape(len(x), -1).astype(np.float64) if enc is None else encoder_features(enc, x)
        rows.append({"source": name, "logme": logme(f, y), "knn": knn_score(f, y, k=k),
                     "n_images": len(x), "n_features": f.shape[1],
                     "seconds": time.perf_counter() - start})
    return rows


def predicted_vs_measured(predicted: Sequence[Mapping], rows: Sequence[Mapping], *,
                          use: str = "featuriser") -> dict:
    """The scores of :func:`predicted_transferability` next to the accuracy measured by
    :func:`compare_pretraining` (``use``: ``"featuriser"`` or ``"fine-tuned"``).

    Returns ``{"table": [{"source", "logme", "knn", "measured": {size: mean}}],
    "agreement": [{"size", "score", "kendall_tau"}]}``: Kendall's tau between each
    score's ranking of the sources and the measured ranking at each size (1: the same
    order, -1: reversed; ``nan`` with fewer than three sources).
    """
    from scipy.stats import kendalltau

    if use not in USES:
        raise ValueError(f"use must be one of {USES}, not {use!r}.")
    summary = summarise_curves([r for r in rows if r.get("use") == use])
    table = []
    for p in predicted:
        by_size = summary.get(next((m for m in summary if _source_of(rows, m) == p["source"]),
                                   ""), {})
        table.append({"source": p["source"], "logme": p["logme"], "knn": p["knn"],
                      "measured": {size: v["mean"] for size, v in by_size.items()}})
    sizes = list(dict.fromkeys(s for t in table for s in t["measured"]))
    agreement = []
    for size in sizes:
        have = [t for t in table if size in t["measured"]]
        for score in ("logme", "knn"):
            tau = (kendalltau([t[score] for t in have], [t["measured"][size] for t in have])[0]
                   if len(have) >= 3 else float("nan"))
            agreement.append({"size": size, "score": score, "kendall_tau": float(tau)})
    return {"table": table, "agreement": agreement}


def _source_of(rows: Sequence[Mapping], method: str) -> str | None:
    return next((r.get("source") for r in rows if r["method"] == method), None)
