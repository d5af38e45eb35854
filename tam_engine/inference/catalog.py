"""The supported model families as a user sees them: ``tam models`` and README's model table.

Everything comes from the adapter classes' own metadata (``title``, ``examples``, ``media``,
``tiling``, ``notes``), in the registry's order, so the command and the README say the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from tam_engine.inference.adapters import ADAPTERS
from tam_engine.inference.adapters.generic import GenericAdapter

#: The media columns: (the adapter's ``media`` entry, its heading).
MEDIA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("image", "image"), ("images", "several images"), ("video", "video"))


@dataclass(frozen=True)
class FamilyInfo:
    """One row of the table."""

    title: str
    model_types: tuple[str, ...]
    examples: tuple[str, ...]
    media: tuple[str, ...]
    tiling: bool
    notes: str

    def supports(self, column: str) -> bool:
        """Whether the family takes ``column`` (a media entry or ``"tiling"``)."""
        return self.tiling if column == "tiling" else column in self.media


def families() -> list[FamilyInfo]:
    """Every family of the adapter registry, the generic last resort last."""
    rows = []
    for cls in ADAPTERS:
        types = () if cls is GenericAdapter else tuple(getattr(cls, "model_types", ()))
        rows.append(FamilyInfo(title=cls.title or cls.family, model_types=types,
                               examples=tuple(cls.examples), media=tuple(cls.media),
                               tiling=bool(cls.tiling), notes=cls.notes))
    return rows


def _columns() -> list[tuple[str, str]]:
    return [*MEDIA_COLUMNS, ("tiling", "tiling")]


def markdown_table() -> str:
    """README's "Models" table (``tam models --markdown`` prints it)."""
    heads = ["family", "examples", *(h for _, h in _columns()), "map grid"]
    lines = ["| " + " | ".join(heads) + " |", "|" + " --- |" * len(heads)]
    for f in families():
        examples = ", ".join(f"`{e}`" for e in f.examples) or "any other model with an image token"
        marks = ["yes" if f.supports(c) else "no" for c, _ in _columns()]
        lines.append("| " + " | ".join([f.title, examples, *marks, f.notes]) + " |")
    return "\n".join(lines) + "\n"


def text_table() -> str:
    """The table ``tam models`` prints: one line per family, aligned columns."""
    heads = ["family", "model_type", *(h for _, h in _columns()), "examples"]
    rows = [[f.title, ", ".join(f.model_types) or "any other",
             *("yes" if f.supports(c) else "-" for c, _ in _columns()),
             ", ".join(f.examples) or "-"] for f in families()]
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(r, widths)), r[-1]]).rstrip()
             for r in [heads, *rows]]
    return "\n".join(lines) + "\n"
