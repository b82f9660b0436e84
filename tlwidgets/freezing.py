"""What is frozen in a (nested) Keras model: layer tables, blocks, freeze/unfreeze, counts.

Layers are named by the paths of :mod:`tlwidgets.layers`
(``"mobilenetv2_1.00_128/block_13_expand"``). Every function checks its
arguments before it changes anything, so a bad call leaves the model as it was.

BatchNormalization policy. By default BN layers stay frozen even inside an
unfrozen block (``train_bn=False``): in Keras 3 a BN layer with
``trainable=False`` runs in inference mode, so its moving statistics are never
updated. This is the only reliable switch: calling the base as
``base(x, training=False)`` inside a functional model is overridden by
``fit`` in Keras 3.15 (``training=True`` is injected into every nested call),
so the moving statistics drift anyway. ``train_bn=True`` releases BN layers
with their block, for the comparison that shows why the default exists.

Changing ``trainable`` after ``compile()`` and a first ``fit`` is silently
ignored by Keras (the traced train step and the optimizer keep the old
variables; Keras 3.15's own warning for this is unreachable code).
:func:`guard_trainable` puts a check in front of ``model.fit``.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import keras
import numpy as np

from tlwidgets.layers import LayerInfo, find_layer, iter_layers

__all__ = [
    "Block",
    "LayerRow",
    "ParamCounts",
    "TrainableGuard",
    "blocks",
    "find_base",
    "freeze_all",
    "guard_trainable",
    "is_batchnorm",
    "layer_table",
    "param_counts",
    "set_blocks_trainable",
    "set_layers_trainable",
    "trainable_state",
    "unfreeze_all",
    "unfreeze_from",
    "unfreeze_top",
]

# Block names of the course's backbones (and EfficientNet); anything else is its own block.
_BLOCK_PATTERNS = [
    (re.compile(r"^(?:Conv1|bn_Conv1|conv1|pool1)(?:_|$)"), lambda m: "stem"),
    (re.compile(r"^stem_"), lambda m: "stem"),
    (re.compile(r"^expanded_conv_"), lambda m: "block_0"),  # MobileNetV2
    (re.compile(r"^block_(\d+)_"), lambda m: f"block_{m.group(1)}"),  # MobileNetV2
    (re.compile(r"^conv_(?:dw|pw|pad)_(\d+)"), lambda m: f"block_{m.group(1)}"),  # MobileNet
    (re.compile(r"^(conv\d_block\d+)_"), lambda m: m.group(1)),  # ResNet
    (re.compile(r"^(block\d+[a-z])_"), lambda m: m.group(1)),  # EfficientNet
    (re.compile(r"^(?:Conv_1|Conv_1_bn|out_relu|top_)"), lambda m: "top"),
]


def block_name(layer_name: str) -> str:
    """The block a layer belongs to, from its name (``block_13_expand`` -> ``block_13``)."""
    for pattern, name in _BLOCK_PATTERNS:
        match = pattern.match(layer_name)
        if match:
            return name(match)
    return layer_name


def is_batchnorm(layer: keras.Layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def _size(variables: Iterable) -> int:
    return int(sum(np.prod(v.shape, dtype=np.int64) for v in variables))


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
    """Consecutive leaf layers of one model that share a block name."""

    name: str
    parent: str  # path of the enclosing model ("" for the outer model)
    paths: tuple[str, ...]
    params: int

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


def _check_model(model: keras.Model) -> list[LayerInfo]:
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} was never built, so it has no weights to freeze yet. "
            "Build it first: call it on data or on keras.Input(shape=...), or give its "
            "first layer an input shape."
        )
    if not model.weights:
        raise ValueError(f"Model {model.name!r} has no weights: there is nothing to freeze.")
    return iter_layers(model)


def _leaves(infos: list[LayerInfo]) -> list[LayerInfo]:
    return [info for info in infos if not info.is_model]


def _effective(model: keras.Model, infos: list[LayerInfo]) -> dict[str, bool]:
    """Whether each layer's weights would be trained (it and all its ancestors trainable)."""
    out: dict[str, bool] = {}
    for info in infos:
        parent = info.path.rsplit("/", 1)[0] if "/" in info.path else None
        above = out[parent] if parent is not None else model.trainable
        out[info.path] = bool(above and info.layer.trainable)
    return out


