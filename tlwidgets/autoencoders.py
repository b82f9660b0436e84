"""Pretraining without labels on the target images: convolutional autoencoders.

When ImageNet features transfer badly (chest X-rays), the unlabelled target
images themselves can pretrain a network, by learning to reconstruct them:

* :func:`pretrain_layerwise` -- a convolutional autoencoder trained greedily,
  one conv/deconv pair at a time (:func:`train_next_layer`): layer ``k``
  learns to reconstruct the output of the frozen layers below it.
* :func:`pretrain_end_to_end` -- the same encoder with a mirrored decoder,
  trained in one go to reconstruct the images.
* :func:`reconstruct_pretrain` -- the combination: an ImageNet-initialised
  encoder (:func:`imagenet_encoder`) further trained to reconstruct the
  target images through a light decoder.

Every encoder here takes grey images ``(n, h, w, 1)`` scaled to [0, 1]
(:func:`grey01` makes them from uint8 or RGB arrays); the MobileNet ones resize
and replicate the grey channel inside the model. :mod:`tlwidgets.unlabelled_pretraining`
compares them on labelled subsets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

from tlwidgets.images import ImageError, to_uint8

__all__ = [
    "MIN_IMAGES",
    "encoder_features",
    "grey01",
    "imagenet_encoder",
    "layerwise_stage",
    "pretrain_end_to_end",
    "pretrain_layerwise",
    "random_encoder",
    "reconstruct_pretrain",
    "set_trainable",
    "train_next_layer",
]

#: Fewest images an autoencoder is trained on.
MIN_IMAGES = 8


# --------------------------------------------------------------------------- input


def grey01(images, *, min_images: int = 1) -> np.ndarray:
    """``(n, h, w)``, ``(n, h, w, 1)`` or grey-looking RGB images -> float32 ``(n, h, w, 1)``
    in [0, 1]; uint8 or [0, 1] / [0, 255] floats. RGB is averaged to grey."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ImageError(f"Expected grey or RGB images shaped (n, height, width[, 1 or 3]); "
                         f"got shape {x.shape}.")
    if min(x.shape[1:3]) < 4:
        raise ImageError(f"Images of {x.shape[1]}x{x.shape[2]} pixels are too small to "
                         "encode; give at least 4x4.")
    if len(x) < min_images:
        raise ValueError(f"{len(x)} images are too few: pretraining needs at least "
                         f"{min_images}. Give it all the unlabelled training images.")
    x = to_uint8(x).astype(np.float32) / 255.0
    return x.mean(axis=-1, keepdims=True) if x.shape[-1] == 3 else x


# --------------------------------------------------------------------------- autoencoders


def _deconv(channels: int, target: int, *, name: str, activation: str | None):
    """A stride-2 transposed convolution whose output is ``target`` pixels (even or odd)."""
    source = (target + 1) // 2
    return keras.layers.Conv2DTranspose(channels, 3, strides=2, padding="same",
                                        output_padding=target - (2 * source - 1),
                                        activation=activation, name=name)


def _conv(filters: int, k: int):
    return keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                               name=f"encoder_conv{k}")


def _fit(model, x, target, *, epochs, batch_size, seed, stage, progress, lr=1e-3) -> list[float]:
    from tlwidgets.training import release_traced_gradients

    release_traced_gradients()  # earlier stages' graphs may go
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    keras.utils.set_random_seed(seed)
    callbacks = []
    if progress is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: progress(
            {"stage": stage, "epoch": e + 1, "loss": float(logs["loss"])})))
    hist = model.fit(x, target, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
                     callbacks=callbacks)
    return [float(v) for v in hist.history["loss"]]


def set_trainable(model, value: bool) -> None:
    """Set ``trainable`` on ``model`` and on every layer inside it, nested models included
    (a layer shared with another model keeps its own flag otherwise)."""
    model.trainable = value
    for layer in getattr(model, "layers", []):
        layer.trainable = value
        if getattr(layer, "layers", None):
            set_trainable(layer, value)


def _check_filters(filters) -> tuple[int, ...]:
    filters = tuple(filters)
    if not filters or any(isinstance(f, bool) or not isinstance(f, int | np.integer) or f < 1
                          for f in filters):
        raise ValueError(f"filters must be positive whole numbers, one per layer; got {filters!r}.")
    return tuple(int(f) for f in filters)


