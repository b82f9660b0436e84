"""What is frozen in a (nested) Keras model: layer tables, blocks, freeze/unfreeze, counts.

Layers are named by the paths of :mod:`tlwidgets.layers`
(``"mobilenetv2_1.00_128/block_13_expand"``); a layer inside a custom layer
adds its own name (``"base/conv_bn/batch_normalization"``). Every function
checks its arguments before it changes anything, so a bad call raises and
leaves the model as it was.

Blocks. A block is what a practitioner would name: a residual or inverted
residual block, an Inception module, a NASNet cell, a VGG stage, the stem,
the top convolution. For the ``keras.applications`` families the layer names
say which block a layer belongs to; layers Keras names automatically (a
shortcut ``conv2d``, a ``re_lu_3``) join the block of the residual region they
sit in, else of the layers they feed. For other models blocks come from the
graph: a region between two single tensors that every path crosses (a
residual block, a branch-and-merge module) is one block, and a plain chain of
layers is cut where the spatial size changes. Blocks without trainable
weights of their own (only BatchNormalization, pooling, activation, padding)
are merged into the neighbouring block. A nested model with at least two such
blocks (the pretrained base) is shown block by block; a smaller one (a
ConvNeXt stem, an augmentation pipeline) is one block of its parent.

BatchNormalization policy. By default BN layers stay frozen even inside an
unfrozen block (``train_bn=False``), including BN layers nested in custom
layers: in Keras 3 a BN layer with ``trainable=False`` runs in inference mode,
so its moving statistics are never updated. This is the only reliable switch:
calling the base as ``base(x, training=False)`` inside a functional model is
overridden by ``fit`` in Keras 3.15 (``training=True`` is injected into every
nested call), so the moving statistics drift anyway. ``train_bn=True``
releases BN layers with their block, for the comparison that shows why the
default exists.

Recompiling. Changing ``trainable`` after a model was compiled *and trained*
is silently ignored by Keras (the traced train step and the optimizer keep
the old variables). The freezing functions warn when that happens; compile
again (``model.compile(...)``, or :func:`recompile` for the same settings with
a fresh optimizer) before the next ``fit``. :class:`RecompileCheck`, a
callback, refuses to start ``fit`` while the compiled state is stale.

Size: about 900 lines, over the package's ~500, because finding blocks and
freezing them share one cached walk of the model (:class:`_Plan`); the block
finder is the candidate to move into its own module.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
import warnings
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import keras
import numpy as np

from tlwidgets.layers import LayerInfo, LayerNotFoundError, find_layer, iter_layers

__all__ = [
    "Block",
    "LayerRow",
    "ParamCounts",
    "RecompileCheck",
    "block_name",
    "blocks",
    "find_base",
    "freeze_all",
    "is_batchnorm",
    "is_stale",
    "layer_table",
    "param_counts",
    "recompile",
    "set_block_states",
    "set_blocks_trainable",
    "set_layers_trainable",
    "set_trainable_state",
    "trainable_state",
    "unfreeze_all",
    "unfreeze_from",
    "unfreeze_top",
]

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
    return _size(layer._trainable_variables)


def _producers(model: keras.Model) -> dict[int, list]:
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


def _optimizer_variables(optimizer: keras.optimizers.Optimizer) -> list:
    """The variables a built optimizer updates (``Optimizer._trainable_variables``, Keras 3.15.1)."""
    return list(optimizer._trainable_variables)


# --- block names ------------------------------------------------------------------------------

# (pattern, block) in order; the first match names a layer's block. Layers that match
# nothing (Keras' automatic names such as ``conv2d_3`` or ``re_lu_7``) are placed by the graph.
_BLOCK_PATTERNS = [(re.compile(p), b) for p, b in [
    # NASNet: cells named by the number at the end of their layers' names
    (r"^(?:normal|reduction|adjust|separable_conv)\w*_stem_(\d+)$", r"stem_\1"),
    (r"^(?:normal|reduction|adjust|separable_conv)\w*_(reduce_\d+)$", r"\1"),
    (r"^(?:normal|reduction|adjust|separable_conv)\w*_(\d+)$", r"cell_\1"),
    # ConvNeXt
    (r"(?:^|_)stage_(\d+)_block_(\d+)_", r"stage_\1_block_\2"),
    (r"(?:^|_)downsampling_(?:block_|layernorm_|conv_)(\d+)$", r"downsampling_\1"),
    # stems: EfficientNet(V2), NASNet, ConvNeXt, ResNet(V2), DenseNet, MobileNet(V2/V3)
    (r"(?:^|_)(?:pre)?stem(?:_|$)", "stem"),
    (r"^(?:conv1|pool1|bn_Conv1|Conv1)(?:_|$)", "stem"),
    (r"^conv(?:_bn)?$", "stem"),
    # ResNet(V2), DenseNet (dense layers ``conv4_block7``, transitions ``pool3``)
    (r"^(conv\d+_block\d+)_", r"\1"),
    (r"^(pool\d+)_", r"\1"),
    # EfficientNet(V2)
    (r"^(block\d+[a-z])_", r"\1"),
    # MobileNetV3 and V2 (their first block has no number), MobileNet
    (r"^expanded_conv_(\d+)_", r"block_\1"),
    (r"^expanded_conv_", "block_0"),
    (r"^block_(\d+)_", r"block_\1"),
    (r"^conv_(?:dw|pw|pad)_(\d+)", r"block_\1"),
    # InceptionResNetV2 (before VGG/Xception's ``block3_``), InceptionV3
    (r"^(block\d+_\d+)_", r"\1"),
    (r"^(mixed_?\d+[a-z]?)$", r"\1"),
    # VGG stages, Xception blocks
    (r"^(block\d+)_", r"\1"),
    # top convolutions
    (r"^(?:Conv_1|Conv_1_bn|conv_1|conv_1_bn|out_relu|top_\w+|conv_7b|conv_7b_bn|conv_7b_ac)$",
     "top"),
]]

_NORMALISATION = (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                  keras.layers.GroupNormalization, keras.layers.UnitNormalization)


def block_name(layer_name: str) -> str | None:
    """The block a layer's name puts it in (``block_13_expand`` -> ``block_13``), or None."""
    for pattern, name in _BLOCK_PATTERNS:
        match = pattern.search(layer_name)
        if match:
            return match.expand(name)
    return None


