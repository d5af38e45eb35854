"""The text map: the context tokens coloured by their relevance to the explained token.

As in the paper's figures: every context token (prompt tokens, and the answer tokens before
the explained one) has a background coloured by its normalised relevance on the same [0, 1]
scale as the visual map; the explained token is white on black; later tokens are grey; the
top-3 next-token candidates follow with their probabilities over the whole vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from tam_engine.core.explanation import Explanation
from tam_engine.core.inputs import PROBABILITY_LABEL, percent
from tam_engine.core.token_maps import TokenKind
from tam_engine.core.tokens import display_token, token_label
from tam_engine.render.colormaps import DEFAULT_COLORMAP, colour_of
from tam_engine.render.fonts import FontStack, font_stack

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (150, 150, 150)
LABEL = (110, 110, 110)


@dataclass
class Cell:
    """One token box: its text, colours, and whether a line break follows it."""

    text: str
    bg: tuple[int, int, int] | None
    fg: tuple[int, int, int]
    gap_before: bool = False
    break_after: bool = False
    border: bool = False


def _ink_for(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white text, whichever reads better on ``bg`` (Rec. 601 luma)."""
    r, g, b = bg
    return BLACK if 0.299 * r + 0.587 * g + 0.114 * b > 140 else WHITE


def _token_cell(text: str, bg, fg) -> Cell:
    # Byte-level BPE marks a word start with a leading space; show it as a gap, not as part of
    # the coloured box, so the boxes read like words.
    lead = text[:1] in (" ", "\t")
    body = text.lstrip(" \t") if lead else text
    newline = body.endswith("\n")
    if body.strip("\n") == "" and newline:
        body = "\n"
    elif newline:
        body = body.rstrip("\n") + "\n"
    if body == "":
        body = " "
    return Cell(text=body, bg=bg, fg=fg, gap_before=lead, break_after=newline)


def token_cells(expl: Explanation, k: int, kind: TokenKind = "answer",
                cmap: str = DEFAULT_COLORMAP) -> tuple[list[Cell], list[Cell]]:
    """Prompt cells and answer cells, coloured for explained token ``k`` of ``kind``."""
    tm = expl.tokens(kind)
    if not 0 <= k < len(tm):
        raise IndexError(f"token {k} out of range (0..{len(tm) - 1})")
    rel = tm.normalised_relevance(k)
    n_prompt = expl.prompt_positions.size
    current = k if kind == "prompt" else n_prompt + k
    cells: list[Cell] = []
    for col, text in enumerate(expl.text_columns):
        if col == current:
            cells.append(_token_cell(text, BLACK, WHITE))
        elif np.isfinite(rel[col]):
            bg = colour_of(float(rel[col]), cmap)
            cells.append(_token_cell(text, bg, _ink_for(bg)))
        else:
            cells.append(_token_cell(text, None, GREY))
    return cells[:n_prompt], cells[n_prompt:]


def candidate_cells(expl: Explanation, k: int, n: int = 3) -> list[Cell]:
    """The top-``n`` candidates of answer token ``k`` as ``text  p%`` boxes."""
    c = expl.candidates
    if c is None:
        return []
    return [Cell(text=f"{display_token(text)}  {percent(p)}", bg=None, fg=BLACK, border=True,
                 gap_before=True) for _id, text, p in c.top(k, n)]


