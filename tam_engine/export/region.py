"""A region query's ranking as JSON or CSV (``tam export FILE region --box ...``)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.core.explanation import Explanation
from tam_engine.core.region import RegionRanking

#: The CSV's columns, in order (the JSON's rows have the same keys).
CSV_COLUMNS = ("rank", "token", "text", "share", "has_map")


def region_json(expl: Explanation, ranking: RegionRanking) -> dict:
    """The query (box, frame, layer; media and frame numbered from 1) and one row per token,
    best first; ``share`` is the part of the token's map mass inside the box
    (:mod:`tam_engine.core.region`), ``chance`` what a uniform map would have."""
    texts = expl.tokens(ranking.kind).texts
    return {"region": ranking.describe(),
            "definition": "share = mass of the token's final uint8 map inside the box / its "
                          "mass over the frame, each map cell spread over the part of the "
                          "frame it saw",
            "tokens": ranking.records(texts)}


def region_csv(expl: Explanation, ranking: RegionRanking) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in ranking.records(expl.tokens(ranking.kind).texts):
        writer.writerow([row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def region_text(expl: Explanation, ranking: RegionRanking, as_csv: bool) -> str:
    if as_csv:
        return region_csv(expl, ranking)
    return json.dumps(region_json(expl, ranking), ensure_ascii=False, indent=1) + "\n"


def export_region(expl: Explanation, ranking: RegionRanking, path: str | os.PathLike) -> Path:
    """Write the ranking atomically: CSV for a ``.csv`` path, JSON otherwise."""
    path = Path(path)
    text = region_text(expl, ranking, path.suffix.lower() == ".csv")
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
