"""Two explanations of the same media and prompt (model A and model B), compared.

A selection's map is its token's final map, or for several tokens the combination of their maps
(:meth:`Explanation.combined_grid_maps`). The difference of two maps is taken on the shared
frame (:func:`tam_engine.render.diff.difference_map`): floats in [-1, 1], A minus B.
:meth:`Comparison.panels` says what the side-by-side figure shows for one selection
(:mod:`tam_engine.render.compare_figure` draws it, :mod:`tam_engine.export.compare` writes it);
:func:`compare_schedule` says what each picture of a video shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from tam_engine.compare.alignment import Side, WordAlignment, align_words
from tam_engine.core.errors import TamError
from tam_engine.core.explanation import Explanation
from tam_engine.core.placement import DEFAULT_LAYER, Layer
from tam_engine.core.tokens import display_token
from tam_engine.render.compare_figure import ComparePanel
from tam_engine.render.diff import placed_difference

Mode = Literal["auto", "words", "frames"]
Schedule = list[tuple[tuple[int, ...], tuple[int, ...], int]]


class CompareError(TamError):
    """Two explanations cannot be compared as asked."""


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
    return expl.selection_grid_maps(toks, how)[gi][expl.slot_of_frame(media_index, frame)]


def _model_name(expl: Explanation, fallback: str) -> str:
    name = str(expl.meta.get("model") or "")
    return (Path(name).name or name) if name else fallback


def _selection_text(expl: Explanation, tokens: Sequence[int]) -> str:
    return display_token("".join(expl.answer.texts[k] for k in tokens))


def _ints(tokens: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(k) for k in tokens)


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
                   size: tuple[int, int] | None = None, layer: Layer = DEFAULT_LAYER
                   ) -> np.ndarray:
        """``A - B`` of the two selections on displayed ``frame`` (float32, [-1, 1]), each
        placed where its grids looked (``layer``); 0 where either side's grids saw nothing."""
        a, b = self.panels(tokens_a, tokens_b, media_index, frame, how, layer)
        if not b.tokens:
            raise CompareError("No word of model B is chosen.", "Click a word of B's answer.")
        h, w = size or self.frame_size(media_index, frame)
        return placed_difference(a.placed((w, h), True), b.placed((w, h), True))

    def word_difference(self, word_a: int, media_index: int = 0, frame: int = 0,
                        how: str = "mean", size: tuple[int, int] | None = None,
                        layer: Layer = DEFAULT_LAYER) -> np.ndarray | None:
        """``A - B`` of word ``word_a`` of A and its aligned word of B; None without one."""
        j = self.alignment.aligned_word("a", word_a)
        if j is None:
            return None
        return self.difference(self.alignment.words_a[word_a].tokens,
                               self.alignment.words_b[j].tokens, media_index, frame, how, size,
                               layer)

    def _frame_b(self, media_index: int, frame: int) -> int:
        """B's displayed frame for A's ``frame`` (the same index, clipped to B's frames)."""
        if self.b.media and media_index < len(self.b.media):
            return min(frame, self.b.media[media_index].n_frames - 1)
        return frame

    def n_frames(self, media_index: int = 0) -> int:
        ex = self.a if self.a.media else self.b
        return ex.media[media_index].n_frames if ex.media and media_index < len(ex.media) else 1

    def panels(self, tokens_a: Sequence[int], tokens_b: Sequence[int], media_index: int = 0,
               frame: int = 0, how: str = "mean", layer: Layer = DEFAULT_LAYER
               ) -> tuple[ComparePanel, ComparePanel]:
        """What the side-by-side figure shows for A's ``tokens_a`` and B's ``tokens_b`` on
        displayed ``frame`` of A (B shows its own frame for it).

        ``tokens_b`` may be empty (A's word has no counterpart): B's panel then shows the frame
        without a map.
        """
        if not tokens_a:
            raise CompareError("No word of model A is chosen.", "Click a word of A's answer.")
        frame_b = self._frame_b(media_index, frame)
        map_a = selection_frame_map(self.a, tokens_a, media_index, frame, how)
        cap_a = f"A \u00b7 {self.name_a}: \u201c{_selection_text(self.a, tokens_a)}\u201d"
        if self.n_frames(media_index) > 1:
            cap_a += f"  \u00b7  frame {frame + 1}/{self.n_frames(media_index)}"
        if tokens_b:
            map_b = selection_frame_map(self.b, tokens_b, media_index, frame_b, how)
            cap_b = f"B \u00b7 {self.name_b}: \u201c{_selection_text(self.b, tokens_b)}\u201d"
        else:
            map_b, cap_b = None, f"B \u00b7 {self.name_b}: no matching word"
        return (ComparePanel(self.a, _ints(tokens_a), media_index, frame, map_a, cap_a, how,
                             layer),
                ComparePanel(self.b, _ints(tokens_b), media_index, frame_b, map_b, cap_b, how,
                             layer))


def compare_schedule(cmp: Comparison, mode: Mode = "auto",
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


def compare_pictures(cmp: Comparison, mode: Mode = "auto",
                     tokens_a: Sequence[int] | None = None,
                     tokens_b: Sequence[int] | None = None, media_index: int = 0,
                     frame: int = 0, how: str = "mean", layer: Layer = DEFAULT_LAYER
                     ) -> list[tuple[ComparePanel, ComparePanel]]:
    """The panels of each picture of :func:`compare_schedule` (for
    :func:`tam_engine.export.compare.export_compare_mp4`)."""
    return [cmp.panels(ta, tb, media_index, f, how, layer)
            for ta, tb, f in compare_schedule(cmp, mode, tokens_a, tokens_b, media_index, frame)]
