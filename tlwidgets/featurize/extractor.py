"""The compiled extractor: a network cut at one or more layers, with pooling, as one graph.

Compiled cuts and loaded backbones are kept in small bounded memos (the last
few models), not for the life of the process: a notebook that tries many
networks does not keep every one of them in memory.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from tlwidgets.featurize.results import FeaturiserError

POOLINGS = ("avg", "max", "flatten")
MAX_MODELS = 4  # models whose compiled cuts and fingerprints are kept
MAX_CUTS_PER_MODEL = 8
MAX_BACKBONES = 4  # named backbones kept loaded (loading one takes seconds)

_memo_lock = threading.Lock()
_memos: OrderedDict[int, tuple[weakref.ref, dict]] = OrderedDict()


def model_memo(model) -> dict:
    """A scratch dict for ``model`` (compiled cuts, its architecture hash), for the last
    :data:`MAX_MODELS` models used; older ones are forgotten and can be freed."""
    key = id(model)
    with _memo_lock:
        entry = _memos.get(key)
        if entry is None or entry[0]() is not model:  # new, or an id reused by a new object
            entry = (weakref.ref(model), {})
            _memos[key] = entry
        _memos.move_to_end(key)
        while len(_memos) > MAX_MODELS:
            _memos.popitem(last=False)
        return entry[1]


def vector_or_map(path: str, shape, layer_type: str, suggestions: Sequence[str]) -> None:
    """Raise unless ``shape`` is a feature map (rank 4) or a vector (rank 2)."""
    if len(shape) in (2, 4):
        return
    hint = f" Layers that give feature maps nearby: {', '.join(suggestions)}." if suggestions else ""
    raise FeaturiserError(
        f"Layer {path!r} ({layer_type}) outputs shape {tuple(shape)}, which is neither a "
        f"feature map (batch, height, width, channels) nor a vector (batch, features), so it "
        f"cannot be pooled into features. Cut at a convolutional block, a pooling or a dense "
        f"layer instead.{hint}"
    )


def resolve_cut(model, layer, drop_last) -> tuple[str | None, Any]:
    """(layer path, LayerInfo) of the cut given by ``layer=`` or ``drop_last=``."""
    from tlwidgets.layers import find_layer

    if layer is not None and drop_last is not None:
        raise FeaturiserError("Give either layer= or drop_last=, not both.")
    if layer is None and drop_last is None:
        drop_last = 0  # the whole model: its last top-level layer
    if drop_last is not None:
        if not isinstance(drop_last, int | np.integer) or drop_last < 0:
            raise FeaturiserError(f"drop_last must be a whole number >= 0, not {drop_last!r}.")
        import keras

        top = [ly for ly in model.layers if not isinstance(ly, keras.layers.InputLayer)]
        if drop_last >= len(top):
            raise FeaturiserError(
                f"drop_last={drop_last} would remove every layer: {model.name!r} has "
                f"{len(top)} top-level layers (ending with {', '.join(ly.name for ly in top[-3:])})."
            )
        info = find_layer(model, top[-1 - int(drop_last)].name)
        return info.path, info
    info = find_layer(model, layer if isinstance(layer, str) else int(layer))
    return info.path, info


class _Extractor:
    """A compiled function: uint8/float batch -> pooled features of one or more layers."""

    def __init__(self, model, paths: Sequence[str | None], pooling: str, size: int,
                 scale: bool):
        import keras
        import tensorflow as tf

        from tlwidgets.layers import activation_model

        self.paths = list(paths)
        if all(p is None for p in self.paths):
            outs = [model.outputs[0]] * len(self.paths)
            self.cut = keras.Model(model.inputs, outs, name="featuriser_cut")
        elif None in self.paths:
            raise FeaturiserError("Name every layer (the model output is the last layer's path).")
        else:
            self.cut = activation_model(model, self.paths, name="featuriser_cut")
        self.shapes = [tuple(o.shape) for o in self.cut.outputs]
        self.size = size
        self.dims = [int(np.prod(s[1:3])) * s[3] if (len(s) == 4 and pooling == "flatten")
                     else s[-1] for s in self.shapes]
        cut_model = self.cut

        def pool(t):
            if len(t.shape) == 2:
                return t
            if pooling == "avg":
                return tf.reduce_mean(t, axis=[1, 2])
            if pooling == "max":
                return tf.reduce_max(t, axis=[1, 2])
            return tf.reshape(t, (tf.shape(t)[0], -1))

        def run(x):
            x = tf.cast(x, tf.float32)
            if scale:  # the MobileNet preprocessing, in the graph
                x = x / 127.5 - 1.0
            outs = cut_model(x, training=False)
            if not isinstance(outs, list | tuple):
                outs = [outs]
            return [pool(o) for o in outs]

        self._run = run
        self._fns: dict = {}

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        import tensorflow as tf

        key = batch.dtype.str
        fn = self._fns.get(key)
        if fn is None:
            spec = tf.TensorSpec([None, self.size, self.size, 3], tf.as_dtype(batch.dtype))
            fn = self._fns[key] = tf.function(self._run, input_signature=[spec])
        return [o.numpy() for o in fn(batch)]


class _QuietRetracing(logging.Filter):
    """Each new cut is a new compiled function; TensorFlow's retracing advice does not apply."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("retracing" in msg and "_Extractor" in msg)


logging.getLogger("tensorflow").addFilter(_QuietRetracing())


def extractor(model, paths, pooling, size, scale) -> _Extractor:
    """The compiled cut of ``model`` at ``paths`` (built once, kept while the model is recent)."""
    cuts: OrderedDict = model_memo(model).setdefault("cuts", OrderedDict())
    key = (tuple(paths), pooling, size, scale)
    if key not in cuts:
        cuts[key] = _Extractor(model, paths, pooling, size, scale)
        while len(cuts) > MAX_CUTS_PER_MODEL:
            cuts.popitem(last=False)
    cuts.move_to_end(key)
    return cuts[key]


def load_named_backbone(name: str, input_size: int | None, weights: str):
    """A backbone by name, loaded once while it is among the last few used."""
    if name == "auto" and weights == "random":
        # The same architecture as the pretrained "auto" resolves to (it may be a stand-in).
        name = _load(name, input_size, "imagenet").name
    return _load(name, input_size, weights)


@functools.lru_cache(maxsize=MAX_BACKBONES)
def _load(name: str, input_size: int | None, weights: str):
    from tlwidgets.backbones import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notice is kept on the Backbone and shown
        return load_backbone(name, input_size=input_size, weights=weights)
