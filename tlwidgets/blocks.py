"""The blocks of a (nested) Keras model: what a practitioner would name.

A residual or inverted residual block, an Inception module, a NASNet cell, a
VGG stage, the stem, the top convolution (see :mod:`tlwidgets.freezing`, whose
unit of freezing they are, for the rules). :func:`block_name` reads a block
from a ``keras.applications`` layer name; :func:`blocks` finds them in any
model, from the names where they explain most weighted layers, else from the
graph; :func:`find_base` picks the pretrained base.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import keras

from tlwidgets.layers import LayerInfo, find_layer, iter_layers
from tlwidgets.model_walk import checked_plan, graph_producers, total_size, trainable_when_unfrozen

__all__ = ["Block", "block_name", "blocks", "find_base", "nested_base"]

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
    producers = graph_producers(model)
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
            items[id(child)] = _Item(child, paths, trainable_when_unfrozen(child), total_size(child.weights),
                                     trainable_when_unfrozen(child) > 0)
        else:
            size = trainable_when_unfrozen(child)
            items[id(child)] = _Item(child, [path], size, total_size(child.weights),
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
    plan = checked_plan(model)
    if plan.blocks is None:
        plan.blocks = _blocks_of(model, "")
    return plan.blocks


def blocks(model: keras.Model, base: keras.Model | str | None = None) -> list[Block]:
    """The blocks of ``model`` in order (see the module docstring); with ``base``, only that
    nested model's blocks (``base=model`` is the model itself)."""
    found = _model_blocks(model)
    if base is None:
        return found
    info = nested_base(model, base)
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
    return max(shown, key=lambda m: (total_size(m.weights), -len(m.name)))


def nested_base(model: keras.Model, base: keras.Model | str) -> LayerInfo | None:
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