def is_batchnorm(layer: keras.Layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


_SIZES: dict[int, tuple[weakref.ref, int]] = {}  # id(variable) -> (variable, size)


def _variable_size(v) -> int:
    """``prod(v.shape)``, remembered: reading a TensorFlow variable's shape costs ~20 us,
    and a LayerFreezer change reads every variable of the model."""
    hit = _SIZES.get(id(v))
    if hit is not None and hit[0]() is v:
        return hit[1]
    size = math.prod(v.shape)
    key = id(v)
    _SIZES[key] = (weakref.ref(v, lambda _, key=key: _SIZES.pop(key, None)), size)
    return size


def _size(variables: Iterable) -> int:
    return sum(_variable_size(v) for v in variables)


def _trainable_size(layer: keras.Layer) -> int:
    """What unfreezing ``layer`` trains under the BN policy (its BN layers, nested too, stay frozen)."""
    if isinstance(layer, keras.Model):
        return sum(_trainable_size(i.layer) for i in iter_layers(layer) if not i.is_model)
    return sum(_own_trainable_size(p) for p in [layer, *_sublayers(layer)] if not is_batchnorm(p))


def _weighted_paths(model: keras.Model) -> set[str]:
    """Paths of the leaf layers that have weights to train (BatchNormalization aside)."""
    return {i.path for i in _plan(model).leaves if _trainable_size(i.layer)}


# --- tables -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerRow:
    """One row of :func:`layer_table`."""

    path: str
    type: str
    depth: int
    block: str
    output_shape: tuple | None
    params: int
    trainable_params: int
    trainable: bool  # effective: this layer and every enclosing model are trainable
    bn_mode: Literal["inference", "training"] | None  # BatchNormalization only


@dataclass(frozen=True)
class Block:
    """The leaf layers of one model that form one block (see the module docstring)."""

    name: str
    parent: str  # path of the enclosing model ("" for the outer model)
    paths: tuple[str, ...]
    params: int
    trainable_size: int = 0  # parameters that unfreezing the block trains (BN frozen)

    @property
    def key(self) -> str:
        return f"{self.parent}/{self.name}" if self.parent else self.name


@dataclass(frozen=True)
class ParamCounts:
    trainable: int
    non_trainable: int

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def share(self) -> float:
        """Trainable share of all parameters (0 to 1)."""
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (f"{self.trainable:,} trainable of {self.total:,} parameters "
                f"({100 * self.share:.1f}%)")


@dataclass
class _Plan:
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
    blocks: list[Block] | None = None


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _signature(model: keras.Model) -> tuple:
    return (model.built, tuple(id(layer) for layer in model.layers))


def _plan(model: keras.Model) -> _Plan:
    signature = _signature(model)
    plan = _PLANS.get(model)
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
        weights[info.path] = [(v, _variable_size(v)) for v in info.layer.weights]
        inner[info.path] = _inner(info)
        for path, sub in inner[info.path]:
            weights[path] = [(v, _variable_size(v)) for v in sub.weights]
    variables = [(v, _variable_size(v)) for v in model.weights]
    leaves = [info for info in infos if not info.is_model]
    batchnorm = {i.path for i in leaves if is_batchnorm(i.layer)} | {
        path for pairs in inner.values() for path, sub in pairs if is_batchnorm(sub)}
    plan = _Plan(signature, infos, inner, weights, shapes, variables, leaves,
                 [info for info in infos if info.is_model], batchnorm)
    _PLANS[model] = plan
    return plan


def _check_model(model: keras.Model) -> _Plan:
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} was never built, so it has no weights to freeze yet. "
            "Build it first: call it on data or on keras.Input(shape=...), or give its "
            "first layer an input shape."
        )
    plan = _plan(model)
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


