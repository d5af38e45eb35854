"""``tam export BATCH report``: one self-contained HTML page of a whole batch.

Every item is a card: its first frame with the map of the strongest content word, the answer
beneath, and, on hovering a word, that word's map (coloured and placed by the page renderer of
single explanations, :mod:`tam_engine.render.html_page`). Failed items show their error. The
page filters by a word of the answer and by status, needs no network and no server.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path

from tam_engine.batch.index import read_index
from tam_engine.core.explanation import Explanation
from tam_engine.core.placement import DEFAULT_LAYER
from tam_engine.render.colormaps import DEFAULT_COLORMAP, DEFAULT_OPACITY
from tam_engine.render.figure import resize_frame
from tam_engine.render.html_page import cells_across, data_uri, heat_layer, smallest_uri

CARD_WIDTH = 240


def _card(folder: Path, n: int, rec: dict, maps: dict[str, str], cmap: str, width: int) -> str:
    rid = html.escape(rec["id"])
    if rec["status"] != "ok":
        return (f'<div class="card err" data-status="error" data-words=""><div class="id">{rid}'
                f'</div><div class="msg">{html.escape(rec.get("error") or "failed")}</div></div>')
    expl = Explanation.load(folder / rec["file"])
    frame = resize_frame(expl.media[0].frames[0], width)
    size = (frame.shape[1], frame.shape[0])
    hw = min(size[0], cells_across(expl, 0) * 16)
    hh = max(1, int(round(hw * size[1] / size[0])))
    spans = []
    for j, w in enumerate(rec["words"]):
        key = f"i{n}w{j}"
        maps[key] = data_uri(heat_layer(expl, w["tokens"][0], "answer", 0, 0, cmap, (hw, hh),
                                        DEFAULT_LAYER, False, tokens=w["tokens"]))
        spans.append(f'<span class="w" data-key="{key}" title="visual evidence '
                     f'{w["evidence"]:.2f}">{html.escape(w["text"])}</span>')
    top = rec.get("top_word")
    top_key = f"i{n}w{top}" if top is not None else ""
    words = html.escape(" ".join(w["text"].lower() for w in rec["words"]))
    return (f'<div class="card" data-status="ok" data-words=" {words} " data-top="{top_key}">'
            f'<div class="view" style="width:{size[0]}px;height:{size[1]}px">'
            f'<img class="base" src="{smallest_uri(frame)}">'
            f'<img class="heat" data-top="{top_key}"></div>'
            f'<div class="id">{rid}</div><div class="ans">{" ".join(spans)}</div></div>')


def build_report(folder: str | Path, cmap: str = DEFAULT_COLORMAP,
                 opacity: float = DEFAULT_OPACITY, width: int = CARD_WIDTH,
                 tick: Callable[[int, int], None] | None = None) -> str:
    folder = Path(folder)
    records = read_index(folder)
    maps: dict[str, str] = {}
    cards = []
    for n, rec in enumerate(records):
        if tick is not None:
            tick(n, len(records))
        cards.append(_card(folder, n, rec, maps, cmap, width))
    if tick is not None:
        tick(len(records), len(records))
    n_err = sum(r["status"] != "ok" for r in records)
    payload = json.dumps(maps).replace("</", "<\\/")
    return _TEMPLATE.format(title=html.escape(folder.name), n=len(records), n_err=n_err,
                            cards="\n".join(cards), payload=payload, opacity=opacity)


def write_report(folder: str | Path, out: str | Path, **kwargs) -> Path:
    from tam_engine.core.atomic import atomic_write_bytes

    out = Path(out)
    atomic_write_bytes(out, build_report(folder, **kwargs).encode("utf-8"))
    return out


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title} - batch of token activation maps</title>
<style>
body {{ font-family: "DejaVu Sans", "Noto Sans", "Segoe UI", sans-serif; margin: 16px;
       color: #222; }}
#grid {{ display: flex; flex-wrap: wrap; gap: 10px; }}
.card {{ width: 250px; border: 1px solid #ccc; padding: 4px; font-size: 0.85em; }}
.card.err {{ background: #fee; }}
.view {{ position: relative; background: #eee; }}
.view img {{ position: absolute; left: 0; top: 0; width: 100%; height: 100%; }}
.heat {{ opacity: {opacity}; }}
.id {{ color: #777; font-size: 0.85em; margin-top: 3px; word-break: break-all; }}
.w {{ cursor: pointer; border-radius: 2px; }}
.w:hover {{ background: #000; color: #fff; }}
.hidden {{ display: none; }}
</style></head>
<body>
<h3>{title}: {n} items ({n_err} failed)</h3>
<p>Filter: <input id="q" placeholder="word in the answer">
<select id="st"><option value="">all</option><option value="ok">explained</option>
<option value="error">failed</option></select>
<span id="count"></span> &nbsp; Hover a word to see its map.</p>
<div id="grid">
{cards}
</div>
<script>
const MAPS = {payload};
for (const img of document.querySelectorAll("img.heat")) {{
  if (img.dataset.top) img.src = MAPS[img.dataset.top]; else img.style.display = "none";
}}
for (const w of document.querySelectorAll(".w")) {{
  const heat = w.closest(".card").querySelector("img.heat");
  w.addEventListener("mouseenter", () => {{ heat.src = MAPS[w.dataset.key];
                                            heat.style.display = "block"; }});
  w.addEventListener("mouseleave", () => {{
    if (heat.dataset.top) heat.src = MAPS[heat.dataset.top]; else heat.style.display = "none";
  }});
}}
function filter() {{
  const q = document.getElementById("q").value.trim().toLowerCase();
  const st = document.getElementById("st").value;
  let shown = 0;
  for (const c of document.querySelectorAll(".card")) {{
    const ok = (!q || c.dataset.words.includes(" " + q + " ")) && (!st || c.dataset.status === st);
    c.classList.toggle("hidden", !ok);
    shown += ok;
  }}
  document.getElementById("count").textContent = shown + " shown";
}}
document.getElementById("q").addEventListener("input", filter);
document.getElementById("st").addEventListener("change", filter);
filter();
</script>
</body></html>
"""