def layerwise_stage(encoder: keras.Model | None, filters: int, input_shape) -> tuple:
    """The model of one greedy stage: the frozen ``encoder`` (``None``: none yet), a new
    conv layer and the deconv layer that reconstructs the encoder's output from it.

    Returns ``(stage_model, new_conv_layer)``.
    """
    k = 1 if encoder is None else len(encoder.layers) + 1
    inputs = keras.Input(input_shape)
    h = inputs
    if encoder is not None:
        encoder.trainable = False  # greedy: what is below is fixed
        h = encoder(inputs, training=False)
    conv = _conv(filters, k)
    z = conv(h)
    out = _deconv(h.shape[-1], h.shape[1], name=f"decoder_deconv{k}",
                  activation="sigmoid" if k == 1 else None)(z)
    if out.shape[2] != h.shape[2]:  # non-square: crop or pad the width
        out = keras.layers.Resizing(h.shape[1], h.shape[2])(out)
    return keras.Model(inputs, out, name=f"layerwise_stage{k}"), conv


def train_next_layer(encoder: keras.Model | None, images, filters: int, *, epochs: int = 3,
                     batch_size: int = 64, seed: int = 0,
                     progress: Callable[[dict], None] | None = None,
                     ) -> tuple[keras.Model, list[float]]:
    """One greedy step: train a new conv/deconv pair on top of the frozen ``encoder`` to
    reconstruct the encoder's output (the images themselves for the first layer).

    Returns the encoder with the new layer on top (every layer trainable again) and the
    stage's reconstruction loss per epoch.
    """
    from tlwidgets.training import call_in_chunks

    x = grey01(images, min_images=MIN_IMAGES)
    target = x if encoder is None else call_in_chunks(encoder, x, 256)
    stage, conv = layerwise_stage(encoder, filters, x.shape[1:])
    k = 1 if encoder is None else len(encoder.layers) + 1
    losses = _fit(stage, x, target, epochs=epochs, batch_size=batch_size, seed=seed + k,
                  stage=f"layer {k}", progress=progress)
    below = [] if encoder is None else list(encoder.layers)
    grown = keras.Sequential([keras.Input(x.shape[1:]), *below, conv], name="ae_layerwise")
    set_trainable(grown, True)
    return grown, losses


def pretrain_layerwise(images, *, filters: Sequence[int] = (16, 32, 64),
                       epochs_per_layer: int = 3, batch_size: int = 64, seed: int = 0,
                       progress: Callable[[dict], None] | None = None) -> keras.Model:
    """A convolutional autoencoder trained greedily, layer by layer, on unlabelled images.

    Layer ``k`` (a stride-2 3x3 convolution) and its deconvolution are trained to
    reconstruct the output of layers ``1..k-1``, which stay frozen; then layer ``k``
    is frozen and the next one added. Returns the encoder (its conv layers); input
    grey ``(n, h, w, 1)`` in [0, 1]. ``progress`` gets ``{"stage", "epoch", "loss"}``.
    """
    filters = _check_filters(filters)
    x = grey01(images, min_images=MIN_IMAGES)
    encoder = None
    for f in filters:
        encoder, _ = train_next_layer(encoder, x, f, epochs=epochs_per_layer,
                                      batch_size=batch_size, seed=seed, progress=progress)
    return encoder


def pretrain_end_to_end(images, *, filters: Sequence[int] = (16, 32, 64), epochs: int = 6,
                        batch_size: int = 64, seed: int = 0,
                        progress: Callable[[dict], None] | None = None) -> keras.Model:
    """The same autoencoder as :func:`pretrain_layerwise`, trained in one go: the encoder
    and a mirrored decoder of deconvolutions reconstruct the images. Returns the encoder."""
    filters = _check_filters(filters)
    x = grey01(images, min_images=MIN_IMAGES)
    keras.utils.set_random_seed(seed)
    encoder = random_encoder(x.shape[1:], filters=filters, seed=seed, name="ae_end_to_end")
    inputs = keras.Input(x.shape[1:])
    sizes = [x.shape[1:3]]
    h = inputs
    for layer in encoder.layers:
        h = layer(h)
        sizes.append(h.shape[1:3])
    channels = [1, *filters]
    for k in range(len(filters), 0, -1):
        h = _deconv(channels[k - 1], sizes[k - 1][0], name=f"decoder_deconv{k}",
                    activation="sigmoid" if k == 1 else "relu")(h)
        if h.shape[2] != sizes[k - 1][1]:
            h = keras.layers.Resizing(*sizes[k - 1])(h)
    _fit(keras.Model(inputs, h), x, x, epochs=epochs, batch_size=batch_size, seed=seed,
         stage="end to end", progress=progress)
    return encoder


def random_encoder(input_shape=(28, 28, 1), *, filters: Sequence[int] = (16, 32, 64),
                   seed: int = 0, name: str = "random_encoder") -> keras.Model:
    """The autoencoders' encoder with random (Glorot) weights: the no-pretraining start."""
    filters = _check_filters(filters)
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(tuple(input_shape)),
                             *[_conv(f, k) for k, f in enumerate(filters, 1)]], name=name)


# --------------------------------------------------------------------------- ImageNet encoder


