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

from tam_engine.explanation import Explanation, TokenKind
from tam_engine.render.colormaps import colormap_lut
from tam_engine.render.figure import resize_frame
from tam_engine.render.fonts import visible
from tam_engine.render.overlay import heatmap


def relevance_rows(expl: Explanation, kind: TokenKind) -> list[list[float | None]]:
    """Normalised relevances (joint [0, 1] scale) of each token's context; ``None`` outside."""
    tm = expl.tokens(kind)
    rows = []
    for k in range(len(tm)):
        r = tm.normalised_relevance(k)
        rows.append([None if not np.isfinite(v) else round(float(v), 4) for v in r])
    return rows


def _data_uri(image: np.ndarray) -> str:
    from tam_engine.export import png_bytes

    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def _token_html(text: str, attrs: str) -> str:
    lead = text[:1] == " "
    body = text[1:] if lead else text
    br = body.endswith("\n")
    shown = visible(body) or "\u2423"
    return ((" " if lead else "") + f'<span class="tok" {attrs}>{html.escape(shown)}</span>'
            + ("<br>" if br else ""))


def build_html(expl: Explanation, media_index: int = 0, frame: int = 0, cmap: str = "jet",
               opacity: float = 0.5, image_width: int = 480,
               tick: Callable[[int, int], None] | None = None) -> str:
    kinds: list[TokenKind] = ["answer"]
    if expl.prompt is not None:
        kinds.append("prompt")
    total = sum(len(expl.tokens(k)) for k in kinds)
    base_uri = ""
    size = (image_width, image_width * 3 // 4)
    has_media = bool(expl.grids) and media_index < len(expl.media)
    if has_media:
        m = expl.media[media_index]
        base = resize_frame(m.frames[min(frame, m.n_frames - 1)], image_width)
        size = (base.shape[1], base.shape[0])
        base_uri = _data_uri(base)
    elif expl.grids:
        g = expl.grids[0]
        size = (image_width, max(1, image_width * g.h // max(g.w, 1)))
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
            fm = expl.frame_map(k, media_index, frame, kind)
            # 16 px per cell is smooth enough; the browser scales the rest of the way.
            hw = min(size[0], fm.shape[1] * 16)
            hh = max(1, int(round(hw * size[1] / size[0])))
            maps[f"{kind[0]}{k}"] = _data_uri(heatmap(fm, (hw, hh), cmap))
    if tick is not None:
        tick(total, total)

    cands = {}
    c = expl.candidates
    if c is not None and c.k:
        probs = c.topk_softmax(min(3, c.k))
        for k in range(min(len(expl.answer), c.ids.shape[0])):
            cands[k] = [[c.texts[k][i], round(float(probs[k, i]), 4)]
                        for i in range(probs.shape[1])]
    lut = ["#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb)) for rgb in colormap_lut(cmap)]
    data = {
        "lut": lut,
        "maps": maps,
        "rel": {kind[0]: relevance_rows(expl, kind) for kind in kinds},
        "nPrompt": int(expl.prompt_positions.size),
        "texts": {"a": expl.answer_texts, "p": expl.prompt_texts},
        "cands": cands,
    }
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    prompt_html = "".join(_token_html(t, f'data-col="{i}" data-key="p{i}"')
                          for i, t in enumerate(expl.prompt_texts))
    n_p = expl.prompt_positions.size
    answer_html = "".join(_token_html(t, f'data-col="{n_p + i}" data-key="a{i}"')
                          for i, t in enumerate(expl.answer_texts))
    title = html.escape(str(expl.meta.get("model", "TAM explanation")))
    prompt_text = html.escape(str(expl.meta.get("prompt", "")))
    bar = "".join(f'<i style="background:{h}"></i>' for h in lut[::-8])
    return _TEMPLATE.format(
        title=title, prompt=prompt_text, w=size[0], h=size[1], base=base_uri,
        base_display="block" if base_uri else "none", opacity=opacity,
        heat_opacity=opacity if base_uri else 1.0, prompt_html=prompt_html,
        answer_html=answer_html, payload=payload, bar=bar,
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
<div><div id="view"><img id="base" src="{base}" alt="media">
<img id="heat" alt="" style="opacity:{heat_opacity}"></div>
<div id="bar">{bar}</div></div>
<div id="side">
<div>Opacity <input id="op" type="range" min="0" max="1" step="0.05" value="{opacity}">
 <span id="cap"></span></div>
<div class="label">Prompt</div><div id="prompt">{prompt_html}</div>
<div class="label">Answer (hover a token; click to keep it)</div><div id="answer">{answer_html}</div>
<div class="label">Top candidates</div><div id="cands"></div>
</div>
<script id="tam-data" type="application/json">{payload}</script>
<script>
const D = JSON.parse(document.getElementById("tam-data").textContent);
const toks = Array.from(document.querySelectorAll(".tok"));
const heat = document.getElementById("heat");
let pinned = "a0";
function ink(hex) {{
  const r = parseInt(hex.substr(1, 2), 16), g = parseInt(hex.substr(3, 2), 16),
        b = parseInt(hex.substr(5, 2), 16);
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#000" : "#fff";
}}
function show(key) {{
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
  heat.src = D.maps[key] || "";
  heat.style.display = D.maps[key] ? "block" : "none";
  const text = (D.texts[kind][k] || "").trim();
  document.getElementById("cap").textContent =
    (kind === "a" ? "answer" : "prompt") + " token " + (k + 1) + ": \\u201c" + text + "\\u201d";
  const c = kind === "a" ? D.cands[k] : null;
  document.getElementById("cands").innerHTML = "";
  (c || []).forEach(([t, p]) => {{
    const s = document.createElement("span");
    s.textContent = t.trim() + "  " + Math.round(p * 100) + "%";
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
show(pinned);
</script>
</body></html>
"""