def _effective(model: keras.Model, infos: list[LayerInfo]) -> dict[str, bool]:
    """Whether each layer's weights would be trained (it and all its ancestors trainable)."""
    out: dict[str, bool] = {}
    for info in infos:
        parent = info.path.rsplit("/", 1)[0] if "/" in info.path else None
        above = out[parent] if parent is not None else model.trainable
        out[info.path] = bool(above and info.layer.trainable)
    return out


def _rows(model: keras.Model, plan: _Plan, block_of: Mapping[str, str]) -> list[LayerRow]:
    infos = plan.infos
    effective = _effective(model, infos)
    rows: dict[str, LayerRow] = {}

    def row(path, layer, depth, on, block, shape):
        sizes = plan.weights[path]
        rows[path] = LayerRow(
            path=path, type=type(layer).__name__, depth=depth, block=block, output_shape=shape,
            params=sum(n for _, n in sizes),
            trainable_params=sum(n for v, n in sizes if v.trainable) if on else 0,
            trainable=on,
            bn_mode=(("training" if on else "inference") if path in plan.batchnorm else None),
        )

    models = {info.path for info in plan.models}
    for info in infos:
        on = effective[info.path]
        block = block_of.get(info.path, "")
        if info.path in models:  # filled in below from its layers
            rows[info.path] = None
            continue
        row(info.path, info.layer, info.depth, on, block, plan.shapes[info.path])
        for path, sub in plan.inner[info.path]:
            row(path, sub, info.depth + path.count("/") - info.path.count("/"),
                bool(on and sub.trainable), block, None)
    for info in reversed(plan.models):  # inner models first
        on = effective[info.path]
        depth = info.path.count("/") + 1
        inside = [r for p, r in rows.items() if r is not None and p.count("/") == depth
                  and p.startswith(info.path + "/")]
        rows[info.path] = LayerRow(
            path=info.path, type=info.type, depth=info.depth, block="",
            output_shape=plan.shapes[info.path], params=sum(r.params for r in inside),
            trainable_params=sum(r.trainable_params for r in inside) if on else 0,
            trainable=on, bn_mode=None)
    return list(rows.values())


def layer_table(model: keras.Model, *, block_list: list[Block] | None = None) -> list[LayerRow]:
    """Every layer (nested models, and layers inside custom layers, included) with its block,
    shape, parameters and state. ``block_list``: the model's :func:`blocks`, if known."""
    plan = _check_model(model)
    block_list = blocks(model) if block_list is None else block_list
    return _rows(model, plan, {p: b.name for b in block_list for p in b.paths})


# --- blocks -----------------------------------------------------------------------------------

@dataclass
class _Draft:
    name: str
    paths: list[str]
    params: int = 0
    trainable_size: int = 0
    segment: int | None = None  # a multi-layer graph region it came from (graph mode)
    spatial: tuple | None = None
    starters: int = 0


