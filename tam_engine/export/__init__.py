"""Exports of an explanation: PNG, PNG sequences, contact sheets, MP4, HTML, JSON and NPZ.

Everything is drawn by the Qt-free renderer, so exports are deterministic and match the app.
Every file is written atomically (a temporary file in the same folder, then ``os.replace``).
Long exports take ``progress(i, n)`` and ``should_stop()`` callbacks; when ``should_stop()``
returns true they raise :class:`~tam_engine.core.errors.Cancelled` and leave no file behind.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from tam_engine.core.errors import Cancelled, TamError
from tam_engine.core.explanation import Explanation, TokenKind, atomic_write_bytes
from tam_engine.render.colormaps import DEFAULT_COLORMAP
from tam_engine.render.figure import frame_caption, paper_figure, resize_frame, token_overlay
from tam_engine.render.mp4 import H264Writer
from tam_engine.render.overlay import (
    add_caption,
    caption_strip,
    colorbar,
    overlay,
    token_caption,
)
from tam_engine.render.png import png_bytes
from tam_engine.render.textmap import render_text_map, text_map_height

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]
Layout = Literal["figure", "overlay", "textmap"]


class ExportError(TamError):
    """An export cannot be made as asked (no media, bad token, unwritable folder)."""


# ------------------------------------------------------------------------------ helpers
def _tick(i: int, n: int, progress: Progress | None, should_stop: ShouldStop | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("Export cancelled.", "Nothing was written; start the export again.")
    if progress is not None:
        progress(i, n)


def _check_token(expl: Explanation, k: int, kind: TokenKind) -> None:
    n = len(expl.tokens(kind))
    if not 0 <= k < n:
        raise ExportError(f"There is no {kind} token {k + 1} (this explanation has {n}).",
                          f"Choose a token between 1 and {n}.")


def _media(expl: Explanation, media_index: int):
    if not expl.media or not 0 <= media_index < len(expl.media):
        raise ExportError(f"This explanation has no stored frames for media {media_index + 1}.",
                          "Re-run the explanation with the media, or export text maps only.")
    _check_grid(expl, media_index)
    return expl.media[media_index]


def _check_grid(expl: Explanation, media_index: int) -> None:
    try:
        expl.grid_for_media(media_index)
    except KeyError:
        n = len({g.media_index for g in expl.grids})
        raise ExportError(f"Media {media_index + 1} has no activation maps.",
                          f"This explanation has maps for {n} media item(s); choose one of "
                          "those.") from None


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB array as a PNG, atomically."""
    path = Path(path)
    atomic_write_bytes(path, png_bytes(image))
    return path


def render_token(expl: Explanation, k: int, layout: Layout = "figure", kind: TokenKind = "answer",
                 media_index: int = 0, frame: int = 0, cmap: str = DEFAULT_COLORMAP,
                 opacity: float = 0.5, width: int = 640) -> np.ndarray:
    """One token as an image: the paper figure, the captioned overlay, or the text map."""
    _check_token(expl, k, kind)
    if layout == "textmap" or not expl.grids:
        return render_text_map(expl, k, kind, width=width, cmap=cmap)
    _check_grid(expl, media_index)
    if layout == "overlay":
        img = token_overlay(expl, k, media_index, frame, kind, cmap, opacity, width=width)
        return add_caption(img, frame_caption(expl, k, media_index, frame, kind))
    if layout == "figure":
        return paper_figure(expl, k, media_index, frame, cmap, opacity, kind, width=width)
    raise ValueError(f"layout must be 'figure', 'overlay' or 'textmap', not {layout!r}")


# ------------------------------------------------------------------------------ PNG
def export_token_png(expl: Explanation, path: str | os.PathLike, k: int,
                     layout: Layout = "figure", **render) -> Path:
    """The token ``k`` as one PNG (``layout``: figure, overlay or textmap)."""
    return write_png(path, render_token(expl, k, layout, **render))


