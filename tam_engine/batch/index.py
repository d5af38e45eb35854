"""The index of a batch: one JSON line per item, in the order of the items.

A record holds the item (id, media, prompt, given answer), where its explanation is
(``file``, relative to the batch folder), what the model answered, each answer token with its
visual evidence (mean of its final map, :meth:`TokenMaps.visual_strength`), the words of the
answer with theirs, the strongest content word (``top_word``, what a gallery thumbnail shows),
the timings and ``status`` (``ok``, or ``error`` with the message in ``error``).

While a batch runs, each process appends to its own ``index.jsonl.rank<r>.jsonl`` (the
evaluation's store, :mod:`tam_engine.eval.runner`); the finished batch has ``index.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tam_engine.batch.items import BatchItem
from tam_engine.core.explanation import Explanation
from tam_engine.core.words import group_words
from tam_engine.eval.runner import clean_caption, read_records
from tam_engine.eval.words import is_function_word

INDEX_FILE = "index.jsonl"
ITEMS_DIR = "items"
BATCH_FILE = "batch.json"
FORMAT_NAME = "tam-batch"
FORMAT_VERSION = 1

def item_words(expl: Explanation) -> tuple[list[dict], int | None]:
    """The answer's words with their visual evidence (mean over their tokens), and the index of
    the strongest content word (not a function word, punctuation or special token), if any."""
    strength = expl.answer.visual_strength()
    special = expl.special()
    words = []
    top, best = None, -1.0
    for w in group_words(expl.answer.texts):
        toks = [k for k in w.tokens if not special[k]]
        if not toks:
            continue
        ev = float(np.mean(strength[toks]))
        words.append({"text": w.text, "tokens": toks, "evidence": round(ev, 4)})
        if not w.is_punct and not is_function_word(w.key) and ev > best:
            top, best = len(words) - 1, ev
    return words, top


def ok_record(item: BatchItem, expl: Explanation, file: str, seconds: dict) -> dict:
    words, top = item_words(expl)
    rec = _item_fields(item)
    rec.update({
        # The answer as read: without the special tokens a chat model ends it with.
        "status": "ok", "file": file, "answer": clean_caption(expl.answer.texts, expl.special()),
        "tokens": list(expl.answer.texts),
        "visual_evidence": [round(float(v), 4) for v in expl.answer.visual_strength()],
        "words": words, "top_word": top, "seconds": seconds,
    })
    return rec


def error_record(item: BatchItem, error: str, seconds: dict) -> dict:
    rec = _item_fields(item)
    rec.update({"status": "error", "error": error, "file": None, "answer": None,
                "tokens": [], "visual_evidence": [], "words": [], "top_word": None,
                "seconds": seconds})
    return rec


def _item_fields(item: BatchItem) -> dict:
    rec: dict = {"id": item.id, "media": list(item.media), "prompt": item.prompt,
                 "given_answer": item.answer, "notes": []}
    return rec


def write_index(path: Path, records: list[dict]) -> None:
    from tam_engine.core.atomic import atomic_write_bytes

    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    atomic_write_bytes(path, data.encode("utf-8"))


def read_index(folder: str | Path) -> list[dict]:
    """The records of a batch folder: the merged index, or (a batch still running or
    interrupted) every finished record of the per-process files, ordered by id."""
    folder = Path(folder)
    path = folder / INDEX_FILE
    if path.is_file():
        with path.open("r", encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    recs = read_records(path)
    if not recs and not (folder / BATCH_FILE).is_file():
        from tam_engine.core.errors import TamError

        raise TamError(f"{folder} is not a batch folder (no {INDEX_FILE}).",
                       "Open the --out folder of a `tam explain` run over a folder, a glob or "
                       "a manifest.")
    return [recs[k] for k in sorted(recs)]