@dataclass
class _Item:
    """One child of a model: a layer, or a nested model shown as one block."""

    layer: keras.Layer
    paths: list[str]
    trainable_size: int
    params: int
    starter: bool  # has weights of its own to train and is not a normalisation layer


def _spatial(shape) -> tuple | None:
    return tuple(shape[1:-1]) if shape is not None and len(shape) == 4 else None


def _graph(model: keras.Model, children: list[keras.Layer]):
    """Operations in order, a segment number per operation, producers and input shapes.

    A segment is a region between two cuts: points where a single tensor carries
    everything forward (a residual block, an Inception module, one layer of a chain).
    """
    if isinstance(model, keras.Sequential) or not hasattr(model, "operations"):
        shapes = {}
        for layer in children:
            try:
                shapes[id(layer)] = tuple(layer.input.shape)
            except (AttributeError, ValueError, RuntimeError):
                shapes[id(layer)] = None
        ops = list(children)
        producers = {id(b): [a] for a, b in zip(ops, ops[1:], strict=False)}
        return ops, {id(op): i for i, op in enumerate(ops)}, producers, shapes
    producers = _producers(model)
    ops = [op for op in model.operations if id(op) in producers]
    position = {id(op): i for i, op in enumerate(ops)}
    reach = list(range(len(ops)))
    for j, op in enumerate(ops):
        for p in producers[id(op)]:
            i = position.get(id(p))
            if i is not None:
                reach[i] = max(reach[i], j)
    segment, current, furthest = {}, 0, -1
    for p, op in enumerate(ops):
        segment[id(op)] = current
        if furthest <= p:  # only op p's output crosses to what follows: a cut after p
            current += 1
        furthest = max(furthest, reach[p])
    shapes = {}
    for op in ops:
        try:
            shapes[id(op)] = tuple(op.input.shape) if not isinstance(op, keras.Model) else tuple(
                op.inputs[0].shape)
        except (AttributeError, ValueError, RuntimeError, IndexError, TypeError):
            shapes[id(op)] = None
    return ops, segment, producers, shapes


def _named_keys(ops, items: dict[int, _Item], segment, producers) -> tuple[dict[int, str], float]:
    """A block name per operation from layer names; the share of weighted layers it explains."""
    ops = [op for op in ops if not isinstance(op, keras.layers.InputLayer)]
    own = {id(op): block_name(op.name) if id(op) in items else None for op in ops}
    by_segment: dict[int, set] = {}
    for op in ops:
        if own[id(op)]:
            by_segment.setdefault(segment.get(id(op), -1), set()).add(own[id(op)])
    consumers: dict[int, list] = {}
    for op in ops:
        for p in producers.get(id(op), []):
            consumers.setdefault(id(p), []).append(op)
    key = dict(own)
    explained = weighted = 0
    for op in ops:
        names = by_segment.get(segment.get(id(op), -1), set())
        if key[id(op)] is None and len(names) == 1:
            key[id(op)] = next(iter(names))
        item = items.get(id(op))
        if item is not None and item.trainable_size:
            weighted += 1
            explained += key[id(op)] is not None
    for op in reversed(ops):  # regions holding several blocks (NASNet cells): follow the data
        if key[id(op)] is None and len(by_segment.get(segment.get(id(op), -1), ())) > 1:
            key[id(op)] = next((key[id(c)] for c in consumers.get(id(op), []) if key[id(c)]), None)
    previous = None
    for op in ops:
        if key[id(op)] is None:
            fed_by = [key[id(p)] for p in producers.get(id(op), []) if key.get(id(p))]
            key[id(op)] = fed_by[-1] if fed_by else (previous or "stem")
        previous = key[id(op)]
    return key, (explained / weighted if weighted else 0.0)


