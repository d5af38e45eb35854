"""A frame with a token's map over it, plus the colour bar and caption helpers.

Everything is plain numpy/OpenCV on uint8 RGB arrays, so the same code serves the GUI, the
PNG/MP4 exporters and the golden-image tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tam_engine.core.placement import box_pixels, resize_map
from tam_engine.core.spans import Box
from tam_engine.core.tokens import display_token, token_label
from tam_engine.render.colormaps import (
    DEFAULT_COLORMAP,
    DEFAULT_OPACITY,
    apply_colormap,
    colormap_lut,
)
from tam_engine.render.fonts import font_stack

WHITE = (255, 255, 255)
#: What a media-less heat map shows where no grid saw the picture.
UNSEEN = (128, 128, 128)


def coloured(values: np.ndarray, size: tuple[int, int], cmap: str = DEFAULT_COLORMAP,
             vmax: float = 1.0) -> np.ndarray:
    """A map coloured at ``size = (W, H)``, its colours spanning 0 .. ``vmax`` (of 0 .. 1).

    ``values`` is a uint8 map (0 .. 255) or a float one (0 .. 1). At the full scale a uint8
    map is resized and coloured as it is (the method's figures). Stretched (``vmax < 1``) or
    float, it is resized in float and quantised to the 256 colours only after the stretch,
    so a weak map shows smooth colours, not 8-bit contour bands.
    """
    if values.dtype == np.uint8 and vmax >= 1.0:
        return apply_colormap(resize_map(values, size), cmap)
    import cv2

    m = np.asarray(values, dtype=np.float32)
    if values.dtype == np.uint8:
        m = m / 255.0
    if m.shape[1] != size[0] or m.shape[0] != size[1]:
        m = np.asarray(cv2.resize(np.ascontiguousarray(m), size,
                                  interpolation=cv2.INTER_LINEAR), dtype=np.float32)
    v = np.clip(m / max(float(vmax), 1e-6), 0.0, 1.0)
    return apply_colormap((v * 255.0 + 0.5).astype(np.uint8), cmap)


def overlay(frame: np.ndarray, map_u8: np.ndarray, cmap: str = DEFAULT_COLORMAP,
            opacity: float = DEFAULT_OPACITY, coverage: np.ndarray | None = None,
            vmax: float = 1.0) -> np.ndarray:
    """Blend the colour-mapped ``map_u8`` (resized bilinear to the frame) over ``frame``.

    ``out = (1 - opacity) * frame + opacity * colour(map)``, as in the paper's figures. The map
    is resized before colouring so that interpolation happens on values, not on colours.
    ``coverage`` (``(H, W)`` bool, frame-sized, as :class:`~tam_engine.core.placement.PlacedMap`
    gives it) keeps the plain frame where no grid saw the picture: a map is never drawn over
    what its tokens did not see. ``vmax``: the map value of the top colour
    (:func:`coloured`; a float map in [0, 1] is taken too).
    """
    import cv2

    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be (H, W, 3) RGB, got {frame.shape}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError("opacity must be within [0, 1]")
    h, w = frame.shape[:2]
    heat = coloured(map_u8, (w, h), cmap, vmax)
    out = cv2.addWeighted(frame, 1.0 - opacity, heat, opacity, 0.0)
    if coverage is not None and not coverage.all():
        out[~coverage] = frame[~coverage]
    return out


def heatmap(map_u8: np.ndarray, size: tuple[int, int], cmap: str = DEFAULT_COLORMAP,
            coverage: np.ndarray | None = None, vmax: float = 1.0) -> np.ndarray:
    """The colour-mapped map alone, resized to ``size = (W, H)`` (for media-less views);
    pixels outside ``coverage`` (``(H, W)`` bool) are :data:`UNSEEN` grey."""
    out = coloured(map_u8, size, cmap, vmax)
    if coverage is not None and not coverage.all():
        out[~coverage] = UNSEEN
    return out


def draw_boxes(image: np.ndarray, boxes: Sequence[Box], color: tuple[int, int, int] = WHITE,
               thickness: int = 1) -> np.ndarray:
    """``image`` with the outline of each box (fractions of the image, as grids' boxes are)
    drawn on it, clipped to the image: the "tile borders" of a tiled item."""
    import cv2

    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    h, w = out.shape[:2]
    for box in boxes:
        x0, y0, x1, y1 = box_pixels(box, (w, h))
        x0, y0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
        x1, y1 = min(max(x1 - 1, 0), w - 1), min(max(y1 - 1, 0), h - 1)
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thickness, lineType=cv2.LINE_8)
    return out


def colorbar(height: int, cmap: str = DEFAULT_COLORMAP, width: int | None = None,
             labels: bool = True, vmax: float = 1.0) -> np.ndarray:
    """A vertical colour bar image, high values on top, on white; its labels run 0 .. ``vmax``
    (the map value of the top colour)."""
    from PIL import Image, ImageDraw

    height = max(int(height), 16)
    fs = font_stack(max(9, min(18, height // 14)))
    bar_w = max(8, height // 28)
    ticks = ((_tick(vmax), 0.0), (_tick(vmax / 2), 0.5), ("0", 1.0))
    label_w = max(fs.width(t) for t, _ in ticks) + 6 if labels else 0
    width = width or (bar_w + label_w + 10)
    pad = max(fs.line_height // 2 + 1, 4) if labels else 4
    out = np.full((height, width, 3), 255, np.uint8)
    bar_h = height - 2 * pad
    ramp = np.linspace(255, 0, bar_h).round().astype(np.uint8)
    out[pad:pad + bar_h, 4:4 + bar_w] = colormap_lut(cmap)[ramp][:, None, :]
    if labels:
        img = Image.fromarray(out)
        draw = ImageDraw.Draw(img)
        x = 4 + bar_w + 4
        for text, frac in ticks:
            y = pad + frac * (bar_h - 1) - fs.line_height / 2
            fs.draw(draw, (x, y), text, fill=(40, 40, 40))
        out = np.asarray(img)
    return out


def _tick(value: float) -> str:
    """A colour-bar label: ``1``, ``0.5``, ``0.32``."""
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def add_colorbar(image: np.ndarray, cmap: str = DEFAULT_COLORMAP, labels: bool = True,
                 vmax: float = 1.0) -> np.ndarray:
    """``image`` with a colour bar appended on its right."""
    bar = colorbar(image.shape[0], cmap, labels=labels, vmax=vmax)
    return np.concatenate([image, bar], axis=1)


def caption_strip(text: str, width: int, height: int | None = None, font_size: int | None = None,
                  fg=(0, 0, 0), bg=WHITE) -> np.ndarray:
    """A ``(height, width, 3)`` strip with ``text`` centred (shortened with an ellipsis if it
    does not fit)."""
    from PIL import Image, ImageDraw

    size = font_size or max(12, min(40, width // 28))
    fs = font_stack(size)
    height = height or int(fs.line_height * 1.5)
    img = Image.new("RGB", (int(width), int(height)), bg)
    draw = ImageDraw.Draw(img)
    text = fs.fit(text, int(width) - 8)
    x = (width - fs.width(text)) / 2
    y = (height - fs.line_height) / 2
    fs.draw(draw, (x, y), text, fill=fg)
    return np.asarray(img)


def add_caption(image: np.ndarray, text: str, position: str = "top",
                font_size: int | None = None) -> np.ndarray:
    """``image`` with a caption strip above (``"top"``) or below (``"bottom"``) it."""
    strip = caption_strip(text, image.shape[1], font_size=font_size)
    parts = [strip, image] if position == "top" else [image, strip]
    return np.concatenate(parts, axis=0)


def token_caption(text: str, k: int, n: int, prefix: str = "") -> str:
    """How a token is named in captions: ``'cat'  (token 3 / 12)``."""
    return f"{prefix}\u201c{display_token(text)}\u201d  ({token_label(k, n)})"


def even_size(image: np.ndarray) -> np.ndarray:
    """Pad by one edge pixel where needed so both sides are even (H.264 4:2:0 needs it)."""
    h, w = image.shape[:2]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return image
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