def layer_table(model: keras.Model) -> list[LayerRow]:
    """Every layer (nested models included) with its block, shape, parameters and state."""
    infos = _check_model(model)
    effective = _effective(model, infos)
    rows = []
    for info in infos:
        layer = info.layer
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            shape = None
        on = effective[info.path]
        rows.append(LayerRow(
            path=info.path,
            type=info.type,
            depth=info.depth,
            block="" if info.is_model else block_name(info.name),
            output_shape=shape,
            params=_size(layer.weights),
            trainable_params=_size(layer.trainable_weights) if on else 0,
            trainable=on,
            bn_mode=(("training" if on else "inference") if is_batchnorm(layer) else None),
        ))
    return rows


def blocks(model: keras.Model, base: keras.Model | str | None = None) -> list[Block]:
    """Leaf layers grouped into blocks, in order. With ``base``, only that nested model's blocks."""
    infos = _check_model(model)
    prefix = ""
    if base is not None:
        prefix = _base_info(model, base).path + "/"
    out: list[Block] = []
    current: list[LayerInfo] = []

    def flush():
        if current:
            parent = current[0].path.rsplit("/", 1)[0] if "/" in current[0].path else ""
            out.append(Block(block_name(current[0].name), parent,
                             tuple(i.path for i in current),
                             sum(_size(i.layer.weights) for i in current)))
            current.clear()

    for info in _leaves(infos):
        if not info.path.startswith(prefix):
            continue
        if current and (block_name(info.name) != block_name(current[0].name)
                        or info.parent is not current[0].parent):
            flush()
        current.append(info)
    flush()
    return out


def find_base(model: keras.Model) -> keras.Model:
    """The pretrained base: the largest model nested in ``model`` (or ``model`` itself)."""
    nested = [i.layer for i in iter_layers(model) if i.is_model]
    if not nested:
        return model
    return max(nested, key=lambda m: len(iter_layers(m)))


def _base_info(model: keras.Model, base: keras.Model | str) -> LayerInfo:
    if isinstance(base, str):
        info = find_layer(model, base)
        if not info.is_model:
            raise ValueError(f"{base!r} is a {info.type}, not a nested model.")
        return info
    for info in iter_layers(model):
        if info.layer is base:
            return info
    raise ValueError(f"Model {base.name!r} is not nested inside {model.name!r}.")


def trainable_state(model: keras.Model) -> dict[str, bool]:
    """``{path: layer.trainable}`` for every layer; give it back to :func:`set_trainable_state`."""
    return {info.path: info.layer.trainable for info in iter_layers(model)} | {"": model.trainable}


def set_trainable_state(model: keras.Model, state: dict[str, bool]) -> None:
    """Restore a :func:`trainable_state` (containers first, so they do not override leaves)."""
    infos = iter_layers(model)
    model.trainable = state.get("", True)
    for info in infos:  # depth-first: every model comes before its own layers
        if info.path in state and info.is_model:
            info.layer.trainable = state[info.path]
    for info in _leaves(infos):
        if info.path in state:
            info.layer.trainable = state[info.path]


def _apply(model: keras.Model, infos: list[LayerInfo], want: dict[str, bool],
           train_bn: bool) -> None:
    """Set leaves to ``want``; BN stays frozen unless ``train_bn``; containers follow leaves."""
    leaves = _leaves(infos)
    state = {}
    for info in leaves:
        on = want.get(info.path, info.layer.trainable)
        state[info.path] = bool(on and (train_bn or not is_batchnorm(info.layer)))
    for info in infos:
        if info.is_model:
            inner = [v for p, v in state.items() if p.startswith(info.path + "/")]
            state[info.path] = any(inner)
    state[""] = any(state[i.path] for i in leaves)
    set_trainable_state(model, state)
    _mark_changed(model)


