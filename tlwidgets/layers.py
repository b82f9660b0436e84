"""Layer paths in (nested) Keras models, and models that expose intermediate outputs.

A pretrained base is usually nested inside a classifier
(``inputs -> preprocess -> mobilenetv2 -> pooling -> dense``). Its inner layers'
``.output`` tensors belong to the base's own graph, so
``keras.Model(classifier.input, inner_layer.output)`` fails with "Graph
disconnected" (keras-team/keras#16123). :func:`activation_model` rebuilds the
path from the outer input through the nested model instead.

Paths join layer names with ``/``: ``"mobilenetv2_1.00_224/block_13_expand"``
(names may contain dots, so dots are not separators).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

__all__ = [
    "LayerInfo",
    "LayerNotFoundError",
    "activation_model",
    "candidate_layers",
    "find_layer",
    "iter_layers",
    "nearest_layers",
]


class LayerNotFoundError(KeyError):
    """No layer with that name, path or index; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a (nested) model."""

    path: str
    layer: keras.Layer
    depth: int
    index: int  # position among all layers, depth-first
    parent: keras.Model

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def is_model(self) -> bool:
        return isinstance(self.layer, keras.Model)

    @property
    def type(self) -> str:
        return type(self.layer).__name__


def _children(model: keras.Model) -> list[keras.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def iter_layers(model: keras.Model, *, _prefix: str = "", _depth: int = 0,
                _out: list | None = None) -> list[LayerInfo]:
    """Every layer, depth-first, nested models included (each before its own layers)."""
    out = [] if _out is None else _out
    for layer in _children(model):
        path = f"{_prefix}{layer.name}"
        out.append(LayerInfo(path, layer, _depth, len(out), model))
        if isinstance(layer, keras.Model):
            iter_layers(layer, _prefix=path + "/", _depth=_depth + 1, _out=out)
    return out


def find_layer(model: keras.Model, key: str | int) -> LayerInfo:
    """A layer by path (``"base/block_1_expand"``), unique name, or index in :func:`iter_layers`."""
    infos = iter_layers(model)
    if isinstance(key, int):
        if not -len(infos) <= key < len(infos):
            raise LayerNotFoundError(
                f"Layer index {key} is out of range: {model.name!r} has {len(infos)} layers."
            )
        return infos[key]
    by_path = {info.path: info for info in infos}
    if key in by_path:
        return by_path[key]
    named = [info for info in infos if info.name == key]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise LayerNotFoundError(
            f"{key!r} names {len(named)} layers; use a path: {', '.join(i.path for i in named)}."
        )
    close = difflib.get_close_matches(key, list(by_path) + [i.name for i in infos], n=5, cutoff=0.5)
    hint = f" Close matches: {', '.join(dict.fromkeys(close))}." if close else ""
    raise LayerNotFoundError(f"No layer {key!r} in model {model.name!r}.{hint}")


def _is_chain(model: keras.Model) -> bool:
    """Whether the model applies its layers one after another (Sequential-like)."""
    if isinstance(model, keras.Sequential):
        return True
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    previous = model.inputs[0]
    for layer in _children(model):
        nodes = [n for n in layer._inbound_nodes
                 if len(n.input_tensors) == 1 and n.input_tensors[0] is previous]
        if len(nodes) != 1 or len(nodes[0].output_tensors) != 1:
            return False
        previous = nodes[0].output_tensors[0]
    return previous is model.outputs[0]


def activation_model(
    model: keras.Model, layers: Sequence[str | int], *, name: str | None = None
) -> keras.Model:
    """A model from ``model``'s input to the outputs of ``layers`` (paths, names or indices).

    Works for layers inside nested models when the enclosing models apply their
    layers in a chain (Sequential, or functional models built that way, which is
    how a pretrained base is usually wrapped).
    """
    if not model.built or not model.inputs:
        raise ValueError(
            f"Model {model.name!r} has no defined input yet; build it on an input shape "
            "(e.g. call it on keras.Input(shape=...)) before asking for activations."
        )
    infos = [find_layer(model, key) for key in layers]
    # A nested model's own ``.output`` belongs to its inner graph, so asking for one
    # (as a whole) also needs the rebuilt path below.
    if all(info.depth == 0 and not info.is_model for info in infos):
        outputs = [info.layer.output for info in infos]
        return keras.Model(model.inputs, outputs, name=name)
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name="activations_input")
    outputs = _through(model, inputs, [info.path for info in infos])
    return keras.Model(inputs, [outputs[p] for p in (i.path for i in infos)], name=name)


def _through(model: keras.Model, x, paths: list[str]) -> dict:
    """Apply ``model`` to ``x`` layer by layer, collecting the outputs named by ``paths``."""
    if not _is_chain(model):
        raise ValueError(
            f"Model {model.name!r} is not a chain of layers, so its inner layers cannot be "
            "reached from outside. Ask for layers of the nested model itself "
            "(activation_model(base, ...)) or wrap the base in a Sequential/linear model."
        )
    found: dict = {}
    wanted = set(paths)
    for layer in _children(model):
        inner = [p[len(layer.name) + 1:] for p in paths if p.startswith(layer.name + "/")]
        if inner and isinstance(layer, keras.Model):
            sub = _through_nested(layer, x, inner)
            found.update({f"{layer.name}/{k}": v for k, v in sub.items() if k != "__output__"})
            x = sub["__output__"]
        else:
            x = layer(x)
        if layer.name in wanted:
            found[layer.name] = x
    found["__output__"] = x
    return found


def _through_nested(model: keras.Model, x, paths: list[str]) -> dict:
    """Like :func:`_through`, but a non-chain nested model (a residual base such as
    MobileNetV2 or ResNet50) is fine as long as the wanted layers are its own."""
    if _is_chain(model) or any("/" in p for p in paths):
        return _through(model, x, paths)
    multi = keras.Model(model.inputs, [model.get_layer(p).output for p in paths] + model.outputs)
    values = multi(x)
    return dict(zip([*paths, "__output__"], values, strict=True))


# --------------------------------------------------------------------------- choosing layers

_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                 keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_ENDS_OF_BLOCKS = (keras.layers.ReLU, keras.layers.Activation, keras.layers.ELU,
                   keras.layers.LeakyReLU, keras.layers.PReLU, keras.layers.Add,
                   keras.layers.Concatenate)


def _map_output(info: LayerInfo) -> bool:
    """Whether the layer outputs one feature map (batch, height, width, channels)."""
    try:
        return not info.is_model and len(info.layer.output.shape) == 4
    except (AttributeError, ValueError):  # no single output (a layer used several times)
        return False


def _ends_a_block(layer: keras.Layer) -> bool:
    """A non-linearity or a merge, or a convolution with its own non-linear activation."""
    activation = getattr(layer, "activation", None)
    linear = activation in (None, keras.activations.linear)
    if isinstance(layer, keras.layers.Activation):
        return not linear
    if isinstance(layer, _ENDS_OF_BLOCKS):
        return True
    return isinstance(layer, _CONVOLUTIONS) and not linear


def candidate_layers(model: keras.Model, *, n: int | None = None) -> list[str]:
    """Layer paths worth cutting at or looking into: the ends of blocks with feature maps.

    Each non-linearity (ReLU, ELU, LeakyReLU, PReLU, a non-linear ``Activation``),
    each merge (``Add``, ``Concatenate``) and each convolution with a built-in
    non-linear ``activation``, whose output is a map (batch, height, width,
    channels), in network order; nested models included. A network with none
    of these gives its convolutions, else every layer with a map output, else
    ``[]``. ``n`` picks that many, evenly spaced by depth, always including the last.
    The Featuriser, the FeatureExplorer and the depth sweep all offer these.
    """
    maps = [info for info in iter_layers(model) if _map_output(info)]
    found = ([i.path for i in maps if _ends_a_block(i.layer)]
             or [i.path for i in maps if isinstance(i.layer, _CONVOLUTIONS)]
             or [i.path for i in maps])
    if n is not None and 0 < n < len(found):
        picks = np.unique(np.round(np.linspace(0, len(found) - 1, n)).astype(int)) if n > 1 else [-1]
        found = [found[i] for i in picks]
    return found


def nearest_layers(model: keras.Model, path: str, among: Sequence[str], n: int = 3) -> list[str]:
    """The ``n`` paths of ``among`` closest to ``path`` in depth, in network order."""
    order = {info.path: info.index for info in iter_layers(model)}
    here = order.get(path, 0)
    near = sorted(among, key=lambda p: abs(order.get(p, 0) - here))[:n]
    return sorted(near, key=lambda p: order.get(p, 0))
