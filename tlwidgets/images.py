"""The one path from any image input to RGB at a size, with its notices.

Inputs: arrays of any numeric dtype, shaped ``(h, w)``, ``(h, w, c)`` or
``(n, h, w[, c])``; PIL images; image files; the bytes of an uploaded file.
Output: RGB, channels last, values on the 0-255 scale (``uint8``, or
``float32`` for float input, which is kept as it is).

What is converted, and said once (:func:`tlwidgets.notices.notice`, or into
the caller's ``notices`` list):

* grey is repeated to 3 channels; alpha (RGBA, grey+alpha, transparent
  palettes) is dropped, with a notice;
* 16-bit images (``uint16`` arrays, ``I;16`` PNGs) are scaled to 0-255
  (divided by 257), not clipped;
* other sizes are resized (bilinear, antialiased; PIL).

What is refused with an :class:`ImageError` saying what to do: zero-size
images, NaN or infinite pixels, negative or > 16-bit integers, non-numeric
arrays, more than 4 channels. A file that does not decode (including one
over Pillow's decompression-bomb limit) raises :class:`UnreadableImageError`
(an ``OSError``) naming the file, so folder readers skip it and go on.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "ImageError",
    "UnreadableImageError",
    "decode_bytes",
    "float_range_advice",
    "load_image",
    "prepare_image",
    "resize",
    "resize_batch",
    "rgb_batch",
    "to_rgb",
    "to_uint8",
]

GREY = "Grey images were converted to RGB (the grey channel repeated 3 times) because the " \
       "network expects colour input."
ALPHA = "RGBA images: the alpha channel was dropped."
GREY_ALPHA = "Grey+alpha images: the alpha channel was dropped and grey repeated to RGB."


class ImageError(ValueError):
    """Image data that cannot be used as it is; the message says what to do."""


class UnreadableImageError(OSError):
    """An image file that does not decode (damaged, not an image, or too large)."""


def _say(notices: list[str] | None, text: str) -> None:
    if notices is None:
        from tlwidgets.notices import notice

        notice(text, stacklevel=4)
    elif text not in notices:
        notices.append(text)


# --------------------------------------------------------------------------- values


def _values(x: np.ndarray, notices: list[str] | None, where: str) -> np.ndarray:
    """Pixel values on the 0-255 scale: uint8 as is, other integers scaled, floats checked."""
    if x.dtype == object:
        raise ImageError(
            "These images have different sizes (an object array); pass them as a list of "
            "arrays and each is resized to the network's input size."
        )
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer)
                               or np.issubdtype(x.dtype, np.floating)):
        raise ImageError(f"Images must be numbers (uint8 0-255 or float); got dtype {x.dtype}{where}.")
    if x.dtype == np.uint8 or x.size == 0:
        return x
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = int(x.min()), int(x.max())
        if lo < 0:
            raise ImageError(
                f"Images of dtype {x.dtype} have negative values (down to {lo}){where}; pixels "
                "are 0-255 (uint8). If they were shifted to be signed, shift them back, e.g. "
                "(x.astype('int16') + 128).astype('uint8') for int8."
            )
        if hi <= 255:
            return x.astype(np.uint8)
        if hi <= 65535:
            _say(notices, f"16-bit images ({x.dtype}, values above 255) were scaled to 0-255 "
                          "(divided by 257). If they use a smaller range (e.g. 12-bit), scale "
                          "them to 0-255 yourself first.")
            return (x.astype(np.float32) / 257.0).astype(np.float32)
        raise ImageError(
            f"Images of dtype {x.dtype} have values up to {hi}{where}, beyond 16 bits; scale "
            "them to 0-255 (uint8) first."
        )
    x = x.astype(np.float32, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(x.size - np.count_nonzero(finite))
        first = int(np.argwhere(~finite)[0][0]) if x.ndim == 4 else None
        at = f" (the first in image {first})" if first is not None else ""
        raise ImageError(
            f"{bad} pixel values are NaN or infinite{at}{where}; the features would be NaN. "
            "Fix or drop those images (np.isfinite(images).all(axis=(1, 2, 3)) finds them)."
        )
    return x


def float_range_advice(x: np.ndarray) -> str | None:
    """What to say about float images given to a network that expects 0-255, if anything."""
    if x.dtype == np.uint8 or x.size == 0:
        return None
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo >= 0 and hi <= 1.0:
        return ("These float images look scaled to [0, 1]; the network expects [0, 255]. "
                "Multiply them by 255 first.")
    if lo >= -1.0 - 1e-3 and hi <= 1.0 + 1e-3:
        return ("These float images are in [-1, 1]: they look already preprocessed. The "
                "featuriser applies the network's own preprocessing to images in [0, 255]; "
                "pass the images from before preprocessing, or preprocess=None to use these "
                "as they are.")
    if lo < 0 or hi > 255:
        return (f"These float images range from {lo:.4g} to {hi:.4g}, outside [0, 255], which "
                "the network expects; rescale them to 0-255 (or pass preprocess= for your own "
                "scaling).")
    return None


def _round_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def to_uint8(x: np.ndarray, notices: list[str] | None = None) -> np.ndarray:
    """Pixel values as uint8: [0, 1] floats scaled by 255, [-1, 1] mapped back, the rest clipped."""
    x = _values(np.asarray(x), notices, "")
    if x.dtype == np.uint8 or x.size == 0:
        return x.astype(np.uint8, copy=False)
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0 and hi <= 1.0 and np.issubdtype(x.dtype, np.floating) and hi > 0:
        x = x * 255.0
    elif -1.0 - 1e-3 <= lo < 0 and hi <= 1.0 + 1e-3:
        _say(notices, "Float images in [-1, 1] (already preprocessed, it seems) were mapped "
                      "back to 0-255 to be shown.")
        x = (x + 1.0) * 127.5
    elif lo < 0 or hi > 255:
        _say(notices, f"Pixel values from {lo:.4g} to {hi:.4g} were clipped to 0-255.")
    return _round_uint8(x)


# --------------------------------------------------------------------------- channels, sizes


def to_rgb(images, notices: list[str] | None = None, *, where: str = "") -> np.ndarray:
    """``(n, h, w[, c])`` -> ``(n, h, w, 3)`` on the 0-255 scale (uint8, or float32)."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ImageError(
            f"Expected images shaped (n, height, width, channels) or (n, height, width); "
            f"got shape {x.shape}{where}."
        )
    if x.shape[0] and (x.shape[1] == 0 or x.shape[2] == 0):
        raise ImageError(f"Zero-size images: shape {x.shape}{where} has no pixels. Check how "
                         "they were cropped or decoded.")
    c = x.shape[-1]
    if c not in (1, 2, 3, 4):
        raise ImageError(
            f"Images have {c} channels{where}; the network takes RGB (3), and grey (1) or RGBA "
            "(4) are converted. Put the channels last: (n, height, width, channels)."
        )
    x = _values(x, notices, where)
    if c == 3:
        return x
    if c == 1:
        _say(notices, GREY)
        return np.repeat(x, 3, axis=-1)
    if c == 4:
        _say(notices, ALPHA)
        return x[..., :3]
    _say(notices, GREY_ALPHA)
    return np.repeat(x[..., :1], 3, axis=-1)


