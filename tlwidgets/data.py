"""The course's image data sets as numpy arrays, loaded through the asset layer."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tlwidgets import assets

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageSet",
    "list_image_folder",
    "load_hymenoptera",
    "load_image",
    "load_image_folder",
    "load_pneumoniamnist",
]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class ImageSet:
    """Images (N, H, W, 3) uint8 with integer labels and their class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    paths: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notice: str | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, per_class: int | None, *, seed: int = 0) -> ImageSet:
        """At most ``per_class`` images of each class, chosen at random with ``seed``."""
        if per_class is None:
            return self
        rng = np.random.default_rng(seed)
        keep = np.concatenate([
            rng.permutation(np.flatnonzero(self.labels == c))[:per_class]
            for c in range(len(self.class_names))
        ])
        keep.sort()
        paths = [self.paths[i] for i in keep] if self.paths else []
        return ImageSet(self.images[keep], self.labels[keep], self.class_names, paths,
                        self.skipped, self.notice)


def load_image(path: str | Path, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """One image as RGB uint8 (grey and RGBA are converted), resized if ``size`` is given."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        if size is not None:
            hw = (size, size) if isinstance(size, int) else size
            img = img.resize((hw[1], hw[0]), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def list_image_folder(root: str | Path) -> tuple[list[tuple[Path, int]], list[str], list[str]]:
    """``root/<class>/<image>`` -> ([(path, label)], class names, skipped non-image files)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; expected root/<class>/<image files>.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root} has no class sub-folders; expected root/<class>/<image files>.")
    items, skipped = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.name.startswith("."):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                items.append((path, label))
            else:
                skipped.append(str(path))
    return items, classes, skipped


def iter_image_folder(root: str | Path, size: int) -> Iterator[tuple[np.ndarray, int, str]]:
    """Stream (image, label, path) from a class folder; unreadable files are skipped with a warning."""
    items, _, _ = list_image_folder(root)
    for path, label in items:
        try:
            yield load_image(path, size), label, str(path)
        except OSError as exc:
            warnings.warn(f"Skipping unreadable image {path}: {exc}", stacklevel=2)


def load_image_folder(
    root: str | Path,
    *,
    image_size: int = 224,
    per_class: int | None = None,
    seed: int = 0,
) -> ImageSet:
    """Load a ``root/<class>/*.jpg`` folder into memory, resized to ``image_size``.

    Non-image files are skipped and listed in ``ImageSet.skipped``; so are
    files that fail to decode.
    """
    items, classes, skipped = list_image_folder(root)
    if per_class is not None:
        rng = np.random.default_rng(seed)
        chosen = []
        for c in range(len(classes)):
            of_class = [it for it in items if it[1] == c]
            chosen += [of_class[i] for i in sorted(rng.permutation(len(of_class))[:per_class])]
        items = chosen
    images, labels, paths = [], [], []
    for path, label in items:
        try:
            images.append(load_image(path, image_size))
        except OSError:
            skipped.append(str(path))
            continue
        labels.append(label)
        paths.append(str(path))
    if not images:
        raise ValueError(f"No readable images under {root}.")
    if skipped:
        warnings.warn(f"Skipped {len(skipped)} non-image or unreadable files under {root}: "
                      f"{', '.join(Path(s).name for s in skipped[:5])}", stacklevel=2)
    return ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64), classes, paths, skipped)


def load_hymenoptera(
    split: str = "train", *, image_size: int = 224, per_class: int | None = None, seed: int = 0
) -> ImageSet:
    """Ants vs bees (near domain to ImageNet). ``split`` is ``"train"`` or ``"val"``."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', not {split!r}.")
    root = assets.resolve("hymenoptera").path / split
    return load_image_folder(root, image_size=image_size, per_class=per_class, seed=seed)


def load_pneumoniamnist(
    split: str = "train",
    *,
    image_size: int | None = None,
    rgb: bool = True,
    per_class: int | None = None,
    seed: int = 0,
) -> ImageSet:
    """PneumoniaMNIST chest X-rays (far domain). ``split`` is ``"train"``, ``"val"`` or ``"test"``.

    28x28 grey images, converted to RGB and resized to ``image_size`` when given,
    so they fit an ImageNet network.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', not {split!r}.")
    resolved = assets.resolve("pneumoniamnist")
    with np.load(resolved.path) as npz:
        images = npz[f"{split}_images"]
        labels = npz[f"{split}_labels"].reshape(-1).astype(np.int64)
    data = ImageSet(images, labels, ["normal", "pneumonia"], notice=resolved.notice)
    data = data.subset(per_class, seed=seed)
    images = data.images
    if image_size is not None and image_size != images.shape[1]:
        images = _resize_batch(images, image_size)
    if rgb and images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    data.images = images
    return data


def _resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([
        np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images
    ])


def class_counts(labels: Sequence[int], class_names: Sequence[str]) -> dict[str, int]:
    counts = np.bincount(np.asarray(labels), minlength=len(class_names))
    return {name: int(n) for name, n in zip(class_names, counts, strict=True)}