def _container(model: keras.Model, prefix: str) -> list:
    """Drafts and expanded nested models (``(model, blocks)``) of one model, in order."""
    children = [c for c in model.layers if not isinstance(c, keras.layers.InputLayer)]
    items: dict[int, _Item] = {}
    expanded: dict[int, list[Block]] = {}
    for child in children:
        path = prefix + child.name
        if isinstance(child, keras.Model):
            inner = _blocks_of(child, path + "/")
            if sum(1 for b in inner if b.trainable_size) >= 2:
                expanded[id(child)] = inner
                continue
            paths = [i.path for i in iter_layers(child, _prefix=path + "/") if not i.is_model]
            items[id(child)] = _Item(child, paths, _trainable_size(child), _size(child.weights),
                                     _trainable_size(child) > 0)
        else:
            size = _trainable_size(child)
            items[id(child)] = _Item(child, [path], size, _size(child.weights),
                                     size > 0 and not isinstance(child, _NORMALISATION))
    ops, segment, producers, shapes = _graph(model, children)
    keys, explained = _named_keys(ops, items, segment, producers)
    seg_size: dict[int, int] = {}
    for op in ops:
        if not isinstance(op, keras.layers.InputLayer):
            seg_size[segment.get(id(op), -1)] = seg_size.get(segment.get(id(op), -1), 0) + 1
    entries: list = []
    named = explained > 0.5
    by_name: dict[str, _Draft] = {}
    current: _Draft | None = None
    for op in ops:
        if id(op) in expanded:
            entries.append((op, expanded[id(op)]))
            current = None
            continue
        item = items.get(id(op))
        if item is None:
            continue
        if named:
            name = keys[id(op)]
            draft = by_name.get(name)
            if draft is None or (entries and entries[-1] is not draft and _separated(entries, draft)):
                if draft is not None:
                    name = f"{name}_{sum(1 for k in by_name if k.startswith(name))+1}"
                draft = by_name[name] = _Draft(name, [])
                entries.append(draft)
        else:
            seg = segment.get(id(op), -1)
            region = seg if seg_size.get(seg, 1) > 1 else None
            spatial = _spatial(shapes.get(id(op)))
            if region is not None:  # a residual block or module: one block
                new = current is None or current.segment != region
            else:  # a chain: a new block where the spatial size changes (or per layer if flat)
                new = current is None or (item.starter and current.starters > 0 and (
                    current.segment is not None or spatial is None or spatial != current.spatial))
            if new:
                current = _Draft(op.name, [], segment=region, spatial=spatial)
                entries.append(current)
            elif item.starter and not current.starters:
                current.name, current.spatial = op.name, spatial
            draft = current
        draft.paths.extend(item.paths)
        draft.params += item.params
        draft.trainable_size += item.trainable_size
        draft.starters += item.starter
    return entries


def _separated(entries: list, draft: _Draft) -> bool:
    """Whether an expanded nested model stands between ``draft`` and the end of ``entries``."""
    i = next(i for i, e in enumerate(entries) if e is draft)
    return any(not isinstance(e, _Draft) for e in entries[i + 1:])


def _blocks_of(model: keras.Model, prefix: str) -> list[Block]:
    entries = _container(model, prefix)
    parent = prefix.rstrip("/")
    # Merge drafts without trainable weights into the previous draft (or the next), never
    # across an expanded nested model.
    runs: list[list] = [[]]
    for entry in entries:
        if isinstance(entry, _Draft):
            runs[-1].append(entry)
        else:
            runs.append(entry)
            runs.append([])
    out: list[Block] = []
    for run in runs:
        if not isinstance(run, list):
            out.extend(run[1])
            continue
        kept: list[_Draft] = []
        pending: list[_Draft] = []
        for draft in run:
            if draft.trainable_size == 0:
                if kept:
                    kept[-1].paths.extend(draft.paths)
                    _add(kept[-1], draft)
                else:
                    pending.append(draft)
                continue
            for p in pending:
                draft.paths[:0] = p.paths
                _add(draft, p)
            pending = []
            kept.append(draft)
        if pending and not kept:  # nothing here trains: one block
            first = pending[0]
            for p in pending[1:]:
                first.paths.extend(p.paths)
                _add(first, p)
            kept = [first]
        out.extend(Block(d.name, parent, tuple(d.paths), d.params, d.trainable_size) for d in kept)
    return out


def _add(into: _Draft, other: _Draft) -> None:
    into.params += other.params
    into.trainable_size += other.trainable_size


def _model_blocks(model: keras.Model) -> list[Block]:
    plan = _check_model(model)
    if plan.blocks is None:
        plan.blocks = _blocks_of(model, "")
    return plan.blocks


