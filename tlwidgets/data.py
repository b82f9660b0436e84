"""The course's image data sets as numpy arrays, loaded through the asset layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tlwidgets import assets
from tlwidgets import images as _images
from tlwidgets.images import load_image
from tlwidgets.notices import notice

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageFiles",
    "ImageSet",
    "cats_vs_dogs_files",
    "list_image_folder",
    "load_hymenoptera",
    "load_image",
    "load_image_folder",
    "load_pneumoniamnist",
]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class ImageFiles:
    """Image files (not loaded) with integer labels and their class names: for a
    Featuriser that streams them, or a widget that shows thumbnails."""

    paths: list[Path]
    labels: np.ndarray
    class_names: list[str]
    notice: str | None = None

    def __len__(self) -> int:
        return len(self.paths)


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
        notice(f"Skipped {len(skipped)} non-image or unreadable files under {root}: "
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
    x = data.images
    if image_size is not None and image_size != x.shape[1]:
        x = _images.resize_batch(x, image_size)
    if rgb:
        x = _images.to_rgb(x, notices=[])  # asked for: no notice
    data.images = x
    return data


def cats_vs_dogs_files(split: str = "train", *, per_class: int | None = None,
                       seed: int = 0) -> ImageFiles:
    """Cats vs dogs photos, as files: ``"train"`` (1,000 per class) or ``"test"``.

    The official asset is the TensorFlow tutorial's ``cats_and_dogs_filtered``
    (whose ``validation`` split serves as ``"test"``); its declared stand-in,
    the course fixture, has 1,000 test images per class.
    """
    from tlwidgets.learning_curves import per_class_indices

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
    resolved = assets.resolve("cats-and-dogs-filtered")
    root = resolved.path / split
    if not root.is_dir():
        root = resolved.path / "validation"
    items, classes, _ = list_image_folder(root)
    labels = np.array([label for _, label in items], dtype=np.int64)
    keep = per_class_indices(labels, per_class, seed=seed)
    return ImageFiles([items[i][0] for i in keep], labels[keep], classes, resolved.notice)
