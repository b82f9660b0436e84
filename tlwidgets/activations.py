"""Activation maps of a convolutional network, one compiled forward pass for every layer.

An :class:`Activations` object builds one multi-output model for the layers
you choose and calls it through a compiled ``tf.function``, so a single pass
over an image serves a whole sweep across depth; switching layer afterwards is
a lookup. Maps come back ranked by mean activation and downsampled, small
enough to send to a browser.

>>> acts = Activations.from_backbone(load_backbone("auto"))     # doctest: +SKIP
>>> m = acts.maps(image, "conv_pw_1_relu", top=16, size=48)      # doctest: +SKIP
>>> m.channels, m.maps.shape, m.receptive_field                   # doctest: +SKIP

:func:`receptive_fields` computes, from the graph, how many input pixels each
layer's units can see; :func:`measure_receptive_fields` measures the same from
gradients (the reference it is tested against).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from tlwidgets import images
from tlwidgets.layers import (
    LayerInfo,
    activation_model,
    candidate_layers,
    find_layer,
    graph_of,
    iter_layers,
    nearest_layers,
    replay,
)

__all__ = [
    "Activations",
    "ChannelMaps",
    "ReceptiveField",
    "ReceptiveFields",
    "default_layers",
    "downsample",
    "grid_image",
    "measure_receptive_fields",
    "prepare_image",
    "read_image_bytes",
    "receptive_fields",
    "spatial_layers",
]


# --------------------------------------------------------------------------- receptive fields


@dataclass(frozen=True)
class ReceptiveField:
    """How much of the input one unit of a feature map sees.

    ``size``: input pixels one unit sees per side (the larger of height and width);
    ``jump``: input pixels between neighbouring units; ``global_context``: units
    also see a global summary of the whole image (a squeeze-excite gate), on top
    of their local field. ``spans`` holds, per axis (height, width), ``(start,
    jump, size)``: unit ``i`` sees input pixels ``start + i*jump`` to
    ``start + i*jump + size - 1`` (``start`` < 0 where padding comes first).
    """

    size: int
    jump: int
    global_context: bool = False
    spans: tuple[tuple[int, int, int], ...] = field(default=(), compare=False, repr=False)

    def box(self, unit: tuple[int, int], image: tuple[int, int]) -> tuple[tuple[int, int], ...]:
        """The input pixels ``((top, bottom), (left, right))`` unit ``unit`` (row, column)
        sees, clipped to an ``image`` of (height, width) pixels."""
        return tuple((max(start + i * jump, 0), min(start + i * jump + size - 1, n - 1))
                     for (start, jump, size), i, n in zip(self.spans, unit, image, strict=True))


class ReceptiveFields(dict):
    """``{layer path: ReceptiveField or None}``; :meth:`why` says why one is ``None``."""

    def __init__(self, *args, reasons: dict[str, str] | None = None):
        super().__init__(*args)
        self.reasons = dict(reasons or {})

    def why(self, path: str) -> str | None:
        """Why the layer has no receptive field (``None`` when it has one)."""
        if path not in self:
            raise KeyError(f"No layer {path!r}; layers: {', '.join(list(self)[:5])}, ...")
        return self.reasons.get(path)


@dataclass(frozen=True)
class _Global:
    """A tensor that depends on the image only through a global summary."""

    reason: str


@dataclass(frozen=True)
class _Field:
    spans: tuple[tuple[int, int, int], tuple[int, int, int]]  # (start, jump, size) per axis
    context: bool = False

    def public(self) -> ReceptiveField:
        return ReceptiveField(max(s[2] for s in self.spans), max(s[1] for s in self.spans),
                              self.context, self.spans)


_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
         keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_POOL = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
_GLOBAL_POOL = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)
# Layers that compute each position from the same position of their inputs.
_POINTWISE = (
    keras.layers.BatchNormalization, keras.layers.Activation, keras.layers.ReLU,
    keras.layers.ELU, keras.layers.LeakyReLU, keras.layers.PReLU, keras.layers.Softmax,
    keras.layers.Dropout, keras.layers.SpatialDropout2D, keras.layers.GaussianNoise,
    keras.layers.GaussianDropout, keras.layers.Rescaling, keras.layers.Normalization,
    keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
    keras.layers.Maximum, keras.layers.Minimum, keras.layers.Identity, keras.layers.Dense,
)
# Raw operations (``keras.ops`` calls, ``x + y``, ``x / 127.5``) that act elementwise.
_POINTWISE_OPS = {
    "Add", "Subtract", "Multiply", "Divide", "TrueDivide", "FloorDivide", "Power", "Negative",
    "Absolute", "Abs", "Square", "Sqrt", "Rsqrt", "Reciprocal", "Exp", "Log", "Log1p",
    "Expm1", "Maximum", "Minimum", "Clip", "Where", "Sign", "Floor", "Ceil", "Round", "Erf",
    "Tanh", "Sigmoid", "Relu", "Relu6", "HardSigmoid", "HardSilu", "HardSwish", "Silu",
    "Swish", "Gelu", "Elu", "Selu", "LeakyRelu", "Softplus", "Softsign", "Mish", "Cast",
    "Identity", "StopGradient", "Equal", "NotEqual", "Greater", "GreaterEqual", "Less",
    "LessEqual", "LogicalAnd", "LogicalOr", "LogicalNot", "Logaddexp",
}
_REDUCE_OPS = {"Mean", "Max", "Amax", "Sum", "Min", "Amin", "Prod", "Std", "Var"}


def _pair(value) -> tuple[int, int]:
    if isinstance(value, tuple | list):
        return (int(value[0]), int(value[-1])) if len(value) else (1, 1)
    return int(value), int(value)


def _hw(tensor) -> tuple | None:
    """(height, width) of a map: (batch, h, w, channels), or (batch, h, w) as one channel
    of an image sliced out by raw preprocessing ops (``x[..., 0]``)."""
    shape = tuple(tensor.shape)
    return shape[1:3] if len(shape) in (3, 4) else None


def _is_pointwise(op) -> bool:
    if isinstance(op, keras.layers.LayerNormalization):
        axes = [op.axis] if isinstance(op.axis, int) else list(op.axis)
        return all(a in (-1, 3) for a in axes)
    if isinstance(op, keras.layers.Concatenate):
        return op.axis in (-1, 3)
    if isinstance(op, _POINTWISE):
        return True
    return (not isinstance(op, keras.Layer) and type(op).__name__ in _POINTWISE_OPS
            and type(op).__module__.startswith("keras.src.ops"))


def _is_global_op(op) -> bool:
    """A global pooling: a layer, or a reduction over the spatial axes (``ops.mean(x, (1, 2))``)."""
    if isinstance(op, _GLOBAL_POOL):
        return True
    if isinstance(op, keras.Layer) or type(op).__name__ not in _REDUCE_OPS:
        return False
    axis = getattr(op, "axis", None)
    axes = [axis] if isinstance(axis, int) else list(axis or [1, 2])
    return any(a in (1, 2, -3, -2) for a in axes)


def _same_left_pad(n: int, out: int, kernel: int, stride: int) -> int:
    return max((out - 1) * stride + kernel - n, 0) // 2


def _known_op_field(op, n_in: tuple, n_out: tuple):
    """Per axis (start, jump, size) of the op alone, for the layers it is known for."""
    if isinstance(op, _CONV) and not isinstance(op, keras.layers.Conv2DTranspose):
        kernel, stride = _pair(op.kernel_size), _pair(op.strides)
        dilation, padding = _pair(op.dilation_rate), op.padding
    elif isinstance(op, _POOL):
        kernel, stride, dilation, padding = _pair(op.pool_size), _pair(op.strides), (1, 1), op.padding
    elif isinstance(op, keras.layers.ZeroPadding2D):
        (top, _), (left, _) = op.padding
        return ((-top, 1, 1), (-left, 1, 1))
    elif isinstance(op, keras.layers.Cropping2D):
        (top, _), (left, _) = op.cropping
        return ((top, 1, 1), (left, 1, 1))
    else:
        return None
    spans = []
    for axis in range(2):
        k = dilation[axis] * (kernel[axis] - 1) + 1
        left = _same_left_pad(n_in[axis], n_out[axis], k, stride[axis]) if padding == "same" else 0
        spans.append((-left, stride[axis], k))
    return tuple(spans)


def _support(grad: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Rows and columns (first, last) where a (rows, h, w[, c]) gradient is non-zero."""
    mask = np.any(grad != 0, axis=(0, *range(3, grad.ndim)))
    if not mask.any():
        return None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


