"""A self-contained HTML page for an explanation: hover a token to see its map.

The page embeds the media frame once (PNG) and every token's colour-mapped map as a small
base64 PNG (the map is resized bilinearly on values, coloured, and left to the browser to
scale smoothly over the frame, with an opacity slider). Text relevances are embedded as JSON
and coloured in the page with the same colour table, so the page needs no network and no
server.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable

import numpy as np

from tam_engine.core.explanation import Explanation
from tam_engine.core.flags import evidence_flags
from tam_engine.core.inputs import PROBABILITY_LABEL, percent
from tam_engine.core.placement import DEFAULT_LAYER, Layer, border_boxes
from tam_engine.core.token_maps import TokenKind
from tam_engine.core.tokens import display_token
from tam_engine.render.colormaps import DEFAULT_OPACITY, colormap_lut
from tam_engine.render.figure import resize_frame
from tam_engine.render.overlay import draw_boxes, heatmap
from tam_engine.render.png import png_bytes
from tam_engine.render.scale import DEFAULT_SCALE, MapScale, scale_top


def relevance_rows(expl: Explanation, kind: TokenKind) -> list[list[float | None]]:
    """Normalised relevances (joint [0, 1] scale) of each token's context; ``None`` outside."""
    tm = expl.tokens(kind)
    rows = []
    for k in range(len(tm)):
        r = tm.normalised_relevance(k)
        rows.append([None if not np.isfinite(v) else round(float(v), 4) for v in r])
    return rows


def data_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def smallest_uri(image: np.ndarray) -> str:
    """A frame as PNG or JPEG, whichever is smaller (photos: JPEG; drawings: PNG)."""
    import io

    from PIL import Image

    png = data_uri(image)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    jpg = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return jpg if len(jpg) < len(png) else png


def _token_html(text: str, attrs: str) -> str:
    # A word-start space stays a real space outside the box and a final newline breaks the
    # line, so the tokens read as the text they are.
    lead = text[:1] == " "
    br = text.endswith("\n")
    shown = display_token(text)
    return ((" " if lead else "") + f'<span class="tok" {attrs}>{html.escape(shown)}</span>'
            + ("<br>" if br else ""))


def heat_layer(expl: Explanation, k: int, kind: TokenKind, media_index: int, frame: int,
               cmap: str, size: tuple[int, int], layer: Layer, tile_borders: bool,
               scale: MapScale = DEFAULT_SCALE, tokens: list[int] | None = None) -> np.ndarray:
    """Token ``k``'s coloured map (or that of the selection ``tokens``, a word's) placed where
    the grids looked, at ``size``; transparent (RGBA) where no grid saw the picture, so the
    page shows the plain frame there."""
    chosen = tokens or [k]
    top = scale_top(expl, chosen, scale, media_index, kind=kind)
    placed = expl.placed_selection(chosen, media_index, frame, kind=kind, layer=layer,
                                   size=size, as_float=top < 255)
    img = heatmap(placed.values, size, cmap, vmax=top / 255.0)
    if tile_borders:
        img = draw_boxes(img, border_boxes(
            [expl.grids[i] for i in expl.item_grids(media_index)], layer))
    if placed.covers_all:
        return img
    alpha = np.where(placed.coverage, 255, 0).astype(np.uint8)
    return np.concatenate([img, alpha[..., None]], axis=2)


def cells_across(expl: Explanation, media_index: int) -> int:
    """How many cells the item's finest grid has across the whole frame."""
    grids = [expl.grids[i] for i in expl.item_grids(media_index)] or expl.grids[:1]
    return max(int(round(g.w / (g.box[2] - g.box[0]))) for g in grids)


