"""Compare two explanations of the same media and prompt (model A and model B).

Two models answer in their own words and with their own tokenizers, so tokens cannot be matched
by position. The answers are grouped into words (:func:`tam_engine.core.words.group_words`) and
the two word sequences are aligned on their normalised forms with difflib's matching blocks
(a longest-common-subsequence style alignment): where the answers agree, each word of A maps to
the same word of B, and a token maps to the tokens of its aligned word on the other side.

A word's map is the combination of its tokens' maps (:meth:`Explanation.combined_vector`). The
difference of two maps is taken on the shared frame: both are resized bilinearly to one size
(the models' grids usually differ) and subtracted, giving floats in [-1, 1] (A minus B).
:func:`render_side_by_side` draws A | B | A-B panels, and the exporters write them as PNG and
H.264 MP4 with the same atomic, cancellable writers as :mod:`tam_engine.export`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from tam_engine.core.errors import Cancelled, TamError
from tam_engine.core.explanation import Explanation
from tam_engine.core.words import Word, group_words
from tam_engine.render.colormaps import DEFAULT_COLORMAP
from tam_engine.render.diff import diff_overlay, diverging_colorbar
from tam_engine.render.figure import resize_frame, token_overlay
from tam_engine.render.overlay import caption_strip, colorbar
from tam_engine.render.textmap import render_text_map

Side = Literal["a", "b"]
Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


class CompareError(TamError):
    """Two explanations cannot be compared as asked."""


# ------------------------------------------------------------------------------ alignment
@dataclass(frozen=True)
class WordAlignment:
    """Words of two answers and which of them correspond.

    ``pairs`` holds ``(i, j)``: word ``i`` of A is word ``j`` of B. Indices increase in both
    sequences (an alignment never crosses itself).
    """

    words_a: tuple[Word, ...]
    words_b: tuple[Word, ...]
    pairs: tuple[tuple[int, int], ...]
    _maps: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._maps["a"] = {i: j for i, j in self.pairs}
        self._maps["b"] = {j: i for i, j in self.pairs}
        for side, words in (("a", self.words_a), ("b", self.words_b)):
            self._maps[side + "_tok"] = {k: w for w, word in enumerate(words)
                                         for k in word.tokens}

    def words(self, side: Side) -> tuple[Word, ...]:
        return self.words_a if side == "a" else self.words_b

    def word_of_token(self, side: Side, k: int) -> int | None:
        """Index of the word that token ``k`` belongs to (None for white space)."""
        return self._maps[side + "_tok"].get(int(k))

    def aligned_word(self, side: Side, i: int) -> int | None:
        """The word of the other side aligned with word ``i`` of ``side``, if any."""
        return self._maps[side].get(int(i))

    def word_tokens(self, side: Side, tokens: Iterable[int]) -> tuple[int, ...]:
        """The tokens of every word that ``tokens`` touch (a selection snapped to words)."""
        words = self.words(side)
        out: set[int] = set()
        for k in tokens:
            w = self.word_of_token(side, k)
            out.update(words[w].tokens if w is not None else (int(k),))
        return tuple(sorted(out))

    def aligned_tokens(self, side: Side, tokens: Iterable[int]) -> tuple[int, ...]:
        """Tokens of the other side's words aligned with the words of ``tokens``.

        Empty when none of those words has a counterpart.
        """
        other = self.words("b" if side == "a" else "a")
        out: set[int] = set()
        for k in tokens:
            w = self.word_of_token(side, k)
            j = self.aligned_word(side, w) if w is not None else None
            if j is not None:
                out.update(other[j].tokens)
        return tuple(sorted(out))

    @property
    def n_aligned(self) -> int:
        return len(self.pairs)


def align_words(texts_a: Sequence[str], texts_b: Sequence[str]) -> WordAlignment:
    """Align two answers, given as decoded token texts, word by word.

    Words are compared on their normalised keys (lower case, outer punctuation removed), so
    "Red" and "red," match. difflib's matching blocks give the longest common runs first,
    then recurse on either side of them, which is an LCS alignment for these short answers.
    """
    words_a, words_b = group_words(list(texts_a)), group_words(list(texts_b))
    keys_a, keys_b = [w.key for w in words_a], [w.key for w in words_b]
    matcher = difflib.SequenceMatcher(a=keys_a, b=keys_b, autojunk=False)
    pairs = tuple((blk.a + d, blk.b + d) for blk in matcher.get_matching_blocks()
                  for d in range(blk.size))
    return WordAlignment(tuple(words_a), tuple(words_b), pairs)


# ------------------------------------------------------------------------------ maps
def selection_frame_map(expl: Explanation, tokens: Sequence[int], media_index: int = 0,
                        frame: int = 0, how: str = "mean") -> np.ndarray:
    """The ``(h, w)`` uint8 map of one token or of a phrase on displayed ``frame``.

    One token: its final map (what the app shows). Several: the phrase map of
    :meth:`Explanation.combined_vector` (mean or max of the filtered maps), on the temporal
    slot of ``frame``, exactly as the app's panes pick it.
    """
    toks = [int(k) for k in tokens]
    if not toks:
        raise CompareError("No token is chosen.", "Click a word of the answer.")
    try:
        gi = expl.grid_for_media(media_index)
    except KeyError as exc:
        raise CompareError(
            f"{_model_name(expl, 'This model')} has no map for media item {media_index + 1}.",
            "Compare explanations of the same image or video.") from exc
    if len(toks) == 1:
        return expl.frame_map(toks[0], media_index, frame)
    maps = expl.combined_grid_maps(toks, how)[gi]
    return maps[expl.slot_of_frame(media_index, frame)]


def word_map(expl: Explanation, word: Word, media_index: int = 0, frame: int = 0,
             how: str = "mean") -> np.ndarray:
    """A word's map: its tokens combined (one token's word is that token's map)."""
    return selection_frame_map(expl, word.tokens, media_index, frame, how)


