"""Layer paths in (nested) Keras models, and models that expose intermediate outputs.

A pretrained base is usually nested inside a classifier
(``inputs -> preprocess -> mobilenetv2 -> pooling -> dense``). Its inner layers'
``.output`` tensors belong to the base's own graph, so
``keras.Model(classifier.input, inner_layer.output)`` fails with "Graph
disconnected" (keras-team/keras#16123). :func:`activation_model` replays the
outer graph node by node from a fresh input instead (:func:`replay`), stepping
into nested models and ``Sequential`` s at any depth and through raw operations
(``keras.ops`` calls, ``x + y``, ``preprocess_input`` arithmetic on a
``keras.Input``), which are graph nodes but not layers.

Paths join layer names with ``/``: ``"mobilenetv2_1.00_224/block_13_expand"``
(names may contain dots, so dots are not separators).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

__all__ = [
    "LayerInfo",
    "LayerNotFoundError",
    "activation_model",
    "candidate_layers",
    "find_layer",
    "graph_of",
    "is_squeeze_excite",
    "iter_layers",
    "nearest_layers",
    "replay",
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


def graph_of(model: keras.Model):
    """The functional graph a model runs (``Sequential`` keeps one inside), or ``None``
    for a subclassed model, whose ``call`` is Python code rather than a graph."""
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    return model if hasattr(model, "_nodes_by_depth") else None


def _flat(value) -> list:
    return list(keras.tree.flatten(value))


def _call_context(kwargs: dict) -> dict:
    """The call arguments (``training``) that a nested model passes on to its own layers."""
    return {k: kwargs[k] for k in ("training",) if kwargs.get(k) is not None}


def replay(model: keras.Model, inputs: Sequence, *, wanted: Callable[[str], bool] | None = None,
           descend: Callable[[str, keras.Model], bool] | None = None,
           visit: Callable | None = None, _prefix: str = "", _context: dict | None = None
           ) -> tuple[list, dict[str, object]]:
    """Re-run ``model``'s graph on ``inputs`` operation by operation, the way Keras'
    ``Functional._run_through_graph`` does, but stepping into nested models.

    Raw operations (``keras.ops`` calls, ``+`` between tensors, preprocessing
    arithmetic) are graph nodes that are not layers; replaying the nodes reaches
    every layer behind them. Returns the model's outputs and ``{path: output}``
    for the layer paths where ``wanted(path)`` holds (first call of each layer).
    ``descend(path, model)`` says whether to enter a nested model (default: when a wanted
    path lies inside it); ``visit(op, path, node, args, kwargs)`` may replace the
    call of an operation (it returns the outputs, or ``NotImplemented``).
    """
    graph = graph_of(model)
    if graph is None:
        raise ValueError(
            f"Model {model.name!r} is a subclassed keras.Model: its call() is Python code, not "
            "a graph of layers, so the outputs of its inner layers cannot be reached. Ask for "
            f"{model.name!r} as a whole, or build it with the functional API "
            "(keras.Model(inputs, outputs)) or as a keras.Sequential."
        )
    wanted = wanted or (lambda path: False)
    context = _context or {}
    values = {id(ref): value for ref, value in zip(graph.inputs, _flat(inputs), strict=True)}
    found: dict[str, object] = {}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            if any(id(t) not in values for t in node.input_tensors):
                continue  # not computable from these inputs (as Keras skips it too)
            op = node.operation
            args, kwargs = node.arguments.fill_in(values)
            for key, value in context.items():
                if key in getattr(op, "_call_context_args", ()):
                    kwargs.setdefault(key, value)
            path = _prefix + op.name if isinstance(op, keras.Layer) else None
            outputs = NotImplemented
            if path is not None and isinstance(op, keras.Model):
                inside = descend(path, op) if descend else any(
                    wanted(p) for p in _inner_paths(op, path + "/"))
                if inside:
                    outputs, sub = replay(op, _flat(args[0]) if args else [], wanted=wanted,
                                          descend=descend, visit=visit, _prefix=path + "/",
                                          _context=context | _call_context(kwargs))
                    outputs = keras.tree.pack_sequence_as(graph_of(op)._outputs_struct, outputs)
                    for key, value in sub.items():
                        found.setdefault(key, value)
            if outputs is NotImplemented and visit is not None:
                outputs = visit(op, path, node, args, kwargs)
            if outputs is NotImplemented:
                outputs = op(*args, **kwargs)
            flat = _flat(outputs)
            for ref, value in zip(node.outputs, flat, strict=True):
                values[id(ref)] = value
            if path is not None and path not in found and wanted(path):
                found[path] = flat[0] if len(flat) == 1 else outputs
    missing = [t for t in graph.outputs if id(t) not in values]
    if missing:
        raise ValueError(f"Model {model.name!r}: an output is not connected to its inputs.")
    return [values[id(t)] for t in graph.outputs], found


def _inner_paths(model: keras.Model, prefix: str) -> list[str]:
    return [prefix + info.path for info in iter_layers(model)]


def activation_model(
    model: keras.Model, layers: Sequence[str | int], *, name: str | None = None,
    include_outputs: bool = False,
) -> keras.Model:
    """A model from ``model``'s input to the outputs of ``layers`` (paths, names or indices),
    followed by ``model``'s own outputs when ``include_outputs``.

    Any layer works: inside nested models and ``Sequential`` s at any depth, and
    behind raw operations (``keras.ops`` calls, residual ``+``, preprocessing
    arithmetic such as ``mobilenet_v2.preprocess_input`` applied to a
    ``keras.Input``). The graph is replayed from a fresh input (see :func:`replay`).
    """
    if not model.built or not model.inputs:
        raise ValueError(
            f"Model {model.name!r} has no defined input yet; build it on an input shape "
            "(e.g. call it on keras.Input(shape=...)) before asking for activations."
        )
    infos = [find_layer(model, key) for key in layers]
    paths = [info.path for info in infos]
    # Top-level layers of a functional graph: the original tensors serve (cheapest).
    # A nested model's own ``.output`` belongs to its inner graph, so it is replayed.
    if graph_of(model) is not None and all(i.depth == 0 and not i.is_model for i in infos):
        try:
            extra = list(model.outputs) if include_outputs else []
            return keras.Model(model.inputs, [info.layer.output for info in infos] + extra,
                               name=name)
        except (ValueError, AttributeError):  # a layer used twice, or from another graph
            pass
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=f"activations_input_{i}")
              for i, t in enumerate(model.inputs)]
    wanted = set(paths)
    model_outputs, found = replay(model, inputs, wanted=wanted.__contains__)
    lost = [p for p in paths if p not in found]
    if lost:
        raise ValueError(
            f"Layers {lost} of {model.name!r} are not computed from its input (they are not "
            "on any path from the input to the output); pick layers the model uses."
        )
    outputs = [found[p] for p in paths] + (model_outputs if include_outputs else [])
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=name)


def is_squeeze_excite(item: LayerInfo | keras.Layer) -> bool:
    """Whether a layer belongs to a squeeze-excite gate: its output is a 1x1 map
    (``(batch, 1, 1, channels)``) that sees the image only through a global pooling.

    Such maps are one number per channel, not an image-like map, so they are not
    worth showing as activation maps; the gated product they feed (a ``Multiply``
    at full resolution) is. A map that is 1x1 because the input is small (the
    last stage of a network on 32-pixel images) is not a gate.
    """
    layer = item.layer if isinstance(item, LayerInfo) else item
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return False
    if len(output.shape) != 4 or tuple(output.shape[1:3]) != (1, 1):
        return False
    return _only_through_global_pooling(output)


_GLOBAL_POOLING = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def _only_through_global_pooling(tensor) -> bool:
    """Whether every path from ``tensor`` back to an input crosses a global pooling."""
    stack, seen = [tensor], set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        history = getattr(t, "_keras_history", None)
        if history is None:
            return False
        op, node_index = history[0], history[1]
        if isinstance(op, _GLOBAL_POOLING):
            continue
        if isinstance(op, keras.layers.InputLayer):
            return False
        stack.extend(op._inbound_nodes[node_index].input_tensors)
    return True


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
    channels), in network order; nested models included; the 1x1 maps of
    squeeze-excite gates (:func:`is_squeeze_excite`) left out. A network with none
    of these gives its convolutions, else every layer with a map output, else
    ``[]``. ``n`` picks that many, evenly spaced by depth, always including the last.
    The Featuriser, the FeatureExplorer and the depth sweep all offer these.
    """
    maps = [info for info in iter_layers(model) if _map_output(info) and not is_squeeze_excite(info)]
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