def blocks(model: keras.Model, base: keras.Model | str | None = None) -> list[Block]:
    """The blocks of ``model`` in order (see the module docstring); with ``base``, only that
    nested model's blocks (``base=model`` is the model itself)."""
    found = _model_blocks(model)
    if base is None:
        return found
    info = _base_info(model, base)
    if info is None:
        return found
    prefix = info.path + "/"
    return [b for b in found if b.paths[0].startswith(prefix)]


def find_base(model: keras.Model) -> keras.Model:
    """The pretrained base: the largest nested model shown block by block, else ``model``.

    Parts of a base (a ConvNeXt stem, a downsampling Sequential) are never chosen:
    they are single blocks of the base.
    """
    parents = {b.parent for b in _model_blocks(model) if b.parent}
    if not parents:
        return model
    infos = {i.path: i for i in iter_layers(model)}
    shown = [infos[p].layer for p in parents if p in infos]
    return max(shown, key=lambda m: (_size(m.weights), -len(m.name)))


def _base_info(model: keras.Model, base: keras.Model | str) -> LayerInfo | None:
    """The nested base's :class:`LayerInfo`; None when ``base`` is the model itself."""
    if base is model or (isinstance(base, str) and base == model.name and not any(
            i.path == base for i in iter_layers(model))):
        return None
    if isinstance(base, str):
        info = find_layer(model, base)
        if not info.is_model:
            raise ValueError(f"{base!r} is a {info.type}, not a nested model.")
        return info
    for info in iter_layers(model):
        if info.layer is base:
            return info
    raise ValueError(
        f"Model {base.name!r} is not nested inside {model.name!r}. Pass one of its nested "
        f"models, the model itself, or nothing (find_base(model) picks "
        f"{find_base(model).name!r})."
    )


# --- trainable state --------------------------------------------------------------------------

def trainable_state(model: keras.Model) -> dict[str, bool]:
    """``{path: layer.trainable}`` for every layer (inside custom layers too); give it back to
    :func:`set_trainable_state`."""
    plan = _plan(model)
    state = {"": model.trainable}
    for info in plan.infos:
        state[info.path] = info.layer.trainable
        if not info.is_model:
            state.update({path: sub.trainable for path, sub in plan.inner[info.path]})
    return state


def set_trainable_state(model: keras.Model, state: Mapping[str, bool]) -> None:
    """Restore a :func:`trainable_state` (containers first, so they do not override leaves).

    Only flags that differ are set: Keras' ``trainable`` setter walks every sublayer.
    """
    plan = _plan(model)
    known = {"", *(i.path for i in plan.infos), *(p for v in plan.inner.values() for p, _ in v)}
    # (inside a custom layer, names may differ in a clone: those are matched by name only)
    unknown = [p for p in state if p not in known and p.rsplit("/", 1)[0] not in plan.inner]
    if unknown:
        raise ValueError(f"{len(unknown)} paths of this state are not layers of {model.name!r} "
                         f"(first: {unknown[0]!r}); take the state from this model with "
                         "trainable_state(model).")
    if model.trainable != state.get("", True):
        model.trainable = state.get("", True)
    for info in plan.infos:  # depth-first: every model comes before its own layers
        if info.is_model and info.path in state and info.layer.trainable != state[info.path]:
            info.layer.trainable = state[info.path]
    for info in plan.leaves:
        if info.path in state and info.layer.trainable != state[info.path]:
            info.layer.trainable = state[info.path]
        for path, sub in plan.inner[info.path]:  # parents first: an inner BN keeps its flag
            if path in state and sub.trainable != state[path]:
                sub.trainable = state[path]


def _apply(model: keras.Model, plan: _Plan, want: Mapping[str, bool], train_bn: bool) -> None:
    """Set leaves to ``want``; BN (nested too) stays frozen unless ``train_bn``; containers
    follow their leaves."""
    bn = set() if train_bn else plan.batchnorm
    state: dict[str, bool] = {}
    for info in plan.leaves:
        on = bool(want.get(info.path, info.layer.trainable))
        state[info.path] = on and info.path not in bn
        for path, _ in plan.inner[info.path]:
            state[path] = on and path not in bn
    for info in reversed(plan.models):  # inner models first
        prefix = info.path + "/"
        state[info.path] = any(v for p, v in state.items() if p.startswith(prefix)
                               and p.count("/") == prefix.count("/"))
    state[""] = any(state[i.path] for i in plan.infos if i.depth == 0)
    set_trainable_state(model, state)
    _warn_if_stale(model)


