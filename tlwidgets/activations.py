"""Activation maps of a convolutional network, one compiled forward pass for every layer.

An :class:`Activations` object builds one multi-output model for the layers
you choose and calls it through a compiled ``tf.function``, so a single pass
over an image serves a whole sweep across depth; switching layer afterwards is
a lookup. Maps come back ranked by mean activation and downsampled, small
enough to send to a browser.

>>> acts = Activations.from_backbone(load_backbone("auto"))     # doctest: +SKIP
>>> m = acts.maps(image, "conv_pw_1_relu", top=16, size=48)      # doctest: +SKIP
>>> m.channels, m.maps.shape, m.receptive_field                   # doctest: +SKIP

:func:`receptive_fields` computes, from the architecture alone, how many input
pixels each layer's units can see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from tlwidgets import images
from tlwidgets.layers import (
    LayerInfo,
    activation_model,
    candidate_layers,
    find_layer,
    iter_layers,
    nearest_layers,
)

__all__ = [
    "Activations",
    "ChannelMaps",
    "ReceptiveField",
    "default_layers",
    "downsample",
    "grid_image",
    "prepare_image",
    "read_image_bytes",
    "receptive_fields",
    "spatial_layers",
]


# --------------------------------------------------------------------------- receptive fields


@dataclass(frozen=True)
class ReceptiveField:
    """``size``: input pixels one unit sees (per side); ``jump``: input pixels between units."""

    size: int
    jump: int

    def then(self, kernel: int, stride: int, dilation: int = 1) -> ReceptiveField:
        effective = dilation * (kernel - 1) + 1
        return ReceptiveField(self.size + (effective - 1) * self.jump, self.jump * stride)

    def compose(self, inner: ReceptiveField) -> ReceptiveField:
        """This field followed by a sub-network whose own field (from its input) is ``inner``."""
        return ReceptiveField(self.size + (inner.size - 1) * self.jump, self.jump * inner.jump)


_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
         keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_POOL = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _first(value) -> int:
    return int(value[0] if isinstance(value, tuple | list) else value)


def _layer_field(layer, field_in: ReceptiveField) -> ReceptiveField | None:
    if isinstance(layer, _CONV) and not isinstance(layer, keras.layers.Conv2DTranspose):
        return field_in.then(_first(layer.kernel_size), _first(layer.strides),
                             _first(layer.dilation_rate))
    if isinstance(layer, _POOL):
        return field_in.then(_first(layer.pool_size), _first(layer.strides))
    return field_in


def _spatial(shape) -> bool:
    return shape is not None and len(shape) == 4


def _walk(model: keras.Model, start: ReceptiveField, prefix: str,
          found: dict[str, ReceptiveField | None]) -> ReceptiveField | None:
    known = {id(t): start for t in model.inputs}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = prefix + layer.name
        for node in layer._inbound_nodes:
            fields = [known.get(id(t), False) for t in node.input_tensors]
            if not fields or any(f is False for f in fields):
                continue  # a node from another graph (e.g. an activation model)
            spatial = [f for f in fields if f is not None]
            if not spatial:
                out = None
            elif isinstance(layer, keras.Model):
                inner = _walk(layer, ReceptiveField(1, 1), path + "/", found)
                out = None if inner is None else max(spatial, key=lambda f: f.size).compose(inner)
            else:
                out = _layer_field(layer, max(spatial, key=lambda f: f.size))
            if out is not None and not _spatial(node.output_tensors[0].shape):
                out = None  # global pooling, flatten, dense: no spatial map any more
            for t in node.output_tensors:
                known[id(t)] = out
            found[path] = out
    return known.get(id(model.outputs[0])) if model.outputs else None


def receptive_fields(model: keras.Model) -> dict[str, ReceptiveField | None]:
    """Receptive field of every layer (by path), computed from kernel sizes, strides, dilations.

    Merging layers (``Add``, ``Concatenate``) take the largest incoming field;
    layers without a spatial output map to ``None``. The size can exceed the
    image: units then see the whole image plus padding.
    """
    found: dict[str, ReceptiveField | None] = {}
    _walk(model, ReceptiveField(1, 1), "", found)
    return found


# --------------------------------------------------------------------------- multi-output models


# --------------------------------------------------------------------------- choosing layers

def spatial_layers(model: keras.Model) -> list[LayerInfo]:
    """Layers whose output is a feature map (batch, height, width, channels)."""
    out = []
    for info in iter_layers(model):
        try:
            shape = info.layer.output.shape
        except (AttributeError, ValueError):
            continue
        if _spatial(shape) and not info.is_model:
            out.append(info)
    return out


def default_layers(model: keras.Model) -> list[str]:
    """The layers worth looking at: :func:`tlwidgets.layers.candidate_layers` (each
    non-linearity or merge with a spatial output, convolutions with their own
    non-linear ``activation`` included), the same list the Featuriser offers."""
    chosen = candidate_layers(model)
    if not chosen:
        raise ValueError(
            f"Model {model.name!r} has no convolutional layers with a spatial output, so there "
            "are no feature maps to show. Use a convolutional network (e.g. load_backbone('auto'))."
        )
    return chosen


def _check_spatial(model: keras.Model, key: str | int) -> LayerInfo:
    info = find_layer(model, key)
    try:
        shape = info.layer.output.shape
    except (AttributeError, ValueError):
        shape = None
    if _spatial(shape):
        return info
    spatial = spatial_layers(model)
    if not spatial:
        raise ValueError(f"Model {model.name!r} has no layer with a spatial output.")
    nearest = nearest_layers(model, info.path, [s.path for s in spatial])
    raise ValueError(
        f"Layer {info.path!r} outputs shape {shape}, not a (height, width, channels) map, so it "
        f"has no activation maps to show. Nearest layers with maps: {', '.join(nearest)}."
    )


# --------------------------------------------------------------------------- images


def read_image_bytes(data: bytes) -> np.ndarray:
    """Decode an uploaded file (PNG, JPEG, ...) to an array; a clear error if it is not an image."""
    return images.decode_bytes(data)


def prepare_image(image, size: int | tuple[int, int]) -> tuple[np.ndarray, str | None]:
    """Any image (array or PIL) -> RGB uint8 at ``size``, with a note saying what was converted.

    Grey is repeated, alpha dropped, 16-bit scaled, floats in [0, 1] or [-1, 1]
    brought to 0-255 (:func:`tlwidgets.images.prepare_image`).
    """
    return images.prepare_image(image, size)


# --------------------------------------------------------------------------- maps


def downsample(maps: np.ndarray, size: int) -> np.ndarray:
    """(n, h, w) maps -> at most ``size`` px per side, by area averaging (keeps small maps as is)."""
    n, h, w = maps.shape
    if max(h, w) <= size:
        return maps
    import tensorflow as tf

    scale = size / max(h, w)
    target = (max(1, round(h * scale)), max(1, round(w * scale)))
    out = tf.image.resize(maps[..., None], target, method="area", antialias=True)
    return out.numpy()[..., 0]


@dataclass
class ChannelMaps:
    """The strongest channels of one layer for one image."""

    layer: str
    channels: np.ndarray  # channel indices, strongest first
    means: np.ndarray  # their mean activation
    maps: np.ndarray  # (n, h, w) float32, downsampled
    map_shape: tuple[int, int, int]  # (height, width, channels) before downsampling
    receptive_field: ReceptiveField | None

    @property
    def nbytes(self) -> int:
        return int(self.maps.nbytes)


class Activations:
    """Activation maps of many layers from one compiled forward pass.

    Parameters
    ----------
    model : keras.Model
        A convolutional network; a base nested inside a classifier works too.
    layers : sequence of str or int, optional
        Layer paths, names or indices; defaults to :func:`default_layers`.
    preprocess : callable, optional
        Maps uint8 RGB images (n, H, W, 3) to the model's input (e.g.
        ``Backbone.preprocess``); identity (as float32) when omitted.
    """

    def __init__(self, model: keras.Model, layers: Sequence[str | int] | None = None, *,
                 preprocess: Callable[[np.ndarray], np.ndarray] | None = None):
        import tensorflow as tf

        self.model = model
        keys = default_layers(model) if layers is None else list(layers)
        if not keys:
            raise ValueError("Choose at least one layer.")
        infos = [_check_spatial(model, key) for key in keys]
        self.layers: list[str] = [info.path for info in infos]
        self.preprocess = preprocess or (lambda x: np.asarray(x, dtype=np.float32))
        shape = tuple(model.inputs[0].shape[1:])
        if None in shape[:2]:
            raise ValueError("The model needs a fixed input size (height, width) to show maps.")
        self.input_shape: tuple[int, int, int] = shape
        fields = receptive_fields(model)
        self.receptive_fields = {p: fields.get(p) for p in self.layers}
        self.shapes = {info.path: tuple(info.layer.output.shape[1:]) for info in infos}
        self._model = activation_model(model, self.layers, name="activations")
        spec = tf.TensorSpec((None, *shape), tf.float32)
        self._fn = tf.function(lambda x: self._model(x, training=False), input_signature=[spec])
        self._cache: tuple[str, dict[str, np.ndarray]] | None = None
        self.notice: str | None = None

    @classmethod
    def from_backbone(cls, backbone, layers: Sequence[str | int] | None = None) -> Activations:
        """For a :class:`tlwidgets.backbones.Backbone`, with its preprocessing."""
        return cls(backbone.model, layers, preprocess=backbone.preprocess)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.input_shape[0], self.input_shape[1]

    def compute(self, image) -> dict[str, np.ndarray]:
        """Maps (H, W, C) of every chosen layer for one image; the last image's are cached."""
        img, self.notice = prepare_image(image, self.image_size)
        key = hashlib.blake2b(img.tobytes(), digest_size=16).hexdigest()
        if self._cache is None or self._cache[0] != key:
            x = self.preprocess(img[None]).astype(np.float32)
            outputs = self._fn(x)
            if not isinstance(outputs, list | tuple):
                outputs = [outputs]
            self._cache = (key, {p: o.numpy()[0] for p, o in zip(self.layers, outputs, strict=True)})
        return self._cache[1]

    def maps(self, image, layer: str | int, *, top: int | None = 16,
             size: int | None = 48) -> ChannelMaps:
        """The ``top`` channels of ``layer`` ranked by mean activation, at most ``size`` px."""
        path = self._path(layer)
        act = self.compute(image)[path]
        means = act.mean(axis=(0, 1))
        order = np.argsort(-means, kind="stable")[: top or None]
        chosen = np.moveaxis(act[..., order], -1, 0).astype(np.float32)
        if size:
            chosen = downsample(chosen, size)
        return ChannelMaps(path, order, means[order], chosen, tuple(act.shape),
                           self.receptive_fields[path])

    def _path(self, layer: str | int) -> str:
        if isinstance(layer, int) and not isinstance(layer, bool):
            if not -len(self.layers) <= layer < len(self.layers):
                raise IndexError(f"Layer index {layer} out of range: {len(self.layers)} layers chosen.")
            return self.layers[layer]
        if layer in self.layers:
            return layer
        info = _check_spatial(self.model, layer)
        if info.path not in self.layers:
            raise ValueError(f"Layer {info.path!r} was not chosen; chosen layers: {self.layers}.")
        return info.path


def grid_image(maps: np.ndarray, *, ncols: int = 4, tile: int = 64, pad: int = 2,
               cmap: str = "viridis") -> np.ndarray:
    """(n, h, w) maps -> one RGB uint8 grid, each tile scaled to its own maximum."""
    import matplotlib

    n = len(maps)
    if n == 0:
        raise ValueError("No maps to draw.")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    colours = matplotlib.colormaps[cmap]
    grid = np.full((nrows * (tile + pad) + pad, ncols * (tile + pad) + pad, 3), 255, np.uint8)
    from PIL import Image

    for i, m in enumerate(maps):
        lo, hi = float(m.min()), float(m.max())
        norm = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
        rgb = (colours(norm)[..., :3] * 255).astype(np.uint8)
        rgb = np.asarray(Image.fromarray(rgb).resize((tile, tile), Image.NEAREST))
        r, c = divmod(i, ncols)
        y, x = pad + r * (tile + pad), pad + c * (tile + pad)
        grid[y:y + tile, x:x + tile] = rgb
    return grid
