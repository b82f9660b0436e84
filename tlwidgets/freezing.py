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

The block finder is :mod:`tlwidgets.blocks` and the cached walk of the model
that it shares with the freezer is :mod:`tlwidgets.model_walk`; ``Block``,
``blocks``, ``find_base`` and ``is_batchnorm`` are re-exported here, since the
lessons and the LayerFreezer use them with the freezing functions.
"""

from __future__ import annotations

import difflib
import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import keras
import numpy as np

from tlwidgets.blocks import Block, blocks, find_base, nested_base
from tlwidgets.layers import LayerInfo, LayerNotFoundError, find_layer
from tlwidgets.model_walk import (
    ModelPlan,
    checked_plan,
    is_batchnorm,
    model_plan,
    trainable_when_unfrozen,
)

__all__ = [
    "Block",
    "LayerRow",
    "ParamCounts",
    "RecompileCheck",
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

# --- the private Keras read of recompiling (checked on Keras 3.15.1) -------------------------

def _optimizer_variables(optimizer: keras.optimizers.Optimizer) -> list:
    """The variables a built optimizer updates (``Optimizer._trainable_variables``, Keras 3.15.1)."""
    return list(optimizer._trainable_variables)


def _weighted_paths(model: keras.Model) -> set[str]:
    """Paths of the leaf layers that have weights to train (BatchNormalization aside)."""
    return {i.path for i in model_plan(model).leaves if trainable_when_unfrozen(i.layer)}


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


def _effective(model: keras.Model, infos: list[LayerInfo]) -> dict[str, bool]:
    """Whether each layer's weights would be trained (it and all its ancestors trainable)."""
    out: dict[str, bool] = {}
    for info in infos:
        parent = info.path.rsplit("/", 1)[0] if "/" in info.path else None
        above = out[parent] if parent is not None else model.trainable
        out[info.path] = bool(above and info.layer.trainable)
    return out


def _rows(model: keras.Model, plan: ModelPlan, block_of: Mapping[str, str]) -> list[LayerRow]:
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
    plan = checked_plan(model)
    block_list = blocks(model) if block_list is None else block_list
    return _rows(model, plan, {p: b.name for b in block_list for p in b.paths})


# --- trainable state --------------------------------------------------------------------------

def trainable_state(model: keras.Model) -> dict[str, bool]:
    """``{path: layer.trainable}`` for every layer (inside custom layers too); give it back to
    :func:`set_trainable_state`."""
    plan = model_plan(model)
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
    plan = model_plan(model)
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


def _apply(model: keras.Model, plan: ModelPlan, want: Mapping[str, bool], train_bn: bool) -> None:
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
    plan = checked_plan(model)
    _apply(model, plan, {i.path: False for i in plan.infos}, train_bn=False)
    return param_counts(model)


def unfreeze_all(model: keras.Model, *, train_bn: bool = False) -> ParamCounts:
    """Unfreeze every layer (BatchNormalization too only with ``train_bn=True``)."""
    plan = checked_plan(model)
    _apply(model, plan, {i.path: True for i in plan.infos}, train_bn=train_bn)
    return param_counts(model)


def unfreeze_from(model: keras.Model, layer: str | int, *, train_bn: bool = False) -> ParamCounts:
    """Freeze every layer before ``layer`` (a path, name or index) and unfreeze it and all after.

    Order is depth-first (:func:`tlwidgets.layers.iter_layers`), so a head built
    after the base stays trainable. Naming a nested model unfreezes all of it.
    """
    plan = checked_plan(model)
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
    plan = checked_plan(model)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k must be a whole number of blocks >= 0, not {k!r}.")
    base_info = nested_base(model, find_base(model) if base is None else base)
    prefix = "" if base_info is None else base_info.path + "/"
    inside = [b for b in blocks(model) if b.paths[0].startswith(prefix)]
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
    plan = checked_plan(model)
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
    plan = checked_plan(model)
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
    sizes = model_plan(model).variables  # Model.weights walks every layer on each call
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
