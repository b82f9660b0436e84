"""What a channel looks for: feature visualisation by activation maximisation.

Gradient ascent on an input image to maximise one channel's mean activation,
with the two ingredients that make the result readable (Olah, Mordvintsev and
Schubert, "Feature Visualization", Distill 2017; the Lucid library):

* **a decorrelated Fourier parameterisation**: the image is a spectrum scaled
  by 1/frequency, so every frequency gets an equal say, in a colour space whose
  channels are decorrelated (a fixed 3x3 matrix, the square root of ImageNet's
  colour covariance), squashed to [0, 1] by a sigmoid;
* **transformation robustness**: every step sees the image padded, scaled,
  rotated and shifted at random, so high-frequency adversarial patterns that
  only work at one exact position do not survive.

Each image of a batch maximises its own channel, so a 16-filter grid costs 16
images per step, not 16 runs.

>>> viz = FilterVisualizer(backbone.model, "conv_pw_5_relu", size=128)   # doctest: +SKIP
>>> result = viz.run(range(16), steps=128)                               # doctest: +SKIP
>>> save_png(montage(result.images), "/tmp/grid.png")                    # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import keras
import numpy as np

from tlwidgets.layers import activation_model, find_layer

__all__ = ["FilterResult", "FilterVisualizer", "montage", "save_png"]

# Square root of the colour covariance of ImageNet photos (from Lucid), one column per
# decorrelated channel; normalised so that its largest column has unit norm.
COLOR_CORRELATION_SVD_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
_COLOR = COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0))


def _frequencies(h: int, w: int) -> np.ndarray:
    """|frequency| of each coefficient of a real 2-D FFT of an (h, w) image."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy)