def _probe_size(n: int, mode: str) -> int:
    """The side to measure an op at: ``"small"`` keeps ``n % 8`` (so "same" padding, which
    depends on the size modulo the stride, pads alike), ``"large"`` leaves room for big
    kernels."""
    if mode == "small":
        return n if n <= 24 else 16 + n % 8
    return n * 4 + 4 if mode == "large" else n


def _measure_op(op, node, field_index: list[int], mode: str = "small"):
    """Each field input's (start, jump, size) per axis, measured from the gradient of
    two output units of the op alone (on small random maps first, for speed); a
    :class:`_Global` when every output unit sees the whole input; ``None`` when the op
    cannot be run on its own."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    tensors = []
    resized = False
    for t in node.input_tensors:
        shape = [4, *[d or 8 for d in t.shape[1:]]]
        if len(shape) in (3, 4) and tuple(shape[1:3]) != (1, 1):
            new = [_probe_size(shape[1], mode), _probe_size(shape[2], mode)]
            resized = resized or new != shape[1:3]
            shape[1:3] = new
        value = rng.normal(size=shape).astype(keras.backend.standardize_dtype(t.dtype)
                                              if "float" in str(t.dtype) else np.float32)
        tensors.append(tf.constant(value))
    try:
        with tf.GradientTape(persistent=True) as tape:
            for x in tensors:
                tape.watch(x)
            args, kwargs = node.arguments.fill_in({id(t): v for t, v in zip(
                node.input_tensors, tensors, strict=True)})
            if "training" in getattr(op, "_call_context_args", ()):
                kwargs["training"] = False
            out = keras.tree.flatten(op(*args, **kwargs))[0]
            if len(out.shape) not in (3, 4):
                return _Global(f"{op.name} outputs no spatial map (shape {tuple(out.shape)})")
            h, w = int(out.shape[1]), int(out.shape[2])
            ci, cj = (h - 1) // 2, (w - 1) // 2
            ni, nj = min(ci + 1, h - 1), min(cj + 1, w - 1)
            channels = int(out.shape[-1]) if len(out.shape) == 4 else 1
            weights = tf.constant(rng.normal(size=channels), out.dtype)
            if len(out.shape) == 3:
                out = out[..., None]
            centre = tf.reduce_sum(out[:2, ci, cj, :] * weights)
            neighbour = tf.reduce_sum(out[2:, ni, nj, :] * weights)
            loss = centre + neighbour
        grads = [tape.gradient(loss, tensors[i]) for i in field_index]
    except Exception:  # noqa: BLE001 - an op that does not run alone, or not at another size
        return _measure_op(op, node, field_index, "real") if resized and mode == "small" else None
    result = []
    for i, grad in zip(field_index, grads, strict=True):
        n = tensors[i].shape[1:3]
        if grad is None:
            result.append(None)
            continue
        grad = grad.numpy()
        a, b = _support(grad[:2]), _support(grad[2:])
        if a is None or b is None:
            result.append(None)
            continue
        spans = []
        for axis, (u, v, nn) in enumerate(((ci, ni, n[0]), (cj, nj, n[1]))):
            (lo, hi), (lo2, _) = a[axis], b[axis]
            if (lo == 0 or hi == nn - 1) and nn > 1:
                spans = "clipped"
                break
            jump = (lo2 - lo) // (v - u) if v > u else max(1, round(int(nn) / max(1, (h, w)[axis])))
            spans.append((lo - u * jump, jump, hi - lo + 1))
        if spans == "clipped":
            if mode != "large":
                return _measure_op(op, node, field_index, "large")
            return _Global(f"every unit of {op.name} sees its whole input")
        result.append(tuple(spans))
    return result


_MEASURED: dict = {}


def _measure_cached(op, node, field_index: list[int]):
    """:func:`_measure_op`, once per kind of op, configuration and input shapes (the 18
    ``LayerScale`` layers of ConvNeXt come in 4 shapes)."""
    try:
        config = {k: v for k, v in op.get_config().items() if k != "name"}
        key = (type(op), repr(sorted(config.items())), tuple(field_index),
               tuple(tuple(t.shape) for t in node.input_tensors))
    except Exception:  # noqa: BLE001 - no usable config: measure this one
        return _measure_op(op, node, field_index)
    if key not in _MEASURED:
        if len(_MEASURED) > 4096:
            _MEASURED.clear()
        _MEASURED[key] = _measure_op(op, node, field_index)
    return _MEASURED[key]


def _compose(outer: _Field, inner: tuple) -> _Field:
    spans = []
    for (start, jump, size), (s_op, j_op, r_op) in zip(outer.spans, inner, strict=True):
        spans.append((start + s_op * jump, jump * j_op, (r_op - 1) * jump + size))
    return _Field(tuple(spans), outer.context)


def _union(fields: list[_Field], context: bool) -> _Field | _Global:
    spans = []
    for axis in range(2):
        axes = [f.spans[axis] for f in fields]
        jumps = {a[1] for a in axes}
        if len(jumps) > 1:
            return _Global(f"merges maps with different strides {sorted(jumps)}")
        start = min(a[0] for a in axes)
        end = max(a[0] + a[2] for a in axes)
        spans.append((start, jumps.pop(), end - start))
    return _Field(tuple(spans), context or any(f.context for f in fields))


def _op_state(op, node, states: list, label: str):
    """The field of an operation's output, from its inputs' fields."""
    inputs = [(i, t, s) for i, (t, s) in enumerate(zip(node.input_tensors, states, strict=True))
              if s is not None]
    if not inputs:
        return None  # does not depend on the image
    out_hw = _hw(node.outputs[0])
    fields = [(i, t, s) for i, t, s in inputs if isinstance(s, _Field)]
    context = len(fields) < len(inputs)
    if not fields:
        return inputs[0][2]
    if _is_global_op(op):
        return _Global(f"after the global pooling {label}: every unit sees the whole image")
    if out_hw is None:
        return _Global(f"{label} has no spatial map (output shape {tuple(node.outputs[0].shape)}): "
                       "each value depends on the whole image")
    if _is_pointwise(op):
        if out_hw != (1, 1):  # a 1x1 map broadcast over a larger one: global context
            local = [(i, t, s) for i, t, s in fields if _hw(t) != (1, 1)]
            context = context or len(local) < len(fields)
            fields = local
        ops = [((0, 1, 1), (0, 1, 1))] * len(fields)
    else:
        known = _known_op_field(op, _hw(fields[0][1]), out_hw) if len(fields) == 1 else None
        if known is not None:
            ops = [known]
        else:
            ops = _measure_cached(op, node, [i for i, _, _ in fields])
            if ops is None:
                return _Global(f"{label} could not be run on its own to measure its field")
            if isinstance(ops, _Global):
                return ops
            fields = [f for f, o in zip(fields, ops, strict=True) if o is not None]
            ops = [o for o in ops if o is not None]
            if not fields:
                return _Global(f"{label}: no gradient reaches its input")
    return _union([_compose(s, o) for (_, _, s), o in zip(fields, ops, strict=True)], context)


def _walk(model: keras.Model, states: list, prefix: str, found: dict) -> list:
    graph = graph_of(model)
    values = {id(ref): s for ref, s in zip(graph.inputs, states, strict=True)}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            if any(id(t) not in values for t in node.input_tensors):
                continue
            op = node.operation
            path = prefix + op.name if isinstance(op, keras.Layer) else None
            ins = [values[id(t)] for t in node.input_tensors]
            if isinstance(op, keras.Model) and graph_of(op) is not None:
                args = keras.tree.flatten(node.arguments.args[0]) if node.arguments.args else []
                outs = _walk(op, [values[id(t)] for t in args], path + "/", found)
            else:
                label = repr(path) if path else f"operation {op.name!r}"
                outs = [_op_state(op, node, ins, label)] * len(node.outputs)
            for ref, s in zip(node.outputs, outs, strict=True):
                values[id(ref)] = s
            if path is not None and path not in found:
                found[path] = outs[0]
    return [values.get(id(t)) for t in graph.outputs]


def receptive_fields(model: keras.Model) -> ReceptiveFields:
    """Receptive field of every layer (by path), in pixels of ``model``'s input.

    Computed from the graph: kernel sizes, strides, dilations and padding for the
    layers whose arithmetic is known, and measured (from the gradient of two
    units) for any other operation: custom layers, raw ops, subclassed models.
    Merges take the union of their inputs' fields. A squeeze-excite gate (a
    global summary broadcast back over the map) sets ``global_context``.
    ``None`` where a layer has no local field (after global pooling, flatten, or
    not computed from the image); ``.why(path)`` says which. The size can exceed
    the image: units then see the whole image plus padding.
    """
    if not model.inputs or graph_of(model) is None:
        raise ValueError(f"Model {model.name!r} has no functional graph; build it with "
                         "keras.Input (or as a Sequential with an input shape) first.")
    start = _Field(((0, 1, 1), (0, 1, 1)))
    states: dict = {}
    _walk(model, [start if _hw(t) is not None else None for t in model.inputs], "", states)
    fields = ReceptiveFields()
    for info in iter_layers(model):
        state = states.get(info.path)
        if isinstance(state, _Field):
            fields[info.path] = state.public()
            continue
        fields[info.path] = None
        if isinstance(state, _Global):
            fields.reasons[info.path] = state.reason
        elif info.path not in states and graph_of(info.parent) is None:
            fields.reasons[info.path] = (
                f"it is inside the subclassed model {info.parent.name!r}, whose call() is "
                "Python code, not a graph; that model's own field is measured as a whole")
        else:
            fields.reasons[info.path] = "it is not computed from the input image"
    return fields


def measure_receptive_fields(model: keras.Model, layers: Sequence[str | int] | None = None, *,
                             draws: int = 1, seed: int = 0, chunk: int = 16
                             ) -> dict[str, dict | None]:
    """The input pixels that a centre unit of each layer depends on, from its gradient.

    For every layer (default: every layer with a spatial map) the gradient of the
    centre unit (channels randomly weighted) is taken with respect to the input,
    on ``draws`` random images, and its non-zero support recorded:
    ``{path: {"unit": (row, col), "box": ((top, bottom), (left, right))}}``
    (``None`` where no gradient reaches the input). Global summaries (global
    pooling feeding a squeeze-excite gate) are excluded with ``stop_gradient``,
    matching :func:`receptive_fields`'s local field. The exact, architecture-free
    reference that :func:`receptive_fields` is tested against; slower (one
    backward pass per ``chunk`` layers).
    """
    import tensorflow as tf

    infos = (spatial_layers(model) if layers is None
             else [find_layer(model, key) for key in layers])
    paths = [i.path for i in infos if _spatial(_output_shape(i.layer))]
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype) for t in model.inputs]

    def stop_global(op, path, node, args, kwargs):
        if _is_global_op(op):
            return keras.ops.stop_gradient(op(*args, **kwargs))
        return NotImplemented

    wanted = set(paths)
    _, found = replay(model, inputs, wanted=wanted.__contains__,
                      descend=lambda path, op: graph_of(op) is not None, visit=stop_global)
    result: dict[str, dict | None] = {p: None for p in paths}
    paths = [p for p in paths if p in found]
    rng = np.random.default_rng(seed)
    shape = tuple(d or 32 for d in model.inputs[0].shape[1:])
    images = rng.normal(size=(draws, *shape)).astype(np.float32)
    for lo in range(0, len(paths), chunk):
        part = paths[lo:lo + chunk]
        probe = keras.Model(inputs, [found[p] for p in part])
        x = tf.constant(np.repeat(images[None], len(part), axis=0).reshape(-1, *shape))
        with tf.GradientTape() as tape:  # rows k*draws ... (k+1)*draws - 1: layer k
            tape.watch(x)
            outs = probe(x, training=False)
            outs = outs if isinstance(outs, list | tuple) else [outs]
            loss = 0.0
            units = []
            for k, out in enumerate(outs):
                ci, cj = (int(out.shape[1]) - 1) // 2, (int(out.shape[2]) - 1) // 2
                units.append((ci, cj))
                # Random channel weights: a plain channel sum can cancel (after LayerNorm).
                weights = tf.constant(rng.normal(size=int(out.shape[-1])), tf.float32)
                unit = tf.cast(out[k * draws:(k + 1) * draws, ci, cj, :], tf.float32)
                loss += tf.reduce_sum(unit * weights)
        grad = tape.gradient(loss, x).numpy()
        for k, path in enumerate(part):
            box = _support(grad[k * draws:(k + 1) * draws])
            result[path] = None if box is None else {"unit": units[k], "box": box}
    return result


def _output_shape(layer):
    try:
        return layer.output.shape
    except (AttributeError, ValueError):
        return None


def _spatial(shape) -> bool:
    return shape is not None and len(shape) == 4


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
    non-linear ``activation`` included, squeeze-excite gates left out), the same list
    the Featuriser offers."""
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
        self.receptive_fields = ReceptiveFields(
            {p: fields.get(p) for p in self.layers},
            reasons={p: fields.reasons[p] for p in self.layers if p in fields.reasons})
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
