"""One cached walk of a (nested) Keras model, shared by the block finder and the freezer.

:func:`model_plan` reads a model's layers (those inside custom layers too), their
variables and sizes, output shapes and BatchNormalization layers once, and
remembers them per model until its layers change: a freezing call must not walk
1,000 layers twice. The few private Keras reads of :mod:`tlwidgets.blocks` and
:mod:`tlwidgets.freezing` are here, each commented with the Keras version it was
checked on.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

import keras

from tlwidgets.layers import LayerInfo, iter_layers

__all__ = ["ModelPlan", "checked_plan", "graph_producers", "is_batchnorm", "model_plan",
           "total_size", "trainable_when_unfrozen", "variable_size"]

# --- the few private Keras reads (all checked on Keras 3.15.1) ---------------------------------


def _sublayers(layer: keras.Layer) -> list[keras.Layer]:
    """Layers tracked inside a (custom) layer, at any depth, parents first.

    Keras 3.15.1 has no public list of a plain layer's sublayers (``Model.layers``
    exists only for models); ``Layer._flatten_layers`` is what ``Layer.weights`` uses.
    """
    return layer._flatten_layers(include_self=False, recursive=True)


def _own_trainable_size(layer: keras.Layer) -> int:
    """Parameters that this layer itself (not its sublayers) trains while trainable.

    ``Layer._trainable_variables`` (Keras 3.15.1): the public ``trainable_weights``
    is empty while the layer is frozen, so it cannot tell what unfreezing would train.
    """
    return total_size(layer._trainable_variables)


def graph_producers(model: keras.Model) -> dict[int, list]:
    """``{id(operation): [operations feeding it]}`` over the functional graph of ``model``.

    Walks back from ``model.outputs`` through ``KerasTensor._keras_history`` and
    ``Operation._inbound_nodes`` (Keras 3.15.1; no public graph API), so raw
    operations (``x + y``, ``keras.ops`` calls, preprocessing arithmetic) count too.
    """
    out: dict[int, list] = {}
    todo = list(model.outputs)
    while todo:
        tensor = todo.pop()
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            continue
        op, node_index = history[0], history[1]
        if id(op) in out:
            continue
        node = op._inbound_nodes[node_index]
        inputs = list(keras.tree.flatten(node.input_tensors))
        out[id(op)] = [t._keras_history[0] for t in inputs if getattr(t, "_keras_history", None)]
        todo.extend(inputs)
    return out


def is_batchnorm(layer: keras.Layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


_SIZES: dict[int, tuple[weakref.ref, int]] = {}  # id(variable) -> (variable, size)


def variable_size(v) -> int:
    """``prod(v.shape)``, remembered: reading a TensorFlow variable's shape costs ~20 us,
    and a LayerFreezer change reads every variable of the model."""
    hit = _SIZES.get(id(v))
    if hit is not None and hit[0]() is v:
        return hit[1]
    size = math.prod(v.shape)
    key = id(v)
    _SIZES[key] = (weakref.ref(v, lambda _, key=key: _SIZES.pop(key, None)), size)
    return size


def total_size(variables: Iterable) -> int:
    return sum(variable_size(v) for v in variables)


def trainable_when_unfrozen(layer: keras.Layer) -> int:
    """What unfreezing ``layer`` trains under the BN policy (its BN layers, nested too, stay frozen)."""
    if isinstance(layer, keras.Model):
        return sum(trainable_when_unfrozen(i.layer) for i in iter_layers(layer) if not i.is_model)
    return sum(_own_trainable_size(p) for p in [layer, *_sublayers(layer)] if not is_batchnorm(p))


@dataclass
class ModelPlan:
    """What a model's structure gives once: layers, layers inside custom layers, variables,
    shapes, blocks. Remembered per model (a freezing call must not walk 1,000 layers twice)."""

    signature: tuple
    infos: list[LayerInfo]
    inner: dict[str, list[tuple[str, keras.Layer]]]  # leaf path -> [(path, sublayer)]
    weights: dict[str, list]  # leaf or inner path -> [(variable, size)]
    shapes: dict[str, tuple | None]
    variables: list  # [(variable, size)] for model.weights
    leaves: list[LayerInfo] = field(default_factory=list)
    models: list[LayerInfo] = field(default_factory=list)
    batchnorm: set[str] = field(default_factory=set)  # paths of BN layers, inner ones too
    blocks: list | None = None  # the model's blocks, once tlwidgets.blocks found them


# The plan lives on the model, not in a module-level weak-keyed table: a plan holds the
# model's layers, so a table's value would keep its own key (the model, with every compiled
# function of it) alive for ever. On the model, model and plan are one cycle that the
# garbage collector frees together.
_PLAN_ATTRIBUTE = "_tlw_model_plan"


def _signature(model: keras.Model) -> tuple:
    return (model.built, tuple(id(layer) for layer in model.layers))


def model_plan(model: keras.Model) -> ModelPlan:
    signature = _signature(model)
    plan = model.__dict__.get(_PLAN_ATTRIBUTE)
    if plan is not None and plan.signature == signature:
        return plan
    infos = iter_layers(model)
    inner, weights, shapes = {}, {}, {}
    for info in infos:
        try:
            shapes[info.path] = tuple(info.layer.output.shape)
        except (AttributeError, ValueError, RuntimeError):
            shapes[info.path] = None
        if info.is_model:
            continue
        weights[info.path] = [(v, variable_size(v)) for v in info.layer.weights]
        inner[info.path] = _inner(info)
        for path, sub in inner[info.path]:
            weights[path] = [(v, variable_size(v)) for v in sub.weights]
    variables = [(v, variable_size(v)) for v in model.weights]
    leaves = [info for info in infos if not info.is_model]
    batchnorm = {i.path for i in leaves if is_batchnorm(i.layer)} | {
        path for pairs in inner.values() for path, sub in pairs if is_batchnorm(sub)}
    plan = ModelPlan(signature, infos, inner, weights, shapes, variables, leaves,
                 [info for info in infos if info.is_model], batchnorm)
    object.__setattr__(model, _PLAN_ATTRIBUTE, plan)  # past Keras' attribute tracking
    return plan


def checked_plan(model: keras.Model) -> ModelPlan:
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} was never built, so it has no weights to freeze yet. "
            "Build it first: call it on data or on keras.Input(shape=...), or give its "
            "first layer an input shape."
        )
    plan = model_plan(model)
    if not plan.variables:
        raise ValueError(f"Model {model.name!r} has no weights: there is nothing to freeze.")
    return plan


def _inner(info: LayerInfo) -> list[tuple[str, keras.Layer]]:
    """``(path, layer)`` for the layers inside a (custom) leaf layer, parents first."""
    out, seen = [], set()
    for sub in _sublayers(info.layer):
        path = f"{info.path}/{sub.name}"
        while path in seen:
            path += "_"
        seen.add(path)
        out.append((path, sub))
    return out