@dataclass
class FilterResult:
    """Optimised images (n, size, size, 3) uint8 with their target channels."""

    layer: str
    channels: list[int]
    images: np.ndarray
    start: np.ndarray  # each channel's mean activation on its starting image
    end: np.ndarray  # ... and on its final image (untransformed)
    steps: int
    seconds: float  # all steps, including the first (which compiles the step function)
    first_step_seconds: float
    history: list[float] = field(default_factory=list)  # mean objective per step

    @property
    def gain(self) -> np.ndarray:
        """end / start per channel (inf where the start was not positive)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.start > 0, self.end / self.start, np.inf)

    @property
    def steps_per_second(self) -> float:
        """Warm speed: the first step, which traces and compiles, is left out."""
        warm = self.seconds - self.first_step_seconds
        return (self.steps - 1) / warm if self.steps > 1 and warm > 0 else float("nan")


class FilterVisualizer:
    """Activation maximisation for the channels of one layer.

    Parameters
    ----------
    model : keras.Model
        A network taking images; nested bases work (layer paths as in
        :func:`tlwidgets.layers.iter_layers`).
    layer : str or int
        The layer whose channels to visualise (spatial output).
    size : int, optional
        Side of the optimised image; defaults to the model's input size.
    value_range : (float, float)
        The model's expected input range; images live in [0, 1] and are mapped
        linearly onto it ((-1, 1) for MobileNet, (0, 255) with a Rescaling layer).
    decorrelate, fourier : bool
        Switch off either parameterisation to see what it buys.
    pad, scales, angles : transformation robustness (Lucid's defaults).
    learning_rate, seed : Adam's step size; the seed of the start and the transforms.
    pre_activation : bool
        If ``layer`` is a ReLU (or ReLU6) layer, maximise its input instead: a
        clipped activation stops growing at its cap and has no gradient below
        zero, the pre-activation has neither problem (as Lucid does).
    """

    def __init__(self, model: keras.Model, layer: str | int, *, size: int | None = None,
                 value_range: tuple[float, float] = (-1.0, 1.0), decorrelate: bool = True,
                 fourier: bool = True, pad: int = 12, scales: tuple[float, float] = (0.9, 1.1),
                 angles: float = 10.0, learning_rate: float = 0.05, seed: int = 0,
                 pre_activation: bool = True):
        import tensorflow as tf

        info = find_layer(model, layer)
        self.requested = info.path
        if pre_activation:
            info = _before_relu(model, info)
        shape = info.layer.output.shape
        if len(shape) != 4:
            raise ValueError(
                f"Layer {info.path!r} outputs shape {shape}: activation maximisation here needs "
                "a layer with (height, width, channels) output. Pick a convolutional layer."
            )
        self.layer = info.path
        self.n_channels = int(shape[-1])
        in_shape = tuple(model.inputs[0].shape[1:])
        self.size = int(size or in_shape[0])
        if in_shape[0] is not None and self.size != in_shape[0]:
            raise ValueError(
                f"This model takes {in_shape[0]} px images; build it at {self.size} px "
                f"(e.g. load_backbone(..., input_size={self.size})) or pass size={in_shape[0]}."
            )
        self.value_range = value_range
        self.decorrelate, self.fourier = decorrelate, fourier
        self.pad, self.scales, self.angles = pad, scales, angles
        self.learning_rate = learning_rate
        self.seed = seed
        self._model = activation_model(model, [self.layer], name="filter_viz")
        self._tf = tf
        self._step_fns: dict[int, object] = {}

    # ------------------------------------------------------------------ parameterisation
    def _init_params(self, n: int, rng: np.random.Generator) -> np.ndarray:
        s = self.size
        shape = (2, n, 3, s, s // 2 + 1) if self.fourier else (n, s, s, 3)
        return (rng.normal(size=shape) * 0.01).astype(np.float32)

    def _to_image(self, params):
        """Parameters -> images (n, s, s, 3) in [0, 1]."""
        tf = self._tf
        s = self.size
        if self.fourier:
            freqs = _frequencies(s, s)
            scale = (1.0 / np.maximum(freqs, 1.0 / s)) * s  # 1/f, and sqrt(pixels)
            spectrum = tf.complex(params[0], params[1]) * tf.cast(scale, tf.complex64)
            x = tf.signal.irfft2d(spectrum, fft_length=[s, s])  # (n, 3, s, s)
            x = tf.transpose(x, (0, 2, 3, 1)) / 4.0
        else:
            x = params
        if self.decorrelate:
            x = tf.einsum("nhwc,dc->nhwd", x, tf.constant(_COLOR))
        return tf.sigmoid(x)

    def _transform(self, images, seed):
        """Pad, random scale + rotation about the centre, random shift back to ``size``."""
        tf = self._tf
        n = tf.shape(images)[0]
        p, s = self.pad, self.size
        x = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=0.5)
        big = s + 2 * p
        lo, hi = self.scales
        scale = tf.random.stateless_uniform([n], seed, lo, hi)
        angle = tf.random.stateless_uniform([n], seed + 1, -self.angles, self.angles) * (math.pi / 180)
        c = (big - 1) / 2.0
        a0, a1 = tf.cos(angle) / scale, -tf.sin(angle) / scale
        b0, b1 = tf.sin(angle) / scale, tf.cos(angle) / scale
        zeros = tf.zeros_like(scale)
        transform = tf.stack([a0, a1, c - a0 * c - a1 * c, b0, b1, c - b0 * c - b1 * c,
                              zeros, zeros], axis=1)
        x = keras.ops.image.affine_transform(x, transform, fill_mode="nearest")
        offset = tf.random.stateless_uniform([2], seed + 2, 0, 2 * p + 1, dtype=tf.int32)
        return x[:, offset[0]:offset[0] + s, offset[1]:offset[1] + s, :]

    def _to_input(self, images):
        lo, hi = self.value_range
        return images * (hi - lo) + lo

    def _objective(self, images, channels):
        tf = self._tf
        act = self._model(self._to_input(images), training=False)
        means = tf.reduce_mean(act, axis=(1, 2))  # (n, C)
        return tf.gather(means, channels, axis=1, batch_dims=1)

    def _compiled_step(self, n: int):
        if n in self._step_fns:
            return self._step_fns[n]
        tf = self._tf

        @tf.function(reduce_retracing=True)
        def step(params, m, v, t, channels, seed):
            with tf.GradientTape() as tape:
                tape.watch(params)
                images = self._transform(self._to_image(params), seed)
                objective = self._objective(images, channels)
                loss = -tf.reduce_sum(objective)
            g = tape.gradient(loss, params)
            # Adam, written out so it works on plain tensors inside the compiled step.
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            mhat = m / (1 - 0.9 ** t)
            vhat = v / (1 - 0.999 ** t)
            params = params - self.learning_rate * mhat / (tf.sqrt(vhat) + 1e-8)
            return params, m, v, tf.reduce_mean(objective)

        self._step_fns[n] = step
        return step

    # ------------------------------------------------------------------ public API
    def start_response(self) -> np.ndarray:
        """Every channel's mean activation on the (near-grey) image the optimisation starts from."""
        tf = self._tf
        params = tf.constant(self._init_params(1, np.random.default_rng(self.seed)))
        act = self._model(self._to_input(self._to_image(params)), training=False)
        return tf.reduce_mean(act, axis=(0, 1, 2)).numpy()

    def run(self, channels: Iterable[int] | int, *, steps: int = 128) -> FilterResult:
        """Optimise one image per channel for ``steps`` steps; returns images and gains."""
        tf = self._tf
        channels = [channels] if isinstance(channels, int) else [int(c) for c in channels]
        if not channels:
            raise ValueError("Give at least one channel index.")
        bad = [c for c in channels if not 0 <= c < self.n_channels]
        if bad:
            raise ValueError(f"Channels {bad} do not exist: {self.layer!r} has "
                             f"{self.n_channels} channels (0..{self.n_channels - 1}).")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, not {steps}.")
        rng = np.random.default_rng(self.seed)
        params = tf.constant(self._init_params(len(channels), rng))
        m = tf.zeros_like(params)
        v = tf.zeros_like(params)
        ch = tf.constant(channels, tf.int32)
        start = self._objective(self._to_image(params), ch).numpy()
        step = self._compiled_step(len(channels))
        history = []
        t0 = time.perf_counter()
        for t in range(1, steps + 1):
            seed = tf.constant([self.seed, t], tf.int32)
            params, m, v, obj = step(params, m, v, tf.constant(float(t)), ch, seed)
            history.append(float(obj))
            if t == 1:
                first = time.perf_counter() - t0
        seconds = time.perf_counter() - t0
        final = self._to_image(params)
        end = self._objective(final, ch).numpy()
        images = (final.numpy() * 255).round().astype(np.uint8)
        return FilterResult(self.layer, channels, images, start, end, steps, seconds, first,
                            history)


def _before_relu(model: keras.Model, info):
    """The layer feeding a ReLU layer (same map before clipping), else ``info`` itself."""
    layer = info.layer
    relu = isinstance(layer, keras.layers.ReLU) or (
        isinstance(layer, keras.layers.Activation)
        and getattr(layer.activation, "__name__", "") in ("relu", "relu6"))
    if not relu or len(layer._inbound_nodes) < 1:
        return info
    tensors = layer._inbound_nodes[0].input_tensors
    if len(tensors) != 1:
        return info
    source = tensors[0]._keras_history[0]
    prefix = info.path[: len(info.path) - len(info.name)]
    try:
        return find_layer(model, prefix + source.name)
    except KeyError:
        return info


def montage(images: np.ndarray, *, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """(n, h, w, 3) uint8 -> one grid image with white gaps."""
    n, h, w, _ = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return grid


def save_png(image: np.ndarray, path) -> None:
    """Write an RGB uint8 array as PNG (folders created)."""
    from pathlib import Path

    from PIL import Image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