def _hw(size: int | Sequence[int]) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int | np.integer) else \
        (int(size[0]), int(size[1]))


def resize(img: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """One ``(h, w[, c])`` image to ``size`` (int or (height, width)): bilinear, antialiased,
    uint8 stays uint8, anything else comes back float32."""
    from PIL import Image

    h, w = _hw(size)
    if img.shape[:2] == (h, w):
        return img
    if img.dtype == np.uint8 and (img.ndim == 2 or (img.ndim == 3 and img.shape[-1] in (3, 4))):
        return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))
    planes = img.reshape(img.shape[0], img.shape[1], -1).astype(np.float32)
    out = np.stack([np.asarray(Image.fromarray(planes[..., k]).resize((w, h), Image.BILINEAR))
                    for k in range(planes.shape[-1])], axis=-1).reshape(h, w, *img.shape[2:])
    return _round_uint8(out) if img.dtype == np.uint8 else out.astype(np.float32)


def resize_batch(images: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Every image of ``(n, h, w[, c])`` resized to ``size``, without a notice (you asked)."""
    x = np.asarray(images)
    if x.shape[1:3] == _hw(size):
        return x
    return np.stack([resize(im, size) for im in x]) if len(x) else x


def rgb_batch(images, size: int, notices: list[str] | None = None) -> np.ndarray:
    """An array ``(n, h, w[, c])`` or a list of images of any sizes -> ``(n, size, size, 3)``."""
    if isinstance(images, list | tuple):
        imgs = [to_rgb(np.asarray(im)[None], notices)[0] for im in images]
        if not imgs:
            return np.zeros((0, size, size, 3), np.uint8)
        if len({im.shape for im in imgs}) > 1 or imgs[0].shape[:2] != (size, size):
            _say(notices, f"Images of different sizes were resized to {size}x{size}.")
        dtype = np.uint8 if all(im.dtype == np.uint8 for im in imgs) else np.float32
        return np.stack([resize(im.astype(dtype, copy=False), size) for im in imgs])
    x = to_rgb(images, notices)
    if x.shape[1:3] != (size, size) and len(x):
        _say(notices, f"Images of {x.shape[1]}x{x.shape[2]} were resized to {size}x{size} "
                      "(the network's input size).")
        x = np.stack([resize(im, size) for im in x])
    return x


# --------------------------------------------------------------------------- files, uploads


def _name(img) -> str:
    return Path(getattr(img, "filename", "") or "the image").name


def _pil_to_rgb(img, notices: list[str] | None) -> np.ndarray:
    """A decoded PIL image -> RGB uint8 array (16-bit scaled, alpha dropped with a notice)."""
    mode = img.mode
    if mode.startswith("I"):  # 16- or 32-bit integer grey (I;16 PNGs): scaled, not clipped
        grey = _round_uint8(_values(np.asarray(img), notices, f" in {_name(img)}"))
        return np.repeat(grey[..., None], 3, axis=-1)
    if mode == "F":  # 32-bit float grey (TIFF)
        return np.repeat(to_uint8(np.asarray(img), notices)[..., None], 3, axis=-1)
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        _say(notices, ALPHA)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_image(path: str | Path, size: int | Sequence[int] | None = None,
               notices: list[str] | None = None) -> np.ndarray:
    """One image file as RGB uint8 ``(h, w, 3)``, resized if ``size`` is given.

    Raises :class:`UnreadableImageError` (an ``OSError``) naming the file when
    it does not decode or is over Pillow's decompression-bomb limit.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            arr = _pil_to_rgb(img, notices)
    except Image.DecompressionBombError as exc:
        raise UnreadableImageError(
            f"{path} is too large to decode safely ({exc}); resize it, or raise "
            "PIL.Image.MAX_IMAGE_PIXELS if you trust the file."
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's decoders raise all three
        raise UnreadableImageError(f"{path} does not decode as an image ({exc}).") from exc
    return arr if size is None else resize(arr, size)


def decode_bytes(data: bytes) -> np.ndarray:
    """Decode an uploaded file (PNG, JPEG, ...) to an array as stored (any mode)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            img.load()
            return np.asarray(img)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"The upload is too large to decode safely ({exc}); upload a smaller "
                         "image.") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(
            "Could not read the upload as an image. Upload a PNG or JPEG photo "
            f"({type(exc).__name__}: {exc})."
        ) from exc


def prepare_image(image, size: int | Sequence[int]) -> tuple[np.ndarray, str | None]:
    """One image (array or PIL) -> RGB uint8 at ``size``, and a note of what was converted."""
    if hasattr(image, "mode") and hasattr(image, "convert"):  # a PIL image
        notes: list[str] = []
        arr = _pil_to_rgb(image, notes)
    else:
        arr = np.asarray(image)
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4)):
            raise ImageError(
                f"Expected one image of shape (height, width) or (height, width, 1/3/4 "
                f"channels); got shape {arr.shape}."
            )
        notes = []
        arr = to_uint8(to_rgb(arr[None], notes)[0], notes)
    hw = _hw(size)
    if arr.shape[:2] != hw:
        notes.append(f"resized from {arr.shape[1]}x{arr.shape[0]} to {hw[1]}x{hw[0]} px.")
        arr = resize(arr, hw)
    return arr, ("Image converted: " + " ".join(notes)) if notes else None