def build_html(expl: Explanation, media_index: int = 0, frame: int = 0, cmap: str = "jet",
               opacity: float = DEFAULT_OPACITY, image_width: int = 480,
               tick: Callable[[int, int], None] | None = None, layer: Layer = DEFAULT_LAYER,
               tile_borders: bool = False, scale: MapScale = DEFAULT_SCALE) -> str:
    kinds: list[TokenKind] = ["answer"]
    if expl.prompt is not None:
        kinds.append("prompt")
    total = sum(len(expl.tokens(k)) for k in kinds)
    size = (image_width, image_width * 3 // 4)
    frame_uris: list[str] = [""]
    slots = [0]
    times = [0.0]
    if expl.grids and media_index < len(expl.media):
        m = expl.media[media_index]
        # A video embeds all its sampled frames (a slider picks one); an image its one frame.
        shown = range(m.n_frames) if m.kind == "video" else [min(frame, m.n_frames - 1)]
        frames = [resize_frame(m.frames[f], image_width) for f in shown]
        size = (frames[0].shape[1], frames[0].shape[0])
        frame_uris = [smallest_uri(f) for f in frames]
        slots = [int(m.frame_slot[f]) for f in shown]
        times = [round(float(m.timestamps[f]), 3) for f in shown]
        frame = frame if m.kind == "video" else 0
    elif expl.grids:
        g = expl.grids[0]
        size = (image_width, max(1, image_width * g.h // max(g.w, 1)))
        frame = 0
    frame = min(max(frame, 0), len(frame_uris) - 1)
    # One displayed frame per temporal slot is enough: frames sharing a slot share a map.
    slot_frame: dict[int, int] = {}
    for i, s_ in enumerate(slots):
        slot_frame.setdefault(s_, i)
    maps: dict[str, str] = {}
    done = 0
    for kind in kinds:
        tm = expl.tokens(kind)
        for k in range(len(tm)):
            if tick is not None:
                tick(done, total)
            done += 1
            if not expl.grids:
                continue
            # 16 px per cell is smooth enough; the browser scales the rest of the way.
            hw = min(size[0], cells_across(expl, media_index) * 16)
            hh = max(1, int(round(hw * size[1] / size[0])))
            for slot, i in slot_frame.items():
                shown_frame = i if len(frame_uris) > 1 else frame
                maps[f"{kind[0]}{k}s{slot}"] = data_uri(heat_layer(
                    expl, k, kind, media_index, shown_frame, cmap, (hw, hh), layer,
                    tile_borders, scale))
    if tick is not None:
        tick(total, total)

    cands = {}
    c = expl.candidates
    if c is not None and c.k:
        for k in range(min(len(expl.answer), c.ids.shape[0])):
            cands[k] = [[text, percent(p)] for _id, text, p in c.top(k, 3)]
    lut = ["#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb)) for rgb in colormap_lut(cmap)]
    data = {
        "lut": lut,
        "maps": maps,
        "frames": frame_uris,
        "slots": slots,
        "times": times,
        "frame": frame,
        "rel": {kind[0]: relevance_rows(expl, kind) for kind in kinds},
        "nPrompt": int(expl.prompt_positions.size),
        "texts": {"a": expl.answer_texts, "p": expl.prompt_texts},
        "cands": cands,
    }
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    prompt_html = "".join(_token_html(t, f'data-col="{i}" data-key="p{i}"')
                          for i, t in enumerate(expl.prompt_texts))
    n_p = expl.prompt_positions.size
    # Flagged object words: underlined, the reason in the hover text (the scripts restyle a
    # token's class, background and colour, never its border).
    flags = evidence_flags(expl.answer, expl.special()) if expl.n_answer else None

    def flag_attrs(i: int) -> str:
        note = flags.note(i) if flags is not None else None
        return ("" if note is None else
                f' style="border-bottom: 3px solid #e8710a" title="{html.escape(note)}"')

    answer_html = "".join(_token_html(t, f'data-col="{n_p + i}" data-key="a{i}"' + flag_attrs(i))
                          for i, t in enumerate(expl.answer_texts))
    title = html.escape(str(expl.meta.get("model", "TAM explanation")))
    prompt_text = html.escape(str(expl.meta.get("prompt", "")))
    bar = "".join(f'<i style="background:{h}"></i>' for h in lut[::-8])
    has_base = bool(frame_uris[0])
    return _TEMPLATE.format(
        title=title, prompt=prompt_text, w=size[0], h=size[1],
        base_display="block" if has_base else "none", opacity=opacity,
        heat_opacity=opacity if has_base else 1.0, prompt_html=prompt_html,
        answer_html=answer_html, payload=payload, bar=bar, last=len(frame_uris) - 1,
        slider_display="inline" if len(frame_uris) > 1 else "none",
        prob_label=PROBABILITY_LABEL,
    )


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title} - token activation maps</title>
<style>
body {{ font-family: "DejaVu Sans", "Noto Sans", "Segoe UI", sans-serif; margin: 20px;
       color: #222; }}
#view {{ position: relative; width: {w}px; height: {h}px; background: #eee; float: left;
        margin-right: 8px; }}
#view img {{ position: absolute; left: 0; top: 0; width: {w}px; height: {h}px; }}
#base {{ display: {base_display}; }}
#bar {{ float: left; height: {h}px; width: 14px; display: flex; flex-direction: column; }}
#bar i {{ flex: 1; }}
#side {{ clear: both; padding-top: 10px; max-width: 900px; }}
.tok {{ padding: 1px 3px; margin: 1px 0; border-radius: 2px; cursor: pointer;
       line-height: 1.9; white-space: pre; }}
.tok.later {{ color: #999; }}
.tok.cur {{ background: #000 !important; color: #fff !important; }}
.label {{ color: #777; font-size: 0.8em; margin-top: 8px; }}
#cands span {{ border: 1px solid #888; padding: 1px 5px; margin-right: 6px; }}
</style></head>
<body>
<h3>{title}</h3>
<div class="label">{prompt}</div>
<div><div id="view"><img id="base" alt="media">
<img id="heat" alt="" style="opacity:{heat_opacity}"></div>
<div id="bar">{bar}</div></div>
<div id="side">
<div>Opacity <input id="op" type="range" min="0" max="1" step="0.05" value="{opacity}">
 <span style="display:{slider_display}">Frame <input id="fr" type="range" min="0"
 max="{last}" step="1" value="0"> <span id="ft"></span></span> <span id="cap"></span></div>
<div class="label">Prompt</div><div id="prompt">{prompt_html}</div>
<div class="label">Answer (hover a token; click to keep it)</div><div id="answer">{answer_html}</div>
<div class="label">Top candidates ({prob_label})</div><div id="cands"></div>
</div>
<script id="tam-data" type="application/json">{payload}</script>
<script>
const D = JSON.parse(document.getElementById("tam-data").textContent);
const toks = Array.from(document.querySelectorAll(".tok"));
const heat = document.getElementById("heat");
let pinned = "a0", current = "a0", F = D.frame;
function ink(hex) {{
  const r = parseInt(hex.substr(1, 2), 16), g = parseInt(hex.substr(3, 2), 16),
        b = parseInt(hex.substr(5, 2), 16);
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#000" : "#fff";
}}
function show(key) {{
  current = key;
  const kind = key[0], k = parseInt(key.slice(1));
  const rel = D.rel[kind][k];
  const cur = kind === "a" ? D.nPrompt + k : k;
  toks.forEach(t => {{
    const col = parseInt(t.dataset.col);
    t.className = "tok"; t.style.background = ""; t.style.color = "";
    if (col === cur) {{ t.className = "tok cur"; return; }}
    const v = rel[col];
    if (v === null || v === undefined) {{ t.className = "tok later"; return; }}
    const hex = D.lut[Math.round(v * 255)];
    t.style.background = hex; t.style.color = ink(hex);
  }});
  const mk = key + "s" + D.slots[F];
  if (D.frames[F]) document.getElementById("base").src = D.frames[F];
  heat.src = D.maps[mk] || "";
  heat.style.display = D.maps[mk] ? "block" : "none";
  document.getElementById("ft").textContent = (F + 1) + "/" + D.frames.length + " at " +
    D.times[F].toFixed(1) + " s";
  const text = (D.texts[kind][k] || "").trim();
  document.getElementById("cap").textContent =
    (kind === "a" ? "answer" : "prompt") + " token " + (k + 1) + ": \\u201c" + text + "\\u201d";
  const c = kind === "a" ? D.cands[k] : null;
  document.getElementById("cands").innerHTML = "";
  (c || []).forEach(([t, p]) => {{
    const s = document.createElement("span");
    s.textContent = t.trim() + "  " + p;
    document.getElementById("cands").appendChild(s);
  }});
}}
toks.forEach(t => {{
  t.addEventListener("mouseenter", () => show(t.dataset.key));
  t.addEventListener("mouseleave", () => show(pinned));
  t.addEventListener("click", () => {{ pinned = t.dataset.key; show(pinned); }});
}});
document.getElementById("op").addEventListener("input", e => {{
  if (document.getElementById("base").style.display !== "none") heat.style.opacity = e.target.value;
}});
document.getElementById("fr").value = F;
document.getElementById("fr").addEventListener("input", e => {{
  F = parseInt(e.target.value); show(current);
}});
show(pinned);
</script>
</body></html>
"""