def imagenet_encoder(input_shape=(28, 28, 1), *, image_size: int = 64,
                     weights: str = "imagenet", seed: int = 0,
                     statistics_from: np.ndarray | None = None) -> keras.Model:
    """MobileNet (alpha 0.25) for grey images in [0, 1]: resized to ``image_size`` and
    copied to three channels inside the model, scaled to [-1, 1].

    The ImageNet weights come from :func:`tlwidgets.backbones.load_backbone` (its 128 px
    model; convolution weights do not depend on the input size). ``weights="random"``
    gives the same network untrained; with ``statistics_from`` (unlabelled images), its
    BatchNormalization statistics are those of these images
    (:func:`tlwidgets.training.reestimate_batchnorm`): with the initial ones (mean 0,
    variance 1) a random MobileNet passes on features of about 1e-18, and a baseline that
    can only score chance says nothing.
    """
    from tlwidgets.backbones import load_backbone

    if weights not in ("imagenet", "random"):
        raise ValueError(f"weights must be 'imagenet' or 'random', not {weights!r}.")
    if image_size < 32:
        raise ValueError(f"MobileNet needs images of at least 32 px; got image_size={image_size}.")
    keras.utils.set_random_seed(seed)
    body = keras.applications.MobileNet(input_shape=(image_size, image_size, 3), alpha=0.25,
                                        include_top=False, weights=None)
    if weights == "imagenet":
        body.set_weights(load_backbone("mobilenet_0.25", input_size=128).model.get_weights())
    inputs = keras.Input(tuple(input_shape))
    x = keras.layers.Resizing(image_size, image_size, name="resize")(inputs)
    x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="preprocess")(x)
    if statistics_from is not None:
        from tlwidgets.training import call_in_chunks, reestimate_batchnorm

        prepare = keras.Model(inputs, x)  # the body's own input, so that its BN can train
        reestimate_batchnorm(body, call_in_chunks(prepare, grey01(statistics_from)))
    return keras.Model(inputs, body(x, training=False), name=f"mobilenet_{weights}")


def reconstruct_pretrain(encoder: keras.Model, images, *, epochs: int = 3,
                         decoder_epochs: int = 1, batch_size: int = 64, lr: float = 3e-4,
                         seed: int = 0, progress: Callable[[dict], None] | None = None,
                         ) -> keras.Model:
    """Train a (pretrained) ``encoder`` further to reconstruct ``images``, through a light
    decoder (a 1x1 convolution, a dense layer and two deconvolutions).

    The decoder first learns ``decoder_epochs`` on the frozen encoder (so that its random
    start does not wreck the pretrained weights), then both train ``epochs`` at ``lr``.
    BatchNormalization stays in inference mode. Returns ``encoder``, trained in place.
    """
    x = grey01(images, min_images=MIN_IMAGES)
    if tuple(encoder.input_shape[1:]) != x.shape[1:]:
        raise ValueError(f"The encoder takes {encoder.input_shape[1:]}, the images are "
                         f"{x.shape[1:]}; build it for these images.")
    keras.utils.set_random_seed(seed)
    h, w = x.shape[1:3]
    h4, w4 = -(-h // 4), -(-w // 4)
    inputs = keras.Input(x.shape[1:])
    z = encoder(inputs, training=False)
    z = keras.layers.Conv2D(16, 1, activation="relu", name="decoder_squeeze")(z)
    z = keras.layers.Flatten()(z)
    z = keras.layers.Dense(h4 * w4 * 16, activation="relu", name="decoder_dense")(z)
    z = keras.layers.Reshape((h4, w4, 16))(z)
    z = keras.layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu",
                                     name="decoder_deconv2")(z)
    z = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid",
                                     name="decoder_deconv1")(z)
    if z.shape[1:3] != (h, w):
        z = keras.layers.Resizing(h, w)(z)
    model = keras.Model(inputs, z, name="reconstruct")
    if decoder_epochs:
        encoder.trainable = False
        _fit(model, x, x, epochs=decoder_epochs, batch_size=batch_size, seed=seed,
             stage="decoder", progress=progress)
    set_trainable(encoder, True)
    _fit(model, x, x, epochs=epochs, batch_size=batch_size, seed=seed + 1,
         stage="encoder and decoder", progress=progress, lr=lr)
    return encoder


def encoder_features(encoder: keras.Model, images, *, batch_size: int = 64) -> np.ndarray:
    """The encoder's output for ``images``, flattened: one row per image (float32).

    Flattened rather than pooled: X-rays are aligned, so where a feature fires matters.
    Plain calls in batches (:func:`tlwidgets.training.call_in_chunks`): no prediction
    graph per encoder.
    """
    from tlwidgets.training import call_in_chunks

    x = grey01(images)
    out = call_in_chunks(encoder, x, batch_size)
    return out.reshape(len(x), -1).astype(np.float32)
