"""The :class:`Featuriser` (a scikit-learn transformer) and :func:`featurise_layers`.

A run reads: make the input's source, compute its cache keys, take what the
cache has, extract the rest from the stream (prefetched batches through one
compiled function) and put it in the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from tlwidgets.featurize import cache
from tlwidgets.featurize.extractor import (
    POOLINGS,
    extractor,
    load_named_backbone,
    resolve_cut,
    vector_or_map,
)
from tlwidgets.featurize.results import FeatureSet, FeaturiserError, add_notice, empty_input
from tlwidgets.featurize.sources import Source, make_source, prefetch, prepared
from tlwidgets.notices import notice


@dataclass(frozen=True)
class _Plan:
    """How a built Featuriser runs: the network, its input and the cache."""

    model: Any
    size: int
    pooling: str
    scale: bool  # the MobileNet [-1, 1] scaling, in the graph
    prep: Callable | None  # else a numpy preprocessing function
    prep_name: str
    prep_is_backbones: bool  # the backbone's own preprocessing, which expects 0-255 input
    batch_size: int
    cache: Any
    progress: bool


class Featuriser(TransformerMixin, BaseEstimator):
    """A pretrained network cut at a layer, as a scikit-learn transformer.

    Parameters
    ----------
    backbone : ``"auto"``, ``"mobilenet_v2"``, ``"mobilenet_0.25"``, a
        :class:`tlwidgets.backbones.Backbone` or a ``keras.Model``. Named
        backbones are loaded through the asset layer and kept while among the
        last few used (``"auto"`` falls back to MobileNet alpha 0.25 with a notice).
    layer : where to cut: a layer path (``"base/block_13_expand"``), a unique
        name (dots allowed) or an index in :func:`tlwidgets.layers.iter_layers`.
    drop_last : or cut by removing the last N top-level layers of the model
        (``0`` keeps the whole model). Default: the model's output.
    pooling : ``"avg"`` (global average), ``"max"`` or ``"flatten"`` for
        feature maps; vector outputs are used as they are.
    input_size : the square input size in pixels (named backbones load at it;
        for a model, defaults to its input shape). Images of other sizes are resized.
    weights : ``"imagenet"`` or ``"random"`` (named backbones only).
    preprocess : ``"auto"`` (the backbone's own preprocessing; none for a plain
        ``keras.Model``), ``"mobilenet"`` ([0, 255] -> [-1, 1]), ``None`` (none)
        or a function applied to each float32 batch.
    batch_size : images per batch (memory is bounded by a few batches).
    cache : ``True`` (the default folder, ``$TLWIDGETS_CACHE/features``), a
        folder, or ``False``.
    progress : show a progress bar (tqdm; a widget in notebooks).
    """

    def __init__(
        self,
        backbone: Any = "auto",
        layer: str | int | None = None,
        drop_last: int | None = None,
        pooling: str = "avg",
        input_size: int | None = None,
        weights: str = "imagenet",
        preprocess: Any = "auto",
        batch_size: int = 32,
        cache: bool | str | Path = True,
        progress: bool = True,
    ):
        self.backbone = backbone
        self.layer = layer
        self.drop_last = drop_last
        self.pooling = pooling
        self.input_size = input_size
        self.weights = weights
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.cache = cache
        self.progress = progress

    # scikit-learn: a new, unfitted Featuriser with the same parameters. The
    # backbone is shared, not deep-copied (it is read-only configuration).
    def __sklearn_clone__(self):
        return type(self)(**self.get_params(deep=False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags

    # ------------------------------------------------------------------ set-up

    def _network(self, notices: list[str]) -> tuple[Any, Any, int]:
        """(backbone or None, keras model, input size) from ``backbone=``."""
        import keras

        from tlwidgets.backbones import Backbone

        bb = self.backbone
        if isinstance(bb, str):
            if self.weights not in ("imagenet", "random"):
                raise FeaturiserError(f"weights must be 'imagenet' or 'random', not {self.weights!r}.")
            bb = load_named_backbone(bb, self.input_size, self.weights)
        elif self.weights != "imagenet":
            raise FeaturiserError("weights= applies to named backbones only; this backbone "
                                  "already has its weights.")
        if isinstance(bb, Backbone):
            if bb.notice:
                notices.append(bb.notice)
            if self.input_size is not None and self.input_size != bb.input_size:
                notices.append(f"Input size {bb.input_size} px (the backbone's), "
                               f"not {self.input_size}.")
            return bb, bb.model, bb.input_size
        if not isinstance(bb, keras.Model):
            raise FeaturiserError(
                "backbone must be a name ('auto', 'mobilenet_v2', 'mobilenet_0.25'), a Backbone "
                f"from tlwidgets.backbones.load_backbone, or a keras.Model; got {type(bb).__name__}."
            )
        if not bb.built or not bb.inputs:
            raise FeaturiserError("This model has no input shape yet; build it first, e.g. "
                                  "model(keras.Input(shape=(224, 224, 3))).")
        shape = tuple(bb.inputs[0].shape[1:])
        if len(shape) != 3 or shape[-1] not in (3, None):
            raise FeaturiserError(f"The model takes inputs of shape {shape}; a featuriser "
                                  "needs an image model with (height, width, 3) inputs.")
        size = self.input_size or shape[0]
        if size is None:
            raise FeaturiserError("The model accepts any image size; pass input_size=.")
        if shape[0] is not None and size != shape[0]:
            raise FeaturiserError(f"The model takes {shape[0]} px images; input_size={size} "
                                  "does not fit. Leave input_size out to use the model's.")
        return None, bb, int(size)

    def _preprocessing(self, bb, notices: list[str]) -> tuple[Callable | None, str, bool]:
        """(numpy function or None, its name for the cache key, MobileNet scaling in the graph)."""
        from tlwidgets.backbones import Backbone

        p = self.preprocess
        if p == "auto":
            if bb is not None and type(bb).preprocess is Backbone.preprocess:
                return None, "mobilenet:[-1,1]", True
            if bb is not None:
                return (bb.preprocess,
                        cache.callable_fingerprint(type(bb).preprocess) + f"|{bb.name}", False)
            notices.append("No preprocessing applied (a plain keras.Model): pass "
                           "preprocess= if the model expects scaled inputs.")
            return None, "none", False
        if p == "mobilenet":
            return None, "mobilenet:[-1,1]", True
        if p is None or p == "none":
            return None, "none", False
        if callable(p):
            return p, cache.callable_fingerprint(p), False
        raise FeaturiserError("preprocess must be 'auto', 'mobilenet', None or a function, "
                              f"not {p!r}.")

    def _build(self) -> None:
        from tlwidgets.layers import candidate_layers, nearest_layers

        if self.pooling not in POOLINGS:
            raise FeaturiserError(f"pooling must be one of {POOLINGS}, not {self.pooling!r}.")
        if not isinstance(self.batch_size, int | np.integer) or self.batch_size < 1:
            raise FeaturiserError(f"batch_size must be a whole number >= 1, not {self.batch_size!r}.")
        notices: list[str] = []
        bb, model, size = self._network(notices)
        path, info = resolve_cut(model, self.layer, self.drop_last)
        prep, prep_name, scale = self._preprocessing(bb, notices)
        ext = extractor(model, [path], self.pooling, size, scale)
        shape = ext.shapes[0]
        suggestions = []
        if len(shape) not in (2, 4) and info is not None:
            suggestions = nearest_layers(model, info.path, candidate_layers(model))
        vector_or_map(path or "(model output)", shape,
                      info.type if info else type(model).__name__, suggestions)
        self.backbone_ = bb
        self.model_ = model
        self.layer_path_ = path
        self.input_size_ = size
        self.output_shape_ = shape
        self.n_features_out_ = ext.dims[0]
        self.notices_ = notices
        self._plan = _Plan(model, size, self.pooling, scale, prep, prep_name,
                           prep is not None and bb is not None and prep == bb.preprocess,
                           int(self.batch_size), self.cache, bool(self.progress))

    def _ensure_built(self) -> None:
        """Build on first use, and again whenever set_params changed a parameter."""
        params = self.get_params(deep=False)
        built = getattr(self, "_built_params", None)
        if built is None or any(built[k] is not v and built[k] != v for k, v in params.items()):
            self._build()
            self._built_params = params

    @property
    def layer_name(self) -> str:
        self._ensure_built()
        return self.layer_path_ or "(output)"

    def describe(self) -> str:
        """Which network, where it is cut, how it is pooled, and any stand-in notice."""
        self._ensure_built()
        if self.backbone_ is not None:
            head = self.backbone_.describe().split("\n")[0]
        else:
            head = f"{self.model_.name} (a keras.Model) at {self.input_size_} px"
        shape = "x".join(str(s) for s in self.output_shape_[1:])
        pooled = {"avg": "global average pooling", "max": "global max pooling",
                  "flatten": "flattened"}[self.pooling] if len(self.output_shape_) == 4 else "a vector"
        text = (f"{head}; cut at {self.layer_name} ({shape}), {pooled} -> "
                f"{self.n_features_out_} features")
        return "\n".join([text, *self.notices_])

    def as_keras(self, *, name: str = "featuriser"):
        """The featuriser as one Keras model: RGB images (0-255, at ``input_size_``
        px) -> its features, preprocessing, cut and pooling inside the graph.

        For exporting (a head on top, saved as ``.keras``). A numpy preprocessing
        function cannot go into a graph: such a featuriser raises.
        """
        import keras

        from tlwidgets.layers import activation_model

        self._ensure_built()
        plan = self._plan
        if plan.prep is not None:
            raise FeaturiserError(
                "This featuriser preprocesses images with a numpy function, which a Keras "
                "model file cannot hold; use preprocess='mobilenet', None, or a backbone "
                "whose preprocessing is a Keras layer.")
        inputs = keras.Input((plan.size, plan.size, 3), name="image")
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(inputs) \
            if plan.scale else inputs
        cut = (activation_model(plan.model, [self.layer_path_], name="cut")
               if self.layer_path_ else plan.model)
        x = cut(x)
        if isinstance(x, list | tuple):  # a cut at one layer: one output
            (x,) = x
        if len(self.output_shape_) == 4:
            pool = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D,
                    "flatten": keras.layers.Flatten}[self.pooling]
            x = pool(name="pool")(x)
        return keras.Model(inputs, x, name=name)

    # ------------------------------------------------------------------ sklearn API

    def fit(self, X=None, y=None):
        """Builds the cut network; a featuriser learns nothing from the data."""
        self._built_params = None
        self._ensure_built()
        return self

    def transform(self, X) -> np.ndarray:
        """Features ``(n, n_features_out_)`` of images, a folder, a dataset or an iterable."""
        return self.featurise(X).features

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        self._ensure_built()
        return np.array([f"feature{i}" for i in range(self.n_features_out_)], dtype=object)

    # ------------------------------------------------------------------ featurise

    def featurise(self, X, y=None, *, cache_key: str | None = None) -> FeatureSet:
        """Features with labels, class names, skipped files and cache/timing details.

        ``X``: an array ``(n, h, w[, c])`` (uint8 0-255 or float), a list of
        images of any sizes, a list of image file paths, a folder path
        ``root/<class>/<image>``, a ``tf.data.Dataset`` of images or
        ``(image, label)`` (batched or not), or an iterable of those. ``y`` is
        passed through as ``labels``.
        """
        self._ensure_built()
        out = _featurise(self._plan, [self.layer_path_], X, y=y, cache_key=cache_key,
                         notices=list(self.notices_), desc=f"Featurising at {self.layer_name}")
        self.last_run_ = out
        return out


def featurise_layers(
    featuriser: Featuriser,
    layers: Sequence[str | int],
    X,
    y=None,
    *,
    cache_key: str | None = None,
) -> FeatureSet:
    """Features of several layers in one pass (``FeatureSet.layers``: path -> array).

    Uses ``featuriser``'s backbone, pooling, preprocessing, batch size and cache;
    each layer is cached on its own key, so a later single-layer Featuriser on
    the same data finds its features here, and only missing layers are computed.
    """
    from tlwidgets.layers import find_layer

    featuriser._ensure_built()
    paths = [find_layer(featuriser.model_, k).path for k in layers]
    return _featurise(featuriser._plan, paths, X, y=y, cache_key=cache_key,
                      notices=list(featuriser.notices_), desc=f"Featurising {len(paths)} layers")


# --------------------------------------------------------------------------- one run


def _featurise(plan: _Plan, paths: list, X, *, y, cache_key, notices, desc) -> FeatureSet:
    t0 = time.perf_counter()
    shown = set(notices)  # the backbone's own notices are shown by describe()
    src = make_source(X, plan.size, notices, cache_key)
    ext = extractor(plan.model, paths, plan.pooling, plan.size, plan.scale)
    for path, shape in zip(paths, ext.shapes, strict=True):
        vector_or_map(path or "(model output)", shape, "layer", [])
    # key
    root = cache.cache_root(plan.cache)
    data_fp = src.fingerprint() if root is not None else None
    keys = (cache.keys_for(plan.model, paths, data=data_fp, prep=plan.prep_name,
                           size=plan.size, pooling=plan.pooling)
            if data_fp is not None else [None] * len(paths))
    # cache get
    found = {i: hit for i, k in enumerate(keys)
             if k is not None and (hit := cache.load(cache.entry_path(root, k))) is not None}
    arrays = {i: hit["features"] for i, hit in found.items()}
    labels, paths_out, class_names = src.labels, [], src.class_names
    if found:
        labels, paths_out, class_names = _from_hit(next(iter(found.values())), src, notices)
    # else extract the stream, and cache put
    todo = [i for i in range(len(paths)) if i not in found]
    if todo:
        sub = extractor(plan.model, [paths[i] for i in todo], plan.pooling, plan.size, plan.scale)
        computed, got_labels, paths_out = _extract(sub, src, plan, notices, desc)
        arrays.update(zip(todo, computed, strict=True))
        if got_labels is not None and (labels is None or src.cache_labels):
            labels = got_labels
        if root is not None:
            _store(root, plan, src, [(keys[i], paths[i], arrays[i]) for i in todo
                                     if keys[i] is not None], labels, paths_out, notices)
    if y is not None:
        labels = np.asarray(y)
        if len(labels) != len(arrays[0]):
            raise FeaturiserError(f"y has {len(labels)} labels for {len(arrays[0])} images.")
    for text in notices:
        if text not in shown:
            notice(text, stacklevel=3)
    return FeatureSet(
        features=arrays[0], labels=labels, class_names=list(class_names), paths=paths_out,
        skipped=list(src.skipped), notices=list(notices), from_cache=not todo,
        seconds=time.perf_counter() - t0, source=src.kind, keys=[k or "" for k in keys],
        layers={(p or "(output)"): arrays[i] for i, p in enumerate(paths)},
    )


def _from_hit(hit: dict, src: Source, notices: list[str]):
    """Labels, paths and class names stored with a cache entry (and its notices)."""
    labels = hit["labels"] if src.cache_labels and "labels" in hit else src.labels
    paths = [str(p) for p in hit.get("paths", [])]
    if "skipped" in hit:
        src.skipped = [str(s) for s in hit["skipped"]]
    for text in hit["meta"].get("notices", []):
        add_notice(notices, text)
    return labels, paths, src.class_names or list(hit["meta"].get("class_names", []))


def _extract(sub, src: Source, plan: _Plan, notices: list[str], desc: str):
    """Run the stream through the compiled cut: (arrays per layer, labels or None, paths)."""
    from tqdm.auto import tqdm

    chunks: list[list[np.ndarray]] = [[] for _ in sub.paths]
    got_labels: list[np.ndarray] = []
    paths_out: list[str] = []
    bar = tqdm(total=src.n, desc=desc, unit="img", disable=not plan.progress, leave=False)
    try:
        stream = prepared(src.batches(plan.batch_size), plan.size, notices,
                          advise=plan.scale or plan.prep_is_backbones)
        for xb, yb, pb in prefetch(stream):
            if plan.prep is not None:
                xb = np.asarray(plan.prep(np.asarray(xb, dtype=np.float32)), dtype=np.float32)
            for c, o in zip(chunks, sub(xb), strict=True):
                c.append(o)
            if yb is not None:
                got_labels.append(np.asarray(yb))
            paths_out.extend(pb)
            bar.update(len(xb))
    finally:
        bar.close()
    if not chunks[0]:
        raise empty_input("a source that yielded no images")
    arrays = [np.concatenate(c).astype(np.float32, copy=False) for c in chunks]
    return arrays, (np.concatenate(got_labels) if got_labels else None), paths_out


def _store(root: Path, plan: _Plan, src: Source, entries, labels, paths_out, notices) -> None:
    """Put each computed layer in the cache; if the cache cannot be written, say so once."""
    extra: dict[str, np.ndarray] = {}
    if labels is not None and src.cache_labels:
        extra["labels"] = np.asarray(labels)
    if paths_out:
        extra["paths"] = np.array(paths_out, dtype=str)
    if src.skipped:
        extra["skipped"] = np.array(src.skipped, dtype=str)
    for key, layer, features in entries:
        meta = {"version": cache.CACHE_VERSION, "layer": layer, "pooling": plan.pooling,
                "size": plan.size, "preprocess": plan.prep_name, "notices": notices,
                "class_names": src.class_names, "created": time.time()}
        failed = cache.save(cache.entry_path(root, key), {"features": features, **extra}, meta)
        if failed:
            add_notice(notices, f"The features were computed but not cached: the cache folder "
                                f"{root} cannot be written ({failed}). They are returned as "
                                "usual; free some space or fix the folder (TLWIDGETS_CACHE), "
                                "or pass cache=False.")
            return