def resize_float(map_u8: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A uint8 map as floats in [0, 1], resized bilinearly to ``size = (H, W)``."""
    import cv2

    m = np.asarray(map_u8, dtype=np.float32) / 255.0
    h, w = int(size[0]), int(size[1])
    if m.shape == (h, w):
        return m
    return cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)


def difference_map(map_a: np.ndarray, map_b: np.ndarray, size: tuple[int, int] | None = None
                   ) -> np.ndarray:
    """``A - B`` of two uint8 maps, float32 in [-1, 1], on a common ``(H, W)`` grid.

    Without ``size`` the larger of the two shapes (per axis) is used. Both maps are resized
    bilinearly before subtracting, so grids of different models compare pixel for pixel.
    """
    if size is None:
        size = (max(map_a.shape[0], map_b.shape[0]), max(map_a.shape[1], map_b.shape[1]))
    diff = resize_float(map_a, size) - resize_float(map_b, size)
    return np.clip(diff, -1.0, 1.0).astype(np.float32)


def _model_name(expl: Explanation, fallback: str) -> str:
    name = str(expl.meta.get("model") or "")
    return (Path(name).name or name) if name else fallback


def _selection_text(expl: Explanation, tokens: Sequence[int]) -> str:
    text = "".join(expl.answer.texts[k] for k in tokens).strip()
    return text.replace("\n", "\u21b5") or "\u2423"


@dataclass
class Comparison:
    """Two explanations of the same media and prompt, and the alignment of their answers."""

    a: Explanation
    b: Explanation
    alignment: WordAlignment

    @classmethod
    def of(cls, a: Explanation, b: Explanation) -> Comparison:
        return cls(a, b, align_words(a.answer.texts, b.answer.texts))

    @property
    def name_a(self) -> str:
        return _model_name(self.a, "model A")

    @property
    def name_b(self) -> str:
        return _model_name(self.b, "model B")

    def same_media(self) -> bool:
        """Whether A and B show the same media (count, file names, frame sizes)."""
        ma, mb = self.a.media, self.b.media
        if len(ma) != len(mb):
            return False
        return all(Path(x.path).name == Path(y.path).name
                   and x.frames.shape[1:] == y.frames.shape[1:] for x, y in zip(ma, mb))

    def expl(self, side: Side) -> Explanation:
        return self.a if side == "a" else self.b

    def frame_size(self, media_index: int = 0, frame: int = 0) -> tuple[int, int]:
        """``(H, W)`` of the shared frame (A's, else B's, else the larger grid x 16)."""
        for ex in (self.a, self.b):
            if ex.media and media_index < len(ex.media):
                m = ex.media[media_index]
                return m.frames.shape[1], m.frames.shape[2]
        shapes = [(g.h, g.w) for ex in (self.a, self.b) for g in ex.grids]
        if not shapes:
            raise CompareError("Neither explanation has vision maps.",
                               "Compare explanations of an image or a video.")
        return max(s[0] for s in shapes) * 16, max(s[1] for s in shapes) * 16

    def difference(self, tokens_a: Sequence[int], tokens_b: Sequence[int],
                   media_index: int = 0, frame: int = 0, how: str = "mean",
                   size: tuple[int, int] | None = None) -> np.ndarray:
        """``A - B`` of the two selections on displayed ``frame`` (float32, [-1, 1])."""
        map_a = selection_frame_map(self.a, tokens_a, media_index, frame, how)
        map_b = selection_frame_map(self.b, tokens_b, media_index,
                                    self._frame_b(media_index, frame), how)
        return difference_map(map_a, map_b, size or self.frame_size(media_index, frame))

    def word_difference(self, word_a: int, media_index: int = 0, frame: int = 0,
                        how: str = "mean", size: tuple[int, int] | None = None
                        ) -> np.ndarray | None:
        """``A - B`` of word ``word_a`` of A and its aligned word of B; None without one."""
        j = self.alignment.aligned_word("a", word_a)
        if j is None:
            return None
        return self.difference(self.alignment.words_a[word_a].tokens,
                               self.alignment.words_b[j].tokens, media_index, frame, how, size)

    def _frame_b(self, media_index: int, frame: int) -> int:
        """B's displayed frame for A's ``frame`` (the same index, clipped to B's frames)."""
        if self.b.media and media_index < len(self.b.media):
            return min(frame, self.b.media[media_index].n_frames - 1)
        return frame

    def n_frames(self, media_index: int = 0) -> int:
        ex = self.a if self.a.media else self.b
        return ex.media[media_index].n_frames if ex.media and media_index < len(ex.media) else 1


# ------------------------------------------------------------------------------ rendering
def _frame(expl: Explanation, media_index: int, frame: int, width: int) -> np.ndarray | None:
    if not expl.media or media_index >= len(expl.media):
        return None
    m = expl.media[media_index]
    return resize_frame(m.frames[min(frame, m.n_frames - 1)], width)


def _pad_to(img: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.pad(img, ((0, h - img.shape[0]), (0, w - img.shape[1]), (0, 0)),
                  constant_values=255)


def _column(parts: list[np.ndarray], width: int) -> np.ndarray:
    return np.concatenate([_pad_to(p, p.shape[0], width) for p in parts], axis=0)


def render_side_by_side(cmp: Comparison, tokens_a: Sequence[int], tokens_b: Sequence[int],
                        media_index: int = 0, frame: int = 0, cmap: str = DEFAULT_COLORMAP,
                        opacity: float = 0.5, panel_width: int = 360, show_diff: bool = True,
                        text_maps: bool = True, how: str = "mean",
                        text_min_height: int = 0) -> np.ndarray:
    """A | B (| A - B) panels for one selection on each side, as one RGB image.

    ``tokens_b`` may be empty (A's word has no counterpart): B's panel then shows the frame
    without a map and the difference panel says so. ``text_maps`` puts each side's text map
    (of the selection's first token) under its panel; ``text_min_height`` pads them (videos
    need every frame the same size).
    """
    if not tokens_a:
        raise CompareError("No word of model A is chosen.", "Click a word of A's answer.")
    pw = int(panel_width)
    fs = max(11, min(22, pw // 24))
    caption_h = int(caption_strip("Ag", pw, font_size=fs).shape[0])
    frame_b = cmp._frame_b(media_index, frame)
    map_a = selection_frame_map(cmp.a, tokens_a, media_index, frame, how)
    img_a = token_overlay(cmp.a, tokens_a[0], media_index, frame, "answer", cmap, opacity,
                          width=pw, map_u8=map_a)
    panel_h = img_a.shape[0]
    cap_a = f"A \u00b7 {cmp.name_a}: \u201c{_selection_text(cmp.a, tokens_a)}\u201d"
    if cmp.n_frames(media_index) > 1:
        cap_a += f"  \u00b7  frame {frame + 1}/{cmp.n_frames(media_index)}"
    columns = [[caption_strip(cap_a, pw, caption_h, fs), img_a]]
    if tokens_b:
        map_b = selection_frame_map(cmp.b, tokens_b, media_index, frame_b, how)
        img_b = token_overlay(cmp.b, tokens_b[0], media_index, frame_b, "answer", cmap,
                              opacity, width=pw, map_u8=map_b)
        cap_b = f"B \u00b7 {cmp.name_b}: \u201c{_selection_text(cmp.b, tokens_b)}\u201d"
    else:
        plain = _frame(cmp.b, media_index, frame_b, pw)
        img_b = plain if plain is not None else np.full_like(img_a, 235)
        cap_b = f"B \u00b7 {cmp.name_b}: no matching word"
    columns.append([caption_strip(cap_b, pw, caption_h, fs), img_b])
    if show_diff:
        base = _frame(cmp.a, media_index, frame, pw)
        if tokens_b:
            diff = cmp.difference(tokens_a, tokens_b, media_index, frame, how,
                                  size=img_a.shape[:2])
            img_d = diff_overlay(base, diff)
            cap_d = "A \u2212 B  (red: A stronger, blue: B stronger)"
        else:
            img_d = diff_overlay(base, np.zeros(img_a.shape[:2], np.float32), 0.0)
            cap_d = "A \u2212 B: nothing to compare"
        columns.append([caption_strip(cap_d, pw, caption_h, fs), img_d])
    if text_maps:
        texts = [render_text_map(cmp.a, tokens_a[0], "answer", width=pw, cmap=cmap)]
        texts.append(render_text_map(cmp.b, tokens_b[0], "answer", width=pw, cmap=cmap)
                     if tokens_b else np.full((0, pw, 3), 255, np.uint8))
        th = max(max(t.shape[0] for t in texts), int(text_min_height))
        for col, t in zip(columns, texts):
            col.append(_pad_to(t, th, pw))
        if show_diff:
            columns[2].append(np.full((th, pw, 3), 255, np.uint8))
    top_h = caption_h + max(panel_h, img_b.shape[0])
    blocks: list[np.ndarray] = []
    for i, col in enumerate(columns):
        col[1] = _pad_to(col[1], top_h - caption_h, pw)
        block = _column(col, pw)
        if i == 1:   # the heat maps' colour bar after B (one scale for A and B)
            bar = colorbar(top_h - caption_h, cmap)
            block = np.concatenate([block, _pad_to(np.concatenate(
                [np.full((caption_h, bar.shape[1], 3), 255, np.uint8), bar]), block.shape[0],
                bar.shape[1])], axis=1)
        if i == 2:
            bar = diverging_colorbar(top_h - caption_h)
            block = np.concatenate([block, _pad_to(np.concatenate(
                [np.full((caption_h, bar.shape[1], 3), 255, np.uint8), bar]), block.shape[0],
                bar.shape[1])], axis=1)
        if blocks:
            blocks.append(np.full((block.shape[0], 8, 3), 255, np.uint8))
        blocks.append(block)
    height = max(b.shape[0] for b in blocks)
    out = np.concatenate([_pad_to(b, height, b.shape[1]) for b in blocks], axis=1)
    return np.ascontiguousarray(out)


# ------------------------------------------------------------------------------ export
def _tick(i: int, n: int, progress: Progress | None, should_stop: ShouldStop | None
          ) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("Export cancelled.", "Nothing was written; start the export again.")
    if progress is not None:
        progress(i, n)


def export_compare_png(cmp: Comparison, path: str | os.PathLike, tokens_a: Sequence[int],
                       tokens_b: Sequence[int], **render) -> Path:
    """The side-by-side view of one selection as a PNG, written atomically."""
    from tam_engine.export import write_png

    image = render_side_by_side(cmp, tokens_a, tokens_b, **render)
    try:
        return write_png(path, image)
    except OSError as exc:
        raise _write_error(path, exc) from exc


def _write_error(path: str | os.PathLike, exc: OSError) -> CompareError:
    return CompareError(f"Could not write {Path(path).name}: {exc.strerror or exc}",
                        "Choose a folder you can write to, with free disk space.")


Schedule = list[tuple[tuple[int, ...], tuple[int, ...], int]]


def compare_schedule(cmp: Comparison, mode: Literal["auto", "words", "frames"] = "auto",
                     tokens_a: Sequence[int] | None = None,
                     tokens_b: Sequence[int] | None = None, media_index: int = 0,
                     frame: int = 0) -> Schedule:
    """What each video frame shows: ``(tokens_a, tokens_b, frame)``.

    ``"words"`` steps through A's words (B shows the aligned word, or none) on one frame;
    ``"frames"`` plays the media's frames with one selection; ``"auto"`` plays a video and
    steps through the words of an image.
    """
    if mode == "auto":
        mode = "frames" if cmp.n_frames(media_index) > 1 and tokens_a else "words"
    if mode == "frames":
        if not tokens_a:
            raise CompareError("No word of model A is chosen.", "Click a word of A's answer.")
        ta, tb = tuple(tokens_a), tuple(tokens_b or ())
        return [(ta, tb, f) for f in range(cmp.n_frames(media_index))]
    if mode != "words":
        raise ValueError(f"mode must be 'auto', 'words' or 'frames', not {mode!r}")
    al = cmp.alignment
    out: Schedule = []
    for i, w in enumerate(al.words_a):
        j = al.aligned_word("a", i)
        out.append((w.tokens, al.words_b[j].tokens if j is not None else (), frame))
    if not out:
        raise CompareError("Model A's answer has no words to step through.",
                           "Run model A again with a prompt that makes it answer.")
    return out


def iter_compare_frames(cmp: Comparison, schedule: Schedule, media_index: int = 0,
                        **render) -> Iterator[np.ndarray]:
    """Rendered side-by-side frames of ``schedule``, all of one size (text maps padded)."""
    render.setdefault("text_maps", False)
    if render["text_maps"]:
        pw = int(render.get("panel_width", 360))
        from tam_engine.render.textmap import text_map_height

        render["text_min_height"] = max(
            max(text_map_height(cmp.a, ta[0], "answer", width=pw),
                text_map_height(cmp.b, tb[0], "answer", width=pw) if tb else 0)
            for ta, tb, _ in schedule)
    for ta, tb, f in schedule:
        yield render_side_by_side(cmp, ta, tb, media_index, f, **render)


def export_compare_mp4(cmp: Comparison, path: str | os.PathLike,
                       mode: Literal["auto", "words", "frames"] = "auto",
                       tokens_a: Sequence[int] | None = None,
                       tokens_b: Sequence[int] | None = None, media_index: int = 0,
                       frame: int = 0, fps: float = 2.0, hold: int = 1, crf: int = 23,
                       preset: str = "veryfast", progress: Progress | None = None,
                       should_stop: ShouldStop | None = None,
                       **render) -> Path:
    """The side-by-side view as an H.264 MP4 (see :func:`compare_schedule` for ``mode``).

    Each scheduled picture is held for ``hold`` output frames. Written to a temporary file
    and moved into place when complete; ``should_stop()`` cancels (no file is left).
    """
    from tam_engine.render.mp4 import H264Writer

    schedule = compare_schedule(cmp, mode, tokens_a, tokens_b, media_index, frame)
    n = len(schedule)
    try:
        with H264Writer(path, fps, crf=crf, preset=preset) as writer:
            for i, img in enumerate(iter_compare_frames(cmp, schedule, media_index,
                                                        **render)):
                _tick(i, n, progress, should_stop)
                for _ in range(max(1, int(hold))):
                    writer.write(img)
            _tick(n, n, progress, should_stop)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    return Path(path)