def export_png_sequence(expl: Explanation, folder: str | os.PathLike, layout: Layout = "figure",
                        kind: TokenKind = "answer", progress: Progress | None = None,
                        should_stop: ShouldStop | None = None, **render) -> list[Path]:
    """Every token as ``token_0001.png``, ... in ``folder``.

    The images are written into a hidden temporary folder beside ``folder`` and moved in when
    all are done, so a cancelled export leaves no file.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    n = len(expl.tokens(kind))
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    tmp.chmod(0o755)
    try:
        names = []
        for k in range(n):
            _tick(k, n, progress, should_stop)
            name = f"token_{k + 1:04d}.png"
            (tmp / name).write_bytes(png_bytes(render_token(expl, k, layout, kind, **render)))
            names.append(name)
        _tick(n, n, progress, should_stop)
        if not folder.exists():
            os.replace(tmp, folder)
        else:
            for name in names:
                os.replace(tmp / name, folder / name)
        return [folder / name for name in names]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_contact_sheet(expl: Explanation, path: str | os.PathLike, kind: TokenKind = "answer",
                         media_index: int = 0, frame: int = 0, cmap: str = DEFAULT_COLORMAP,
                         opacity: float = 0.5, thumb_width: int = 200, columns: int | None = None,
                         progress: Progress | None = None, should_stop: ShouldStop | None = None
                         ) -> Path:
    """All tokens' overlays in one grid image, each captioned with its token."""
    tm = expl.tokens(kind)
    n = len(tm)
    if n == 0 or not expl.grids:
        raise ExportError("Nothing to put on a contact sheet (no tokens or no vision maps).",
                          "Export the text maps instead.")
    _check_grid(expl, media_index)
    columns = columns or int(np.ceil(np.sqrt(n * 0.75)))
    tiles = []
    for k in range(n):
        _tick(k, n, progress, should_stop)
        img = token_overlay(expl, k, media_index, frame, kind, cmap, opacity, width=thumb_width)
        label = caption_strip(f"{k + 1}. " + token_caption(tm.texts[k], k, n).split("  (")[0],
                              img.shape[1], font_size=max(11, thumb_width // 16))
        tiles.append(np.concatenate([label, img], axis=0))
    _tick(n, n, progress, should_stop)
    th, tw = tiles[0].shape[:2]
    gap = 6
    rows = int(np.ceil(n / columns))
    sheet = np.full((rows * (th + gap) + gap, columns * (tw + gap) + gap, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y:y + th, x:x + tw] = tile[:th, :tw]
    bar = colorbar(min(sheet.shape[0], 240), cmap)
    side = np.full((sheet.shape[0], bar.shape[1], 3), 255, np.uint8)
    side[:bar.shape[0]] = bar
    return write_png(path, np.concatenate([sheet, side], axis=1))


# ------------------------------------------------------------------------------ MP4
def _burn_caption(img: np.ndarray, text: str) -> np.ndarray:
    """Caption inside the bottom of the frame (white on a translucent black band), so video
    exports keep the media's own size."""
    import cv2

    h, w = img.shape[:2]
    band_h = max(16, min(h // 8, int(w / 22)))
    strip = caption_strip(text, w, band_h, font_size=max(10, int(band_h * 0.55)),
                          fg=(255, 255, 255), bg=(0, 0, 0))
    out = img.copy()
    out[h - band_h:] = cv2.addWeighted(img[h - band_h:], 0.35, strip, 0.65, 0.0)
    return out


def sweep_frames(expl: Explanation, kind: TokenKind = "answer", media_index: int = 0,
                 frame: int = 0, cmap: str = DEFAULT_COLORMAP, opacity: float = 0.5,
                 width: int | None = None, caption: bool = True,
                 layout: Literal["overlay", "figure"] = "overlay") -> Iterator[np.ndarray]:
    """One frame per token over one media frame: the captioned overlay at the media's size
    (``layout="overlay"``), or the paper figure with its text map (``"figure"``; every frame
    padded to the tallest text map so the video keeps one size)."""
    m = _media(expl, media_index)
    tm = expl.tokens(kind)
    if layout == "figure":
        fig_w = width or 640
        first = paper_figure(expl, 0, media_index, frame, cmap, opacity, kind, width=fig_w)
        text_w = first.shape[1]
        tallest = max(text_map_height(expl, k, kind, width=text_w) for k in range(len(tm)))
        for k in range(len(tm)):
            yield paper_figure(expl, k, media_index, frame, cmap, opacity, kind, width=fig_w,
                               caption=caption, text_min_height=tallest)
        return
    if layout != "overlay":
        raise ValueError(f"layout must be 'overlay' or 'figure', not {layout!r}")
    base = m.frames[min(frame, m.n_frames - 1)]
    if width is not None and width != base.shape[1]:
        base = resize_frame(base, width)
    for k in range(len(tm)):
        img = overlay(base, expl.frame_map(k, media_index, frame, kind), cmap, opacity)
        if caption:
            img = _burn_caption(img, token_caption(tm.texts[k], k, len(tm)))
        yield img


def export_sweep_mp4(expl: Explanation, path: str | os.PathLike, kind: TokenKind = "answer",
                     media_index: int = 0, frame: int = 0, cmap: str = DEFAULT_COLORMAP,
                     opacity: float = 0.5, fps: float = 2.0, frames_per_token: int = 1,
                     width: int | None = None, caption: bool = True,
                     layout: Literal["overlay", "figure"] = "overlay", crf: int = 23,
                     preset: str = "veryfast", progress: Progress | None = None,
                     should_stop: ShouldStop | None = None) -> Path:
    """An MP4 that steps through the tokens over one image (or one video frame)."""
    n = len(expl.tokens(kind))
    if n == 0:
        raise ExportError("This explanation has no tokens to sweep.", "")
    frames = sweep_frames(expl, kind, media_index, frame, cmap, opacity, width, caption, layout)
    with H264Writer(path, fps, crf=crf, preset=preset) as writer:
        for k, img in enumerate(frames):
            _tick(k, n, progress, should_stop)
            for _ in range(max(1, frames_per_token)):
                writer.write(img)
        _tick(n, n, progress, should_stop)
    return Path(path)


def follow_schedule(n_frames: int, n_tokens: int) -> np.ndarray:
    """Token shown on each of ``n_frames`` output frames when following the answer: token k
    during its equal share ``[k, k+1) * n_frames / n_tokens`` of the clip."""
    return np.minimum((np.arange(n_frames) * n_tokens) // max(n_frames, 1), n_tokens - 1)


def export_video_mp4(expl: Explanation, path: str | os.PathLike, token: int | None = None,
                     kind: TokenKind = "answer", media_index: int = 0,
                     cmap: str = DEFAULT_COLORMAP, opacity: float = 0.5, fps: float = 10.0,
                     width: int | None = None, caption: bool = True, crf: int = 23,
                     preset: str = "veryfast", source: str | os.PathLike | None = None,
                     progress: Progress | None = None, should_stop: ShouldStop | None = None
                     ) -> Path:
    """Play a video with a token's map on each frame.

    ``token=None`` follows the answer: token k is shown during its share of the clip. By
    default the explanation's sampled frames play at real speed, each held for
    ``fps / media.fps`` output frames. With ``source`` (the original video file) every source
    frame is played at the source's rate, each showing the map of the sampled frame on screen
    at that time.
    """
    m = _media(expl, media_index)
    if m.kind != "video":
        raise ExportError(f"Media {media_index + 1} is an image, not a video.",
                          "Use the sweep export to step through the tokens over an image.")
    tm = expl.tokens(kind)
    n_tok = len(tm)
    if token is not None:
        _check_token(expl, token, kind)
    if source is not None:
        return _video_from_source(expl, Path(path), Path(source), token, kind, media_index,
                                  cmap, opacity, width, caption, crf, preset, progress,
                                  should_stop)
    hold = max(1, int(round(fps / m.fps))) if m.fps > 0 else 1
    n_out = m.n_frames * hold
    schedule = (np.full(n_out, token) if token is not None else follow_schedule(n_out, n_tok))
    cache: dict[tuple[int, int], np.ndarray] = {}
    with H264Writer(path, fps, crf=crf, preset=preset) as writer:
        for i in range(n_out):
            _tick(i, n_out, progress, should_stop)
            f, k = i // hold, int(schedule[i])
            img = cache.get((f, k))
            if img is None:
                base = m.frames[f]
                if width is not None and width != base.shape[1]:
                    base = resize_frame(base, width)
                img = overlay(base, expl.frame_map(k, media_index, f, kind), cmap, opacity)
                if caption:
                    img = _burn_caption(img, frame_caption(expl, k, media_index, f, kind))
                cache.clear()
                cache[(f, k)] = img
            writer.write(img)
        _tick(n_out, n_out, progress, should_stop)
    return Path(path)


def _video_from_source(expl: Explanation, path: Path, source: Path, token: int | None,
                       kind: TokenKind, media_index: int, cmap: str, opacity: float,
                       width: int | None, caption: bool, crf: int, preset: str,
                       progress: Progress | None, should_stop: ShouldStop | None) -> Path:
    from tam_engine.media.io import iter_video_frames, probe_video

    m = expl.media[media_index]
    n_tok = len(expl.tokens(kind))
    duration, rate = probe_video(source)
    n_est = max(1, int(round(duration * rate)))
    with H264Writer(path, rate, crf=crf, preset=preset) as writer:
        for i, (t, rgb) in enumerate(iter_video_frames(source)):
            _tick(min(i, n_est), n_est, progress, should_stop)
            # The sampled frame on screen at time t carries the map for this moment.
            f = int(np.clip(np.searchsorted(m.timestamps, t + 1e-6, side="right") - 1,
                            0, m.n_frames - 1))
            k = token if token is not None else min(int(t / max(duration, 1e-9) * n_tok),
                                                    n_tok - 1)
            base = rgb if width is None or width == rgb.shape[1] else resize_frame(rgb, width)
            img = overlay(base, expl.frame_map(k, media_index, f, kind), cmap, opacity)
            if caption:
                img = _burn_caption(img, frame_caption(expl, k, media_index, f, kind))
            writer.write(img)
        if writer.frames_written == 0:
            raise ExportError(f"{source.name}: no frames could be decoded.",
                              "Check the source video, or export without it.")
        _tick(n_est, n_est, progress, should_stop)
    return path


# ------------------------------------------------------------------------------ data
def explanation_json(expl: Explanation) -> dict:
    """Tokens, ids, relevances and candidates as plain JSON-able data."""
    from tam_engine.render.html_page import relevance_rows

    def tokens(kind: TokenKind) -> list[dict]:
        tm = expl.tokens(kind)
        rel = relevance_rows(expl, kind)
        strength = tm.visual_strength()
        out = []
        for k in range(len(tm)):
            d = {"index": k, "id": int(tm.token_ids[k]), "text": tm.texts[k],
                 "position": int(tm.positions[k]),
                 "visual_strength": round(float(strength[k]), 6),
                 "eci_alpha": round(float(tm.alpha[k]), 6),
                 "relevance": rel[k],
                 "raw_relevance": [round(float(v), 6) if c else None
                                   for v, c in zip(tm.relevance[k], tm.context[k])]}
            c = expl.candidates
            if kind == "answer" and c is not None and k < c.ids.shape[0]:
                top3 = c.topk_softmax(min(3, c.k))[k]
                d["candidates"] = [
                    {"id": int(c.ids[k, i]), "text": c.texts[k][i],
                     "logit": round(float(c.logits[k, i]), 6),
                     "prob": round(float(c.probs[k, i]), 6),
                     "top3_softmax": round(float(top3[i]), 6) if i < top3.size else None}
                    for i in range(c.k)]
            out.append(d)
        return out

    return {
        "format": "tam-text-maps", "version": 1,
        "meta": expl.meta,
        "answer_text": expl.answer_text,
        "columns": expl.text_columns,
        "prompt_positions": [int(p) for p in expl.prompt_positions],
        "grids": [g.to_meta() for g in expl.grids],
        "media": [{"kind": m.kind, "path": m.path, "n_frames": m.n_frames, "size": m.size,
                   "timestamps": [float(t) for t in m.timestamps]} for m in expl.media],
        "answer_tokens": tokens("answer"),
        "prompt_tokens": tokens("prompt") if expl.prompt is not None else None,
    }


def export_json(expl: Explanation, path: str | os.PathLike) -> Path:
    """The text maps (tokens, ids, relevances, candidates) as JSON."""
    data = json.dumps(explanation_json(expl), ensure_ascii=False, indent=1, default=str)
    atomic_write_bytes(path, data.encode("utf-8"))
    return Path(path)


def export_npz(expl: Explanation, path: str | os.PathLike) -> Path:
    """The maps as arrays: per kind, the uint8 maps and the raw/ECI/filtered float maps, and
    each grid's maps reshaped to ``(N, t, h, w)``. No pickles."""
    arrays: dict[str, np.ndarray] = {}
    for kind in ("answer", "prompt"):
        tm = expl.answer if kind == "answer" else expl.prompt
        if tm is None:
            continue
        arrays[f"{kind}_texts"] = np.array(tm.texts, dtype=str)
        arrays[f"{kind}_ids"] = tm.token_ids
        for name in ("maps", "raw", "eci", "filtered", "relevance", "context"):
            arrays[f"{kind}_{name}"] = np.asarray(getattr(tm, name))
        for gi, maps in enumerate(_grid_stacks(expl, kind)):
            arrays[f"{kind}_grid{gi}"] = maps
    arrays["grid_shapes"] = np.array([[g.t, g.h, g.w] for g in expl.grids], np.int64).reshape(-1, 3)
    arrays["columns"] = np.array(expl.text_columns, dtype=str)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _grid_stacks(expl: Explanation, kind: TokenKind) -> list[np.ndarray]:
    tm = expl.tokens(kind)
    return [tm.maps[:, s].reshape(len(tm), g.t, g.h, g.w)
            for g, s in zip(expl.grids, expl.grid_slices)]


def export_html(expl: Explanation, path: str | os.PathLike, media_index: int = 0,
                frame: int = 0, cmap: str = DEFAULT_COLORMAP, opacity: float = 0.5,
                image_width: int = 480, progress: Progress | None = None,
                should_stop: ShouldStop | None = None) -> Path:
    """One self-contained HTML page: hover (or click) a token to see its map and text map."""
    from tam_engine.render.html_page import build_html

    if expl.grids:
        _check_grid(expl, media_index)
    page = build_html(expl, media_index, frame, cmap, opacity, image_width,
                      tick=lambda i, n: _tick(i, n, progress, should_stop))
    atomic_write_bytes(path, page.encode("utf-8"))
    return Path(path)
