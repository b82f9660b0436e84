"""Pretrained image networks by name, with their preprocessing and input sizes.

Weights come through the asset layer, never from a hidden Keras download:

>>> bb = load_backbone("auto", input_size=128)   # doctest: +SKIP
>>> bb.name, bb.model.output_shape               # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tlwidgets import assets
from tlwidgets.notices import notice as say

__all__ = ["BACKBONES", "Backbone", "BackboneSpec", "load_backbone"]


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    title: str
    asset_ids: dict[int, str]  # input size -> weights asset
    input_sizes: tuple[int, ...]
    default_size: int


BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v2": BackboneSpec(
        name="mobilenet_v2",
        title="MobileNetV2 (alpha 1.0), ImageNet",
        asset_ids={s: f"mobilenet-v2-1.0-{s}-no-top" for s in (128, 160, 224)},
        input_sizes=(96, 128, 160, 192, 224),
        default_size=224,
    ),
    "mobilenet_0.25": BackboneSpec(
        name="mobilenet_0.25",
        title="MobileNet (alpha 0.25), ImageNet",
        asset_ids={224: "mobilenet-0.25-224-no-top"},
        # One weights file for every size (a convolutional base without its top); the
        # small sizes suit small images (28 px X-rays) on a CPU.
        input_sizes=(32, 48, 64, 96, 128, 160, 192, 224),
        default_size=224,
    ),
}


@dataclass
class Backbone:
    """A convolutional base without its classifier, ready to featurise or fine-tune."""

    name: str
    title: str
    model: object  # keras.Model
    input_size: int
    weights: Literal["imagenet", "random"]
    weights_path: str | None = None
    notice: str | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_size, self.input_size, 3)

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """uint8/float RGB in [0, 255] -> the network's input range [-1, 1]."""
        return preprocess_input(images)

    def preprocessing_layer(self):
        """The same preprocessing as a Keras layer, to put inside a model."""
        import keras

        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")

    def describe(self) -> str:
        src = self.weights_path or "random initialisation"
        text = f"{self.title} at {self.input_size} px, weights: {self.weights} ({src})"
        return text + (f"\n{self.notice}" if self.notice else "")


def preprocess_input(images: np.ndarray) -> np.ndarray:
    """MobileNet-family preprocessing: scale [0, 255] to [-1, 1] (float32)."""
    return np.asarray(images, dtype=np.float32) / 127.5 - 1.0


Preprocess = Callable[[np.ndarray], np.ndarray]


def _nearest(sizes, size: int) -> int:
    return min(sizes, key=lambda s: (abs(s - size), -s))


def _loaded(resolved: assets.Resolved) -> assets.Resolved:
    """What was actually loaded: the stand-in itself when one is used."""
    if not resolved.is_standin:
        return resolved
    return assets.locate(resolved.asset.standin) or resolved


def load_backbone(
    name: str = "auto",
    *,
    input_size: int | None = None,
    weights: Literal["imagenet", "random"] | None = "imagenet",
    seed: int = 0,
) -> Backbone:
    """Load a pretrained base by name: ``"mobilenet_v2"``, ``"mobilenet_0.25"`` or ``"auto"``.

    ``"auto"`` picks MobileNetV2 (the workshop network) when its weights can be
    had and falls back to MobileNet alpha 0.25 otherwise, saying so. A stand-in
    chosen by the asset layer is reported in ``Backbone.notice``.
    ``weights="random"`` (or ``None``) builds the same architecture untrained,
    for comparisons; it seeds Keras' random generators with ``seed`` for that.
    """
    import keras

    if name not in BACKBONES and name != "auto":
        raise ValueError(f"Unknown backbone {name!r}; choose one of: auto, {', '.join(BACKBONES)}.")
    if weights not in ("imagenet", "random", None):
        raise ValueError(f"weights must be 'imagenet' or 'random', not {weights!r}.")
    weights = weights or "random"
    spec = BACKBONES["mobilenet_v2" if name == "auto" else name]
    size = input_size or spec.default_size
    if size not in spec.input_sizes:
        raise ValueError(
            f"{spec.title} takes input sizes {spec.input_sizes}; got {size}. "
            f"Resize your images or pick one of those."
        )
    notice = None
    path = None
    resolved = None
    if weights == "imagenet" or name == "auto":
        # "auto" with random weights builds the network that "auto" with ImageNet
        # weights would give, so that the two can be compared.
        asset_id = spec.asset_ids[_nearest(spec.asset_ids, size)]
        resolved = assets.resolve(asset_id, standin=True, notify=False)
        path = str(resolved.path) if weights == "imagenet" else None
        if resolved.is_standin:
            notice = resolved.notice
            spec = BACKBONES["mobilenet_0.25"]  # it takes every size MobileNetV2 takes
    if weights == "random":
        keras.utils.set_random_seed(seed)  # reproducible random weights
    shape = (size, size, 3)
    kwargs = {"input_shape": shape, "include_top": False, "weights": path}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about non-default input sizes
        try:
            if spec.name == "mobilenet_v2":
                model = keras.applications.MobileNetV2(alpha=1.0, **kwargs)
            else:
                model = keras.applications.MobileNet(alpha=0.25, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            if path is None:
                raise
            # A file that passed its checks but does not load: never leave it in the cache.
            raise assets.reject(_loaded(resolved), f"{type(exc).__name__}: {exc}") from exc
    if notice:
        say(notice, key=f"backbone:{notice}", stacklevel=2)
    return Backbone(spec.name, spec.title, model, size, weights, path, notice)
