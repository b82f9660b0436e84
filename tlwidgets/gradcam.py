"""Where a classifier looks: Grad-CAM and saliency maps, nested pretrained bases included.

Grad-CAM (Selvaraju et al., ICCV 2017) weights each channel of a convolutional
layer by the mean gradient of the class score with respect to it, sums, and
keeps the positive part: a coarse map of the regions that raise the score.
Saliency (Simonyan et al., 2014) is the gradient of the score with respect to
the input pixels; SmoothGrad averages it over noisy copies.

Most Keras tools fail when the layer sits inside a base nested in the
classifier ("Graph disconnected", keras-team/keras#16123). Here the layer is
named by its path (``"mobilenet_0.25_224/conv_pw_13_relu"``) and reached with
:func:`tlwidgets.layers.activation_model`, which replays the classifier's graph
from its own input (residual bases, raw preprocessing ops and nested
``Sequential`` s included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from tlwidgets.layers import activation_model, find_layer

__all__ = ["CamResult", "GradCAM", "overlay", "saliency"]


def _batch(images) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"Expected an image (H, W, C) or a batch (N, H, W, C); got shape {x.shape}.")
    return x


def _check_one_output(model: keras.Model) -> None:
    if len(model.outputs) != 1:
        raise ValueError(f"Model {model.name!r} has {len(model.outputs)} outputs; Grad-CAM needs "
                         "one class-score output. Build a model that returns the head you mean.")


def _class_scores(preds, class_index):
    import tensorflow as tf

    return tf.gather(preds, class_index, axis=1, batch_dims=1)


@dataclass
class CamResult:
    """Heatmaps in [0, 1] at input resolution, with the class each one explains."""

    heatmaps: np.ndarray  # (n, H, W)
    coarse: np.ndarray  # (n, h, w) at the layer's resolution
    class_index: np.ndarray  # (n,)
    scores: np.ndarray  # (n, classes) model outputs


class GradCAM:
    """Grad-CAM for one layer of a classifier.

    Parameters
    ----------
    model : keras.Model
        The classifier, with one output of class scores (logits preferred).
    layer : str or int
        A convolutional layer, by path, unique name or index; layers inside a
        nested base are fine.
    preprocess : callable, optional
        Applied (in numpy) to the images before the model, if the model does
        not preprocess them itself.
    """

    def __init__(self, model: keras.Model, layer: str | int, *,
                 preprocess: Callable[[np.ndarray], np.ndarray] | None = None):
        import tensorflow as tf

        info = find_layer(model, layer)
        shape = info.layer.output.shape
        if len(shape) != 4:
            raise ValueError(f"Layer {info.path!r} outputs shape {shape}; Grad-CAM needs a "
                             "convolutional layer with (height, width, channels) output.")
        self.layer = info.path
        self.preprocess = preprocess
        self.input_shape = tuple(model.inputs[0].shape[1:])
        _check_one_output(model)
        self._model = activation_model(model, [self.layer], include_outputs=True, name="gradcam")

        @tf.function(reduce_retracing=True)
        def cam(x, class_index):
            with tf.GradientTape() as tape:
                maps, preds = self._model(x, training=False)
                if class_index is None:
                    class_index = tf.argmax(preds, axis=1, output_type=tf.int32)
                score = _class_scores(preds, class_index)
            grads = tape.gradient(score, maps)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            return tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1)), preds, class_index

        self._cam = cam

    def __call__(self, images, class_index: int | np.ndarray | None = None) -> CamResult:
        """Heatmaps for one image (H, W, C) or a batch; ``class_index`` defaults to the top class."""
        import tensorflow as tf

        x = _batch(images).astype(np.float32)
        if self.preprocess is not None:
            x = self.preprocess(x).astype(np.float32)
        idx = None
        if class_index is not None:
            idx = tf.constant(np.broadcast_to(np.asarray(class_index, np.int32), (len(x),)))
        coarse, preds, idx = self._cam(tf.constant(x), idx)
        coarse = coarse.numpy()
        peak = coarse.max(axis=(1, 2), keepdims=True)
        coarse = np.where(peak > 0, coarse / np.where(peak > 0, peak, 1), 0.0).astype(np.float32)
        full = tf.image.resize(coarse[..., None], x.shape[1:3], method="bilinear").numpy()[..., 0]
        return CamResult(full, coarse, np.asarray(idx), preds.numpy())


def saliency(model: keras.Model, images, class_index: int | np.ndarray | None = None, *,
             preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
             samples: int = 0, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """``|d score / d pixel|`` (max over colour channels), in [0, 1] per image.

    ``samples > 0`` gives SmoothGrad: the mean over that many copies with
    Gaussian noise of ``noise`` times the input's value range.
    """
    import tensorflow as tf

    x = _batch(images).astype(np.float32)
    if preprocess is not None:
        x = preprocess(x).astype(np.float32)
    preds = model(x, training=False)
    if class_index is None:
        idx = tf.argmax(preds, axis=1, output_type=tf.int32)
    else:
        idx = tf.constant(np.broadcast_to(np.asarray(class_index, np.int32), (len(x),)))
    rng = np.random.default_rng(seed)
    sigma = noise * float(x.max() - x.min() or 1.0)
    total = np.zeros(x.shape[:3], np.float32)
    for _ in range(max(samples, 1)):
        xi = x if samples == 0 else x + rng.normal(0, sigma, x.shape).astype(np.float32)
        xt = tf.constant(xi)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            score = _class_scores(model(xt, training=False), idx)
        total += tf.reduce_max(tf.abs(tape.gradient(score, xt)), axis=-1).numpy()
    peak = total.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, total / np.where(peak > 0, peak, 1), 0.0)


def overlay(image: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.45,
            cmap: str = "jet") -> np.ndarray:
    """A heatmap in [0, 1] blended over an RGB uint8 image of the same size."""
    import matplotlib

    colours = (matplotlib.colormaps[cmap](np.clip(heatmap, 0, 1))[..., :3] * 255)
    blend = (1 - alpha) * np.asarray(image, np.float32) + alpha * colours
    return blend.clip(0, 255).astype(np.uint8)
