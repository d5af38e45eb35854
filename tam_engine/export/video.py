"""MP4 exports: a sweep of the answer's tokens over an image, and a video with its maps."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from tam_engine.core.explanation import Explanation
from tam_engine.core.placement import DEFAULT_LAYER, Layer
from tam_engine.core.token_maps import TokenKind
from tam_engine.export.common import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    FOLLOW_SECONDS_PER_TOKEN,
    SWEEP_FPS,
    VIDEO_FPS,
    ExportError,
    Progress,
    ShouldStop,
    check_token,
    media_item,
    tick,
    video_width,
)
from tam_engine.render.colormaps import DEFAULT_COLORMAP, DEFAULT_OPACITY
from tam_engine.render.figure import frame_caption, map_over, paper_figure, resize_frame
from tam_engine.render.fonts import font_stack
from tam_engine.render.mp4 import H264Writer
from tam_engine.render.overlay import add_colorbar, caption_strip, token_caption
from tam_engine.render.scale import DEFAULT_SCALE, MapScale, scale_top
from tam_engine.render.textmap import text_map_height


def _video_frame(img: np.ndarray, text: str | None, cmap: str, vmax: float) -> np.ndarray:
    """One MP4 frame: the overlay with its colour bar (labelled 0 .. ``vmax``) on the right and
    the whole caption in a strip above (the font shrinks rather than cut the text; the strip's
    height depends only on the width, so every frame of a video has one size)."""
    out = add_colorbar(img, cmap, vmax=vmax)
    if text is None:
        return out
    w = out.shape[1]
    size = max(12, min(40, w // 28))
    height = int(font_stack(size).line_height * 1.5)
    while size > 9 and font_stack(size).width(text) > w - 12:
        size -= 1
    return np.concatenate([caption_strip(text, w, height, font_size=size), out], axis=0)


def sweep_frames(expl: Explanation, kind: TokenKind = "answer", media_index: int = 0,
                 frame: int = 0, cmap: str = DEFAULT_COLORMAP, opacity: float = DEFAULT_OPACITY,
                 width: int | None = None, caption: bool = True,
                 layout: Literal["overlay", "figure"] = "overlay",
                 layer: Layer = DEFAULT_LAYER, tile_borders: bool = False,
                 scale: MapScale = DEFAULT_SCALE) -> Iterator[np.ndarray]:
    """One frame per token over one media frame: the overlay (at least :data:`MIN_VIDEO_WIDTH`
    wide, or the media's width) with its colour bar and caption (``layout="overlay"``), or
    the paper figure with its text map (``"figure"``; every frame
    padded to the tallest text map so the video keeps one size). ``layer`` and
    ``tile_borders``: see :func:`tam_engine.render.figure.map_over`."""
    m = media_item(expl, media_index)
    tm = expl.tokens(kind)
    if layout == "figure":
        fig_w = width or 640
        first = paper_figure(expl, 0, media_index, frame, cmap, opacity, kind, width=fig_w,
                             layer=layer, tile_borders=tile_borders, scale=scale)
        text_w = first.shape[1]
        tallest = max(text_map_height(expl, k, kind, width=text_w) for k in range(len(tm)))
        for k in range(len(tm)):
            yield paper_figure(expl, k, media_index, frame, cmap, opacity, kind, width=fig_w,
                               caption=caption, text_min_height=tallest, layer=layer,
                               tile_borders=tile_borders, scale=scale)
        return
    if layout != "overlay":
        raise ValueError(f"layout must be 'overlay' or 'figure', not {layout!r}")
    base = m.frames[min(frame, m.n_frames - 1)]
    out_w = video_width(base.shape[1], width)
    if out_w != base.shape[1]:
        base = resize_frame(base, out_w)
    for k in range(len(tm)):
        img = map_over(base, expl, k, media_index, frame, kind, cmap, opacity, layer=layer,
                       tile_borders=tile_borders, scale=scale)
        vmax = scale_top(expl, [k], scale, media_index, kind=kind) / 255.0
        yield _video_frame(img, token_caption(tm.texts[k], k, len(tm)) if caption else None,
                           cmap, vmax)


def export_sweep_mp4(expl: Explanation, path: str | os.PathLike, kind: TokenKind = "answer",
                     media_index: int = 0, frame: int = 0, cmap: str = DEFAULT_COLORMAP,
                     opacity: float = DEFAULT_OPACITY, fps: float = SWEEP_FPS, frames_per_token: int = 1,
                     width: int | None = None, caption: bool = True,
                     layout: Literal["overlay", "figure"] = "overlay", crf: int = DEFAULT_CRF,
                     preset: str = DEFAULT_PRESET, progress: Progress | None = None,
                     should_stop: ShouldStop | None = None, layer: Layer = DEFAULT_LAYER,
                     tile_borders: bool = False, scale: MapScale = DEFAULT_SCALE) -> Path:
    """An MP4 that steps through the tokens over one image (or one video frame)."""
    n = len(expl.tokens(kind))
    if n == 0:
        raise ExportError("This explanation has no tokens to sweep.", "")
    frames = sweep_frames(expl, kind, media_index, frame, cmap, opacity, width, caption, layout,
                          layer, tile_borders, scale)
    with H264Writer(path, fps, crf=crf, preset=preset) as writer:
        for k, img in enumerate(frames):
            tick(k, n, progress, should_stop)
            for _ in range(max(1, frames_per_token)):
                writer.write(img)
        tick(n, n, progress, should_stop)
    return Path(path)


def follow_schedule(n_frames: int, n_tokens: int) -> np.ndarray:
    """Token shown on each of ``n_frames`` output frames when following the answer: token k
    during its equal share ``[k, k+1) * n_frames / n_tokens`` of the clip."""
    return np.minimum((np.arange(n_frames) * n_tokens) // max(n_frames, 1), n_tokens - 1)


def export_video_mp4(expl: Explanation, path: str | os.PathLike, token: int | None = None,
                     kind: TokenKind = "answer", media_index: int = 0,
                     cmap: str = DEFAULT_COLORMAP, opacity: float = DEFAULT_OPACITY, fps: float = VIDEO_FPS,
                     width: int | None = None, caption: bool = True, crf: int = DEFAULT_CRF,
                     preset: str = DEFAULT_PRESET, source: str | os.PathLike | None = None,
                     progress: Progress | None = None, should_stop: ShouldStop | None = None,
                     layer: Layer = DEFAULT_LAYER, tile_borders: bool = False,
                     scale: MapScale = DEFAULT_SCALE) -> Path:
    """Play a video with a token's map on each frame, its colour bar and caption
    (:func:`_video_frame`), at least :data:`MIN_VIDEO_WIDTH` wide unless ``width`` says.

    ``token=None`` follows the answer: token k is shown during its share of the clip, and the
    clip is slowed down where needed so that each token stays at least
    :data:`FOLLOW_SECONDS_PER_TOKEN` on screen. Otherwise the explanation's sampled frames play
    at real speed, each held for ``fps / media.fps`` output frames. With ``source`` (the original video file) every source
    frame is played at the source's rate, each showing the map of the sampled frame on screen
    at that time.
    """
    m = media_item(expl, media_index)
    if m.kind != "video":
        raise ExportError(f"Media {media_index + 1} is an image, not a video.",
                          "Use the sweep export to step through the tokens over an image.")
    tm = expl.tokens(kind)
    n_tok = len(tm)
    if token is not None:
        check_token(expl, token, kind)
    if source is not None:
        return _video_from_source(expl, Path(path), Path(source), token, kind, media_index,
                                  cmap, opacity, width, caption, crf, preset, progress,
                                  should_stop, layer, tile_borders, scale)
    hold = max(1, int(round(fps / m.fps))) if m.fps > 0 else 1
    n_out = m.n_frames * hold
    if token is None:
        n_out = max(n_out, int(np.ceil(n_tok * fps * FOLLOW_SECONDS_PER_TOKEN)))
    schedule = (np.full(n_out, token) if token is not None else follow_schedule(n_out, n_tok))
    out_w = video_width(m.size[0], width)
    cache: dict[tuple[int, int], np.ndarray] = {}
    with H264Writer(path, fps, crf=crf, preset=preset) as writer:
        for i in range(n_out):
            tick(i, n_out, progress, should_stop)
            f, k = min(i * m.n_frames // n_out, m.n_frames - 1), int(schedule[i])
            img = cache.get((f, k))
            if img is None:
                base = m.frames[f]
                if out_w != base.shape[1]:
                    base = resize_frame(base, out_w)
                img = map_over(base, expl, k, media_index, f, kind, cmap, opacity, layer=layer,
                               tile_borders=tile_borders, scale=scale)
                vmax = scale_top(expl, [k], scale, media_index, kind=kind) / 255.0
                img = _video_frame(img, frame_caption(expl, k, media_index, f, kind)
                                   if caption else None, cmap, vmax)
                cache.clear()
                cache[(f, k)] = img
            writer.write(img)
        tick(n_out, n_out, progress, should_stop)
    return Path(path)


def _video_from_source(expl: Explanation, path: Path, source: Path, token: int | None,
                       kind: TokenKind, media_index: int, cmap: str, opacity: float,
                       width: int | None, caption: bool, crf: int, preset: str,
                       progress: Progress | None, should_stop: ShouldStop | None,
                       layer: Layer = DEFAULT_LAYER, tile_borders: bool = False,
                       scale: MapScale = DEFAULT_SCALE) -> Path:
    from tam_engine.media.video import iter_video_frames, probe_video

    m = expl.media[media_index]
    n_tok = len(expl.tokens(kind))
    duration, rate = probe_video(source)
    n_est = max(1, int(round(duration * rate)))
    with H264Writer(path, rate, crf=crf, preset=preset) as writer:
        for i, (t, rgb) in enumerate(iter_video_frames(source)):
            tick(min(i, n_est), n_est, progress, should_stop)
            # The sampled frame on screen at time t carries the map for this moment.
            f = int(np.clip(np.searchsorted(m.timestamps, t + 1e-6, side="right") - 1,
                            0, m.n_frames - 1))
            k = token if token is not None else min(int(t / max(duration, 1e-9) * n_tok),
                                                    n_tok - 1)
            out_w = video_width(rgb.shape[1], width)
            base = rgb if out_w == rgb.shape[1] else resize_frame(rgb, out_w)
            img = map_over(base, expl, k, media_index, f, kind, cmap, opacity, layer=layer,
                           tile_borders=tile_borders, scale=scale)
            vmax = scale_top(expl, [k], scale, media_index, kind=kind) / 255.0
            img = _video_frame(img, frame_caption(expl, k, media_index, f, kind)
                               if caption else None, cmap, vmax)
            writer.write(img)
        if writer.frames_written == 0:
            raise ExportError(f"{source.name}: no frames could be decoded.",
                              "Check the source video, or export without it.")
        tick(n_est, n_est, progress, should_stop)
    return path
