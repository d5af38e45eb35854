"""Data exports: the text maps as JSON, the maps as NPZ arrays, and one self-contained HTML
page."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np

from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.core.evidence import VISUAL_EVIDENCE_LABEL, visual_evidence
from tam_engine.core.explanation import Explanation
from tam_engine.core.flags import evidence_flags, flags_description
from tam_engine.core.inputs import PROBABILITY_LABEL
from tam_engine.core.placement import DEFAULT_LAYER, Layer
from tam_engine.core.token_maps import TokenKind
from tam_engine.export.common import Progress, ShouldStop, check_grid, tick
from tam_engine.inference.capture.given import GIVEN_META
from tam_engine.render.colormaps import DEFAULT_COLORMAP, DEFAULT_OPACITY
from tam_engine.render.scale import DEFAULT_SCALE, MapScale


def explanation_json(expl: Explanation) -> dict:
    """Tokens, ids, relevances and candidates as plain JSON-able data."""
    from tam_engine.render.html_page import relevance_rows

    def tokens(kind: TokenKind) -> list[dict]:
        tm = expl.tokens(kind)
        rel = relevance_rows(expl, kind)
        strength = tm.visual_strength()
        evidence = visual_evidence(tm)  # None without the float stages
        # Flags are of the answer's object words (a prompt is not what the model said).
        flagged = (evidence_flags(tm, expl.special(kind), score=strength).flagged
                   if kind == "answer" else None)
        out = []
        for k in range(len(tm)):
            d = {"index": k, "id": int(tm.token_ids[k]), "text": tm.texts[k],
                 "position": int(tm.positions[k]),
                 "visual_strength": round(float(strength[k]), 6),
                 "visual_evidence": (None if evidence is None
                                     else round(float(evidence[k]), 6)),
                 "evidence_flag": None if flagged is None else bool(flagged[k]),
                 "eci_alpha": round(float(tm.alpha[k]), 6),
                 "relevance": rel[k],
                 "raw_relevance": [round(float(v), 6) if c else None
                                   for v, c in zip(tm.relevance[k], tm.context[k])]}
            c = expl.candidates
            if kind == "answer" and c is not None and k < c.ids.shape[0]:
                d["candidates"] = [
                    {"id": int(c.ids[k, i]), "text": c.texts[k][i],
                     "logit": round(float(c.logits[k, i]), 6),
                     "prob": round(float(c.probs[k, i]), 6)}
                    for i in range(c.k)]
            out.append(d)
        return out

    return {
        # Version 2: candidates carry only "prob", the softmax over the whole vocabulary (the
        # one meaning of a candidate probability everywhere); version 1 also had a softmax
        # over the top 3 ("top3_softmax"), which disagreed with the app.
        "format": "tam-text-maps", "version": 2,
        "visual_evidence": VISUAL_EVIDENCE_LABEL,
        "evidence_flag": flags_description(expl),
        # A given answer (teacher forcing) is not what the model generated: say so up front
        # (meta["given_answer"] holds its text and the probability of each given token).
        "answer_source": ("given (teacher forcing)" if isinstance(expl.meta.get(GIVEN_META),
                                                                  dict) else "generated"),
        "candidate_prob": "softmax over the full vocabulary (" + PROBABILITY_LABEL + ")",
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


def _strict_json(value: object) -> object:
    """``value`` with every NaN or infinite float as ``None``: JSON has no NaN/Infinity, and
    the ``NaN`` that ``json.dumps`` writes by default is not JSON that other readers accept."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    if isinstance(value, np.generic):
        return _strict_json(value.item())
    if isinstance(value, np.ndarray):
        return _strict_json(value.tolist())
    return value


def export_json(expl: Explanation, path: str | os.PathLike) -> Path:
    """The text maps (tokens, ids, relevances, candidates) as JSON (strict: no NaN)."""
    data = json.dumps(_strict_json(explanation_json(expl)), ensure_ascii=False, indent=1,
                      default=str, allow_nan=False)
    atomic_write_bytes(path, data.encode("utf-8"))
    return Path(path)


def export_npz(expl: Explanation, path: str | os.PathLike) -> Path:
    """The maps as arrays: per kind, the uint8 maps and the raw/ECI/filtered float maps (left
    out, with ``{kind}_float_stages`` False, when a reopened long explanation lacks them), and
    each grid's maps reshaped to ``(N, t, h, w)``; each grid's media item, role and box of the
    original frame (``(x0, y0, x1, y1)`` fractions) to place them. No pickles."""
    arrays: dict[str, np.ndarray] = {}
    for kind in ("answer", "prompt"):
        tm = expl.answer if kind == "answer" else expl.prompt
        if tm is None:
            continue
        arrays[f"{kind}_texts"] = np.array(tm.texts, dtype=str)
        arrays[f"{kind}_ids"] = tm.token_ids
        # A long explanation reopened from its file may have only its final maps (its float
        # stages were not saved): the export then says so instead of holding them.
        stages = tm.has_float_stages
        arrays[f"{kind}_float_stages"] = np.array(stages)
        for name in ("maps", "raw", "eci", "filtered", "relevance", "context"):
            if stages or name not in ("raw", "eci", "filtered"):
                arrays[f"{kind}_{name}"] = np.asarray(getattr(tm, name))
        for gi, maps in enumerate(_grid_stacks(expl, kind)):
            arrays[f"{kind}_grid{gi}"] = maps
    arrays["grid_shapes"] = np.array([[g.t, g.h, g.w] for g in expl.grids], np.int64).reshape(-1, 3)
    arrays["grid_media"] = np.array([g.media_index for g in expl.grids], np.int64)
    arrays["grid_roles"] = np.array([g.role for g in expl.grids], dtype=str)
    arrays["grid_boxes"] = np.array([g.box for g in expl.grids], np.float64).reshape(-1, 4)
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
                frame: int = 0, cmap: str = DEFAULT_COLORMAP, opacity: float = DEFAULT_OPACITY,
                image_width: int = 480, progress: Progress | None = None,
                should_stop: ShouldStop | None = None, layer: Layer = DEFAULT_LAYER,
                tile_borders: bool = False, scale: MapScale = DEFAULT_SCALE) -> Path:
    """One self-contained HTML page: hover (or click) a token to see its map and text map."""
    from tam_engine.render.html_page import build_html

    if expl.grids:
        check_grid(expl, media_index)
    page = build_html(expl, media_index, frame, cmap, opacity, image_width,
                      tick=lambda i, n: tick(i, n, progress, should_stop), layer=layer,
                      tile_borders=tile_borders, scale=scale)
    atomic_write_bytes(path, page.encode("utf-8"))
    return Path(path)