class _Flow:
    """Greedy line filling of cells within a width; records where each cell goes."""

    def __init__(self, fs: FontStack, width: int, margin: int) -> None:
        self.fs = fs
        self.width = width
        self.margin = margin
        self.pad_x = max(2, fs.size // 6)
        self.gap = max(3, int(fs.width(" ")))
        self.row_h = fs.line_height + 2 * max(1, fs.size // 8) + 2
        self.x = margin
        self.y = margin
        self.ops: list[tuple[str, tuple, Any]] = []

    def newline(self, extra: int = 0) -> None:
        if self.x > self.margin:
            self.y += self.row_h
        self.y += extra
        self.x = self.margin

    def label(self, text: str, fs_small: FontStack) -> None:
        """A grey heading, wrapped at spaces to the width (a word too long is shortened)."""
        self.newline()
        avail = self.width - 2 * self.margin
        lines: list[str] = []
        for word in text.split(" "):
            if lines and fs_small.width(lines[-1] + " " + word) <= avail:
                lines[-1] += " " + word
            else:
                lines.append(word)
        for line in lines:
            self.ops.append(("text", (self.x, self.y), (fs_small, fs_small.fit(line, avail),
                                                        LABEL)))
            self.y += fs_small.line_height + 2

    def add(self, cell: Cell) -> None:
        fs = self.fs
        avail = self.width - 2 * self.margin - 2 * self.pad_x
        text = fs.fit(cell.text.rstrip("\n") or cell.text, avail)
        if cell.text == "\n":
            text = "\n"
        w = fs.width(text) + 2 * self.pad_x
        gap = self.gap if (cell.gap_before and self.x > self.margin) else 1
        if self.x > self.margin and self.x + gap + w > self.width - self.margin:
            self.newline()
            gap = 0
        x = self.x + (gap if self.x > self.margin else 0)
        self.ops.append(("cell", (x, self.y, w, self.row_h - 2), (text, cell)))
        self.x = x + w
        if cell.break_after:
            self.newline()

    def height(self) -> int:
        return self.y + (self.row_h if self.x > self.margin else 0) + self.margin


def _layout(expl: Explanation, k: int, kind: TokenKind, width: int, cmap: str,
            font_size: int | None, show_prompt: bool, n_candidates: int) -> _Flow:
    size = font_size or max(11, min(28, width // 40))
    fs = font_stack(size)
    small = font_stack(max(9, int(size * 0.75)))
    prompt_cells, answer_cells = token_cells(expl, k, kind, cmap)
    flow = _Flow(fs, width, margin=max(6, size // 2))
    if show_prompt and prompt_cells:
        flow.label("Prompt", small)
        for c in prompt_cells:
            flow.add(c)
        flow.newline(extra=size // 3)
    flow.label("Answer", small)
    for c in answer_cells:
        flow.add(c)
    cands = candidate_cells(expl, k, n_candidates) if kind == "answer" else []
    if cands:
        flow.newline(extra=size // 3)
        flow.label(f"Top-{len(cands)} candidates for {token_label(k)} ({PROBABILITY_LABEL})",
                   small)
        for c in cands:
            flow.add(c)
    return flow


def text_map_height(expl: Explanation, k: int, kind: TokenKind = "answer", width: int = 800,
                    font_size: int | None = None, show_prompt: bool = True,
                    n_candidates: int = 3) -> int:
    """Height :func:`render_text_map` will have, without drawing (for fixed-size videos)."""
    return max(_layout(expl, k, kind, int(width), DEFAULT_COLORMAP, font_size, show_prompt,
                       n_candidates).height(), 1)


def render_text_map(expl: Explanation, k: int, kind: TokenKind = "answer", width: int = 800,
                    cmap: str = DEFAULT_COLORMAP, font_size: int | None = None,
                    show_prompt: bool = True, n_candidates: int = 3,
                    min_height: int | None = None) -> np.ndarray:
    """The text map of token ``k`` as a ``(h, width, 3)`` uint8 RGB image (at least
    ``min_height`` tall, padded with white)."""
    width = int(width)
    flow = _layout(expl, k, kind, width, cmap, font_size, show_prompt, n_candidates)
    fs = flow.fs
    img = Image.new("RGB", (width, max(flow.height(), min_height or 1, 1)), WHITE)
    draw = ImageDraw.Draw(img)
    for op, geom, payload in flow.ops:
        if op == "text":
            f, text, colour = payload
            f.draw(draw, geom, text, fill=colour)
            continue
        x, y, w, h = geom
        text, cell = payload
        if cell.bg is not None:
            draw.rectangle((x, y, x + w - 1, y + h - 1), fill=cell.bg)
        if cell.border:
            draw.rectangle((x, y, x + w - 1, y + h - 1), outline=(120, 120, 120))
        ty = y + (h - fs.line_height) / 2
        fs.draw(draw, (x + flow.pad_x, ty), text, fill=cell.fg)
    return np.asarray(img)
