"""Bundled fonts with per-character fallback, so any token text renders without tofu.

Pillow draws one font at a time and does not fall back by itself. We read each bundled font's
character map once (a few dozen lines of ``cmap`` parsing, formats 4 and 12), split every string
into runs of characters one font covers, and draw the runs on a common baseline.

Fonts, in order of preference (licences in ``resources/fonts/README.md``):
DejaVu Sans (Latin, Greek, Cyrillic, symbols), WenQuanYi Micro Hei (CJK, Hangul, kana),
Symbola (emoji and other symbols, monochrome).
"""

from __future__ import annotations

import struct
from functools import cache, lru_cache
from pathlib import Path

from PIL import ImageDraw, ImageFont

from tam_engine.core.tokens import REPLACEMENT, visible

FONT_FILES: tuple[str, ...] = ("DejaVuSans.ttf", "wqy-microhei.ttc", "Symbola_hint.ttf")


def fonts_dir() -> Path:
    from tam_engine.core.resources import fonts_dir as _fonts_dir

    return _fonts_dir()


def font_paths() -> list[Path]:
    """Bundled font files that are present, in order of preference."""
    d = fonts_dir()
    paths = [d / name for name in FONT_FILES if (d / name).is_file()]
    if not paths:
        raise FileNotFoundError(f"no bundled fonts found in {d}")
    return paths


# ------------------------------------------------------------------------ cmap parsing
@cache
def font_coverage(path: str) -> frozenset[int]:
    """Code points that ``path`` (a TrueType/OpenType file) maps to a real glyph."""
    data = Path(path).read_bytes()
    base = 0
    if data[:4] == b"ttcf":
        # A collection: use its first font, as ImageFont.truetype(path) does.
        base = struct.unpack_from(">I", data, 12)[0]
    num_tables = struct.unpack_from(">H", data, base + 4)[0]
    cmap_off = None
    for i in range(num_tables):
        tag, _, off, _ = struct.unpack_from(">4sIII", data, base + 12 + 16 * i)
        if tag == b"cmap":
            cmap_off = off
            break
    if cmap_off is None:
        return frozenset()
    n_sub = struct.unpack_from(">H", data, cmap_off + 2)[0]
    subtables: dict[int, int] = {}
    for i in range(n_sub):
        pid, eid, off = struct.unpack_from(">HHI", data, cmap_off + 4 + 8 * i)
        if (pid, eid) in ((3, 10), (0, 4), (0, 6), (3, 1), (0, 3), (0, 1), (0, 0)):
            fmt = struct.unpack_from(">H", data, cmap_off + off)[0]
            subtables.setdefault(fmt, cmap_off + off)
    covered: set[int] = set()
    if 12 in subtables:
        _read_format12(data, subtables[12], covered)
    if 4 in subtables:
        _read_format4(data, subtables[4], covered)
    return frozenset(covered)


def _read_format12(data: bytes, off: int, out: set[int]) -> None:
    n_groups = struct.unpack_from(">I", data, off + 12)[0]
    for g in range(n_groups):
        start, end, glyph = struct.unpack_from(">III", data, off + 16 + 12 * g)
        out.update(range(start + (1 if glyph == 0 else 0), end + 1))


def _read_format4(data: bytes, off: int, out: set[int]) -> None:
    seg_x2 = struct.unpack_from(">H", data, off + 6)[0]
    n = seg_x2 // 2
    ends = struct.unpack_from(f">{n}H", data, off + 14)
    starts = struct.unpack_from(f">{n}H", data, off + 16 + seg_x2)
    deltas = struct.unpack_from(f">{n}h", data, off + 16 + 2 * seg_x2)
    ro_base = off + 16 + 3 * seg_x2
    range_offsets = struct.unpack_from(f">{n}H", data, ro_base)
    for i in range(n):
        start, end, delta, ro = starts[i], ends[i], deltas[i], range_offsets[i]
        if start == 0xFFFF:
            continue
        if ro == 0:
            out.update(c for c in range(start, end + 1) if (c + delta) & 0xFFFF)
            continue
        addr = ro_base + 2 * i + ro
        for c in range(start, end + 1):
            pos = addr + 2 * (c - start)
            if pos + 2 > len(data):
                break
            if struct.unpack_from(">H", data, pos)[0]:
                out.add(c)


# ------------------------------------------------------------------------ the font stack
class FontStack:
    """Fonts of one pixel size with per-character fallback."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.paths = font_paths()
        self.fonts = [ImageFont.truetype(str(p), self.size) for p in self.paths]
        self._cover = [font_coverage(str(p)) for p in self.paths]
        self._choice: dict[str, int] = {}
        self._widths: dict[str, int] = {}
        ascent, descent = self.fonts[0].getmetrics()
        self.ascent = ascent
        self.descent = descent
        self.line_height = int(round((ascent + descent) * 1.15))

    def clean(self, text: str) -> str:
        """Text as it will be drawn: :func:`~tam_engine.core.tokens.visible`, then characters
        no font has replaced by U+FFFD."""
        return "".join(ch if self._font_index(ch) >= 0 else REPLACEMENT for ch in visible(text))

    def _font_index(self, ch: str) -> int:
        idx = self._choice.get(ch)
        if idx is None:
            cp = ord(ch)
            idx = next((i for i, cov in enumerate(self._cover) if cp in cov), -1)
            if ch == " ":
                idx = 0
            self._choice[ch] = idx
        return idx

    def runs(self, text: str) -> list[tuple[ImageFont.FreeTypeFont, str]]:
        """Split cleaned ``text`` into ``(font, run)`` pieces."""
        text = self.clean(text)
        out: list[tuple[ImageFont.FreeTypeFont, str]] = []
        cur, buf = -2, list[str]()
        for ch in text:
            i = max(self._font_index(ch), 0)
            if i != cur and buf:
                out.append((self.fonts[cur], "".join(buf)))
                buf = []
            cur = i
            buf.append(ch)
        if buf:
            out.append((self.fonts[cur], "".join(buf)))
        return out

    def width(self, text: str) -> int:
        w = self._widths.get(text)
        if w is None:
            w = int(round(sum(f.getlength(t) for f, t in self.runs(text))))
            if len(self._widths) < 20000:       # token texts repeat: layouts re-measure them
                self._widths[text] = w
        return w

    def draw(self, draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
             fill=(0, 0, 0)) -> int:
        """Draw ``text`` with its top-left at ``xy`` (line box); returns the width drawn."""
        x, y = xy
        baseline = y + self.ascent
        x0 = x
        for font, run in self.runs(text):
            draw.text((x, baseline), run, font=font, fill=fill, anchor="ls")
            x += font.getlength(run)
        return int(round(x - x0))

    def fit(self, text: str, max_width: int) -> str:
        """``text`` shortened with an ellipsis to fit ``max_width`` pixels."""
        if self.width(text) <= max_width:
            return text
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.width(text[:mid] + "\u2026") <= max_width:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo] + "\u2026"


@lru_cache(maxsize=16)
def font_stack(size: int) -> FontStack:
    """A shared :class:`FontStack` per size (loading fonts costs a few milliseconds)."""
    return FontStack(size)
