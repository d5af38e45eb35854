"""Reading one image into a :class:`~tam_engine.core.media.MediaItem` through Pillow (EXIF
orientation applied, transparency composited on white, converted to 8-bit RGB)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tam_engine.core.errors import MediaError
from tam_engine.core.media import MediaItem
from tam_engine.media.files import IMAGE_HINT, check_file, sniff_image


def load_image(path: str | os.PathLike) -> MediaItem:
    """Read one image as a ``(1, H, W, 3)`` uint8 RGB :class:`MediaItem`.

    EXIF orientation is applied (a phone photo shows upright); transparency is composited on
    white; animated or multi-page files give their first frame.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    head = check_file(path)
    fmt = sniff_image(head) or path.suffix.lstrip(".").upper() or "image"
    try:
        with Image.open(path) as img:
            img.load()
            rgb = _to_rgb(ImageOps.exif_transpose(img))
    except MediaError as exc:  # a range that cannot be shown truthfully: name the file
        raise MediaError(f"{path.name}: {exc.message}", exc.hint) from exc
    except UnidentifiedImageError as exc:
        raise MediaError(f"{path.name}: not a readable image (unknown or corrupt format).",
                         IMAGE_HINT) from exc
    except Image.DecompressionBombError as exc:
        raise MediaError(f"{path.name}: the image is too large to open safely ({exc}).",
                         "Downscale it (for example to 4096 pixels on the long side).") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncation and decoder failures as OSError ("image file is truncated").
        raise MediaError(f"{path.name}: the {fmt} data is truncated or corrupt ({exc}).",
                         "The file is damaged; get a fresh copy or re-save it.") from exc
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise MediaError(f"{path.name}: the image has no pixels.", IMAGE_HINT)
    return MediaItem(kind="image", path=str(path), frames=rgb[None])


def _to_rgb(img) -> np.ndarray:
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    elif img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit integer or float greyscale (common in TIFF): scaled by the range of its
        # mode, instead of clipping to white (Pillow's convert) or to black (floats in 0..1).
        arr = _grey_to_8bit(np.asarray(img, dtype=np.float64), img.mode)
        return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2))
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _grey_to_8bit(arr: np.ndarray, mode: str) -> np.ndarray:
    """Greyscale of a wide mode as 8 bits by the range its values are in; refused (MediaError)
    when that range cannot be known (NaN, negative values, floats beyond 0..255)."""
    finite = np.isfinite(arr)
    lo = float(arr[finite].min()) if finite.any() else 0.0
    hi = float(arr[finite].max()) if finite.any() else 0.0
    if not finite.all() or lo < 0 or (mode == "F" and hi > 255):
        raise MediaError(f"this {mode!r}-mode greyscale image holds values from {lo:g} to "
                         f"{hi:g}{'' if finite.all() else ' and NaN or infinities'}: its "
                         "brightness range is unknown, so it cannot be shown truthfully.",
                         "Convert it to an 8- or 16-bit image with the range you want.")
    if mode == "F" and hi <= 1.0:
        scale = 255.0            # floats in 0..1
    elif hi <= 255:
        scale = 1.0              # 8-bit values in a wider mode
    elif hi <= 65535:
        scale = 255.0 / 65535.0  # 16-bit
    else:
        scale = 255.0 / (2.0**31 - 1)  # 32-bit signed
    return np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