def freeze_all(model: keras.Model) -> ParamCounts:
    """Freeze every layer. Returns the new parameter counts."""
    infos = _check_model(model)
    _apply(model, infos, {i.path: False for i in infos}, train_bn=False)
    return param_counts(model)


def unfreeze_all(model: keras.Model, *, train_bn: bool = False) -> ParamCounts:
    """Unfreeze every layer (BatchNormalization too only with ``train_bn=True``)."""
    infos = _check_model(model)
    _apply(model, infos, {i.path: True for i in infos}, train_bn=train_bn)
    return param_counts(model)


def unfreeze_from(model: keras.Model, layer: str | int, *, train_bn: bool = False) -> ParamCounts:
    """Freeze every layer before ``layer`` (a path, name or index) and unfreeze it and all after.

    Order is depth-first (:func:`tlwidgets.layers.iter_layers`), so a head built
    after the base stays trainable. Naming a nested model unfreezes all of it.
    """
    infos = _check_model(model)
    start = find_layer(model, layer)
    _apply(model, infos, {i.path: i.index >= start.index for i in infos}, train_bn=train_bn)
    return param_counts(model)


def unfreeze_top(model: keras.Model, k: int, *, base: keras.Model | str | None = None,
                 train_bn: bool = False) -> ParamCounts:
    """Unfreeze the top ``k`` blocks of the base (and everything after it); freeze the rest.

    ``base`` defaults to :func:`find_base`. Blocks without weights are not counted.
    ``k=0`` trains only what comes after the base (the head).
    """
    infos = _check_model(model)
    base_model = find_base(model) if base is None else _base_info(model, base).layer
    prefix = "" if base_model is model else _base_info(model, base_model).path + "/"
    weighted = [b for b in blocks(model, base_model if prefix else None) if b.params]
    if not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k must be a whole number of blocks >= 0, not {k!r}.")
    if k > len(weighted):
        raise ValueError(
            f"Asked for the top {k} blocks, but {base_model.name!r} has only {len(weighted)} "
            f"blocks with weights ({weighted[0].name} ... {weighted[-1].name}). "
            f"Use k <= {len(weighted)}, or unfreeze_all()."
        )
    index = {i.path: i.index for i in infos}
    if k:
        first = index[weighted[-k].paths[0]]
    else:
        after = [i.index for i in infos if prefix and not i.path.startswith(prefix)
                 and i.index > index[weighted[-1].paths[-1]]]
        first = min(after) if after else len(infos)
    _apply(model, infos, {i.path: i.index >= first for i in infos}, train_bn=train_bn)
    return param_counts(model)


def set_blocks_trainable(model: keras.Model, keys: Iterable[str], trainable: bool, *,
                         train_bn: bool = False) -> ParamCounts:
    """Freeze or unfreeze whole blocks, named by :attr:`Block.key` (or ``Block.name`` if unique)."""
    infos = _check_model(model)
    all_blocks = blocks(model)
    by_key = {b.key: b for b in all_blocks}
    chosen = []
    for key in keys:
        if key in by_key:
            chosen.append(by_key[key])
            continue
        named = [b for b in all_blocks if b.name == key]
        if len(named) != 1:
            import difflib

            close = difflib.get_close_matches(key, list(by_key), n=5, cutoff=0.5)
            hint = f" Close matches: {', '.join(close)}." if close else ""
            raise KeyError(f"No single block {key!r} in {model.name!r}.{hint}")
        chosen.append(named[0])
    want = {p: trainable for b in chosen for p in b.paths}
    _apply(model, infos, want, train_bn=train_bn)
    return param_counts(model)