def freeze_all(model: keras.Model) -> ParamCounts:
    """Freeze every layer. Returns the new parameter counts."""
    plan = _check_model(model)
    _apply(model, plan, {i.path: False for i in plan.infos}, train_bn=False)
    return param_counts(model)


def unfreeze_all(model: keras.Model, *, train_bn: bool = False) -> ParamCounts:
    """Unfreeze every layer (BatchNormalization too only with ``train_bn=True``)."""
    plan = _check_model(model)
    _apply(model, plan, {i.path: True for i in plan.infos}, train_bn=train_bn)
    return param_counts(model)


def unfreeze_from(model: keras.Model, layer: str | int, *, train_bn: bool = False) -> ParamCounts:
    """Freeze every layer before ``layer`` (a path, name or index) and unfreeze it and all after.

    Order is depth-first (:func:`tlwidgets.layers.iter_layers`), so a head built
    after the base stays trainable. Naming a nested model unfreezes all of it.
    """
    plan = _check_model(model)
    start = find_layer(model, layer)
    _apply(model, plan, {i.path: i.index >= start.index for i in plan.infos}, train_bn=train_bn)
    return param_counts(model)


def unfreeze_top(model: keras.Model, k: int, *, base: keras.Model | str | None = None,
                 train_bn: bool = False) -> ParamCounts:
    """Unfreeze the top ``k`` blocks of the base (and everything after it); freeze the rest.

    ``base`` defaults to :func:`find_base`; pass the model itself for a bare base.
    Only blocks with trainable weights count. ``k=0`` trains only what comes after
    the base (the head).
    """
    plan = _check_model(model)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k must be a whole number of blocks >= 0, not {k!r}.")
    base_info = _base_info(model, find_base(model) if base is None else base)
    prefix = "" if base_info is None else base_info.path + "/"
    inside = [b for b in _model_blocks(model) if b.paths[0].startswith(prefix)]
    weighted = [b for b in inside if b.trainable_size]
    name = model.name if base_info is None else base_info.name
    if not weighted:
        raise ValueError(f"{name!r} has no blocks with trainable weights; nothing to unfreeze.")
    if k > len(weighted):
        raise ValueError(
            f"Asked for the top {k} blocks, but {name!r} has only {len(weighted)} "
            f"blocks with weights ({weighted[0].name} ... {weighted[-1].name}). "
            f"Use k <= {len(weighted)}, or unfreeze_all()."
        )
    top = {p for b in weighted[len(weighted) - k:] for p in b.paths}
    in_base = [i for i in plan.leaves if i.path.startswith(prefix)]
    last = max(i.index for i in in_base)
    want = {i.path: (i.path in top) if i.path.startswith(prefix) else i.index > last
            for i in plan.leaves}
    _apply(model, plan, want, train_bn=train_bn)
    return param_counts(model)


def _find_blocks(model: keras.Model, keys: Iterable[str], all_blocks: list[Block]) -> list[Block]:
    by_key = {b.key: b for b in all_blocks}
    chosen = []
    for key in keys:
        if key in by_key:
            chosen.append(by_key[key])
            continue
        named = [b for b in all_blocks if b.name == key]
        if len(named) == 1:
            chosen.append(named[0])
            continue
        if named:
            raise LayerNotFoundError(f"{key!r} names {len(named)} blocks of {model.name!r}; use a key: "
                           f"{', '.join(b.key for b in named)}.")
        names = {b.name: b.key for b in all_blocks} | {k: k for k in by_key}
        close = difflib.get_close_matches(key, list(names), n=5, cutoff=0.5)
        hint = f" Close matches: {', '.join(dict.fromkeys(names[c] for c in close))}." if close else ""
        raise LayerNotFoundError(f"No block {key!r} in {model.name!r}.{hint}")
    return chosen


