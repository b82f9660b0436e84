"""Receptive fields: how many input pixels each layer's units can see.

:func:`receptive_fields` computes them from the graph (kernel sizes, strides,
padding and dilation composed along every path; a layer after a global pooling
sees everything); :func:`measure_receptive_fields` measures the same from the
gradients of one unit with respect to the input, the reference the first is
tested against. :class:`tlwidgets.activations.Activations` shows each map's field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from tlwidgets.layers import LayerInfo, find_layer, graph_of, iter_layers, replay

__all__ = [
    "ReceptiveField",
    "ReceptiveFields",
    "is_spatial",
    "measure_receptive_fields",
    "receptive_fields",
    "spatial_layers",
]


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
    paths = [i.path for i in infos if is_spatial(_output_shape(i.layer))]
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


def is_spatial(shape) -> bool:
    return shape is not None and len(shape) == 4


def spatial_layers(model: keras.Model) -> list[LayerInfo]:
    """Layers whose output is a feature map (batch, height, width, channels)."""
    out = []
    for info in iter_layers(model):
        try:
            shape = info.layer.output.shape
        except (AttributeError, ValueError):
            continue
        if is_spatial(shape) and not info.is_model:
            out.append(info)
    return out