def set_layers_trainable(model: keras.Model, want: dict[str, bool], *,
                         train_bn: bool = False) -> ParamCounts:
    """Set leaf layers by path (others keep their state); enclosing models follow their layers."""
    infos = _check_model(model)
    known = {i.path for i in _leaves(infos)}
    unknown = [p for p in want if p not in known]
    if unknown:
        find_layer(model, unknown[0])  # raises with close matches when the path does not exist
        raise ValueError(f"{unknown[0]!r} is a nested model; name its layers instead.")
    _apply(model, infos, want, train_bn=train_bn)
    return param_counts(model)


def param_counts(model: keras.Model) -> ParamCounts:
    """Trainable vs non-trainable parameters, as ``fit`` would see them."""
    trainable = _size(model.trainable_weights)
    return ParamCounts(trainable, _size(model.weights) - trainable)


# --- the compile guard ------------------------------------------------------------------------

def _trainable_ids(model: keras.Model) -> frozenset[int]:
    return frozenset(id(v) for v in model.trainable_variables)


def _is_stale(model: keras.Model) -> bool:
    """Whether ``fit`` would ignore the current ``trainable`` flags (model compiled earlier)."""
    if not getattr(model, "compiled", False):
        return False
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and optimizer.built:
        known = frozenset(id(v) for v in optimizer._trainable_variables)
        return known != _trainable_ids(model)
    compiled = getattr(model, "_compiled_trainable_state", None)
    if model.train_function is not None and compiled is not None:
        return any(compiled.get(layer) != layer.trainable for layer in model._flatten_layers())
    return False


def _mark_changed(model: keras.Model) -> None:
    if getattr(model, "compiled", False) and not hasattr(model, "_tlw_guard"):
        guard_trainable(model)


def _fresh_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    clone = getattr(optimizer, "_tlw_clone", None)
    if clone is not None:
        return clone()
    return type(optimizer).from_config(optimizer.get_config())


def recompile(model: keras.Model) -> None:
    """Compile again with the same settings and a fresh optimizer (its state is reset)."""
    config = dict(model._compile_config.config)
    config["optimizer"] = _fresh_optimizer(model.optimizer)
    with model.distribute_strategy.scope():
        model.compile(**config)


def guard_trainable(model: keras.Model,
                    on_change: Literal["recompile", "error"] = "recompile") -> keras.Model:
    """Check, each time ``model.fit`` is called, that ``trainable`` changes will be honoured.

    If layers were frozen or unfrozen after the model was compiled and trained,
    ``on_change="recompile"`` compiles again with a fresh optimizer (same
    settings) and warns; ``"error"`` raises instead. The freezing functions of
    this module install the guard on compiled models themselves.
    """
    if on_change not in ("recompile", "error"):
        raise ValueError(f"on_change must be 'recompile' or 'error', not {on_change!r}.")
    fit = type(model).fit

    @functools.wraps(fit)
    def guarded_fit(*args, **kwargs):
        if _is_stale(model):
            if model._tlw_guard == "error":
                raise RuntimeError(_STALE_MESSAGE.format(name=model.name))
            warnings.warn(
                f"Layers of {model.name!r} were frozen or unfrozen after compile(): "
                "recompiled with a fresh optimizer so that fit() trains what is trainable now.",
                stacklevel=2,
            )
            recompile(model)
        return fit(model, *args, **kwargs)

    model._tlw_guard = on_change
    model.fit = guarded_fit
    return model


_STALE_MESSAGE = (
    "Layers of {name!r} were frozen or unfrozen after compile() and fit(): Keras would "
    "silently keep training the old set of weights. Call model.compile(...) again first."
)


class TrainableGuard(keras.callbacks.Callback):
    """A callback that refuses to train when ``trainable`` changed since the last compile+fit."""

    def on_train_begin(self, logs=None):
        if _is_stale(self.model):
            raise RuntimeError(_STALE_MESSAGE.format(name=self.model.name))