def set_block_states(model: keras.Model, states: Mapping[str, bool], *,
                     train_bn: bool = False, all_blocks: list[Block] | None = None) -> ParamCounts:
    """Freeze (False) or unfreeze (True) blocks named by :attr:`Block.key` (or a unique
    :attr:`Block.name`); blocks not named keep their state.

    Raises, changing nothing, for an unknown or ambiguous name and for unfreezing a
    block that has nothing to train.
    """
    plan = _check_model(model)
    all_blocks = blocks(model) if all_blocks is None else all_blocks
    chosen = _find_blocks(model, states, all_blocks)
    want: dict[str, bool] = {}
    for key, block in zip(states, chosen, strict=True):
        on = bool(states[key])
        if on and not block.trainable_size and not (train_bn and block.params):
            raise ValueError(
                f"Block {block.key!r} has no weights to train "
                f"({', '.join(p.rsplit('/', 1)[-1] for p in block.paths)}); unfreeze a block "
                "with weights instead" + (" or pass train_bn=True." if block.params else ".")
            )
        want.update({p: on for p in block.paths})
    _apply(model, plan, want, train_bn=train_bn)
    return param_counts(model)


def set_blocks_trainable(model: keras.Model, keys: Iterable[str], trainable: bool, *,
                         train_bn: bool = False) -> ParamCounts:
    """Freeze or unfreeze whole blocks, named by :attr:`Block.key` (or ``Block.name`` if unique)."""
    return set_block_states(model, dict.fromkeys(keys, trainable), train_bn=train_bn)


def set_layers_trainable(model: keras.Model, want: Mapping[str, bool], *,
                         train_bn: bool = False) -> ParamCounts:
    """Set leaf layers by path (others keep their state); enclosing models follow their layers.

    Unfreezing a BatchNormalization layer needs ``train_bn=True`` (else it raises).
    """
    plan = _check_model(model)
    leaves = {i.path: i for i in plan.leaves}
    unknown = [p for p in want if p not in leaves]
    if unknown:
        find_layer(model, unknown[0])  # raises with close matches when the path does not exist
        raise ValueError(f"{unknown[0]!r} is a nested model; name its layers instead.")
    bn = [p for p, on in want.items() if on and is_batchnorm(leaves[p].layer)]
    if bn and not train_bn:
        raise ValueError(
            f"{bn[0]!r} is a BatchNormalization layer, which stays frozen by default (its "
            "moving statistics would drift). Pass train_bn=True to train it, or leave it out."
        )
    _apply(model, plan, want, train_bn=train_bn)
    return param_counts(model)


def param_counts(model: keras.Model) -> ParamCounts:
    """Trainable vs non-trainable parameters, as ``fit`` would see them."""
    sizes = _plan(model).variables  # Model.weights walks every layer on each call
    trainable = sum(n for v, n in sizes if v.trainable) if model.trainable else 0
    return ParamCounts(trainable, sum(n for _, n in sizes) - trainable)


# --- compiling again after a change -----------------------------------------------------------

def is_stale(model: keras.Model) -> bool:
    """Whether ``fit`` would ignore the current ``trainable`` flags: the model was compiled
    and trained with another set of trainable weights, and not compiled again since."""
    optimizer = getattr(model, "optimizer", None)
    if not getattr(model, "compiled", False) or optimizer is None or not optimizer.built:
        return False
    known = {id(v) for v in _optimizer_variables(optimizer)}
    return known != {id(v) for v in model.trainable_variables}


_STALE_MESSAGE = (
    "The trainable layers of {name!r} changed after it was compiled and trained: Keras "
    "would silently keep training the old set of weights. Compile again before fit(): "
    "model.compile(...), or freezing.recompile(model) for the same settings with a "
    "fresh optimizer."
)


def _warn_if_stale(model: keras.Model) -> None:
    if is_stale(model):
        # Point at the caller's line, outside this package (a widget callback or a cell).
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        level, frame = 1, sys._getframe(1)
        while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
            level, frame = level + 1, frame.f_back
        warnings.warn(_STALE_MESSAGE.format(name=model.name), UserWarning, stacklevel=level)


def recompile(model: keras.Model) -> keras.Model:
    """Compile again with the same settings and a fresh optimizer (its state is reset)."""
    config = model.get_compile_config()
    if not config:
        raise ValueError(f"Model {model.name!r} was never compiled; call model.compile(...).")
    with model.distribute_strategy.scope():
        model.compile_from_config(config)
    return model


class RecompileCheck(keras.callbacks.Callback):
    """Refuses to start ``fit`` when :func:`is_stale`: ``fit(..., callbacks=[RecompileCheck()])``."""

    def on_train_begin(self, logs=None):
        if is_stale(self.model):
            raise RuntimeError(_STALE_MESSAGE.format(name=self.model.name))
