"""Run an evaluation: explain every item, score it, resume after interruptions, scale out.

Each process takes the items ``i`` with ``i % world_size == rank`` and appends one JSON line
per finished item to its own file ``<out>.rank<r>.jsonl`` (flushed and fsynced per item, so an
interruption loses at most the item in flight). A restart skips every id already in any rank
file. After a barrier, rank 0 reads all rank files, orders the records as the dataset does and
writes ``<out>`` (per-item records + summary) atomically: the numbers do not depend on how many
processes ran.

Ablations come from one generation per item: the explain function receives a list of
:class:`TamOptions` and returns one explanation per option set, re-running only the engine.

With ``faithfulness`` (a spec and a probability factory, :mod:`tam_engine.eval.faithfulness`),
each item's record also holds its deletion/insertion curves; they are part of the same record,
so resuming and sharding work unchanged.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.core.errors import Cancelled, TamError
from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.eval.chance import CHANCE_LINES
from tam_engine.eval.datasets import EvalDataset, EvalItem
from tam_engine.eval.faithfulness import (
    FaithfulnessError,
    FaithfulnessSpec,
    ProbFactory,
    faithfulness_record,
    format_faithfulness,
    summarize_faithfulness,
)
from tam_engine.eval.metrics import POINTING_TOLERANCE, f1_iou, meteor, rouge_l
from tam_engine.eval.scoring import score_explanation

ExplainFn = Callable[[EvalItem, Sequence[TamOptions]], list[Explanation]]
#: What ``--faithfulness`` measures, and how the model is re-run for it.
Faithfulness = tuple[FaithfulnessSpec, ProbFactory]

ABLATION_VARIANTS: dict[str, TamOptions] = {
    "neither": TamOptions(eci=False, filter=False),
    "eci": TamOptions(eci=True, filter=False),
    "filter": TamOptions(eci=False, filter=True),
    "both": TamOptions(eci=True, filter=True),
}


class ResumeMismatchError(TamError):
    """Partial results on disk belong to a different evaluation."""


def variants_for(no_eci: bool = False, no_filter: bool = False, ablation: bool = False
                 ) -> dict[str, TamOptions]:
    """The option sets a run reports: all four for an ablation, else the one chosen."""
    if ablation:
        return {k: replace(v) for k, v in ABLATION_VARIANTS.items()}
    name = {(False, False): "both", (True, False): "filter", (False, True): "eci",
            (True, True): "neither"}[(no_eci, no_filter)]
    return {name: replace(ABLATION_VARIANTS[name])}


# --------------------------------------------------------------------------- JSONL store
def rank_file(out: Path, rank: int) -> Path:
    return out.with_name(f"{out.name}.rank{rank}.jsonl")


def _rank_files(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{out.name}.rank*.jsonl"))


def read_records(out: Path) -> dict[str, dict]:
    """Every complete record of every rank file, by item id (a torn last line is ignored)."""
    recs: dict[str, dict] = {}
    for path in _rank_files(out):
        with path.open("r", encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                key = str(rec["id"])
                # A retried item may have an error record and a result: the result wins.
                if key not in recs or "error" in recs[key] or "error" not in rec:
                    recs[key] = rec
    return recs


class JsonlAppender:
    """Appends one record per line; a line is on disk (fsync) before the next item starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a+b")
        # A kill mid-write can leave a torn last line: cut it so the next line starts clean.
        self._fh.seek(0, os.SEEK_END)
        size = self._fh.tell()
        if size:
            self._fh.seek(0)
            data = self._fh.read()
            if not data.endswith(b"\n"):
                self._fh.truncate(data.rfind(b"\n") + 1)
        self._fh.seek(0, os.SEEK_END)

    def append(self, record: dict) -> None:
        self._fh.write(json.dumps(record).encode("utf-8") + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def check_run_config(out: Path, config: dict, rank: int) -> None:
    """Refuse to mix partial results of a different run into this one."""
    path = out.with_name(f"{out.name}.run.json")
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != config:
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise ResumeMismatchError(
                f"{out} already has partial results of a different evaluation "
                f"(differs in: {', '.join(diff)}).",
                f"Use another --out, or delete {path.name} and {out.name}.rank*.jsonl to start "
                "over.")
    elif rank == 0:
        atomic_write_bytes(path, json.dumps(config, indent=1).encode("utf-8"))


# --------------------------------------------------------------------------- one item
def clean_caption(texts: Sequence[str], special: Sequence[bool] | np.ndarray) -> str:
    """The generated answer without its special tokens (``special``: the tokenizer's mask,
    :meth:`Explanation.special`; what a chat model ends or pads its answer with), white space
    collapsed. A special token separates the words on either side of it."""
    return " ".join("".join(" " if s else t for t, s in zip(texts, special)).split())


def evaluate_item(item: EvalItem, explain_fn: ExplainFn, variants: dict[str, TamOptions],
                  faithfulness: Faithfulness | None = None,
                  tolerance: float = POINTING_TOLERANCE) -> dict:
    t0 = time.perf_counter()
    expls = explain_fn(item, list(variants.values()))
    t_explain = time.perf_counter() - t0
    masks = item.masks()
    answer = expls[0].answer_text
    caption = clean_caption(expls[0].answer.texts, expls[0].special())
    rec: dict = {"id": item.id, "media": item.media, "caption": caption, "answer": answer,
                 "references": item.references, "n_tokens": expls[0].n_answer,
                 "grids": [[g.t, g.h, g.w] for g in expls[0].grids],
                 "rouge_l": rouge_l(caption, item.references) if item.references else None,
                 "meteor": meteor(caption, item.references) if item.references else None,
                 "variants": {name: score_explanation(e, item, masks, tolerance=tolerance)
                              for name, e in zip(variants, expls)},
                 # the same words scored with maps that know nothing of the image
                 "chance": {c: score_explanation(expls[0], item, masks, chance=c,
                                                 tolerance=tolerance)
                            for c in CHANCE_LINES}}
    if faithfulness is not None:
        spec, factory = faithfulness
        first = rec["variants"][next(iter(variants))]["obj"]
        rec["faithfulness"] = faithfulness_record(item, expls, list(variants), first, factory,
                                                  spec)
    rec["seconds"] = {"explain": round(t_explain, 3),
                      "total": round(time.perf_counter() - t0, 3),
                      **expls[0].meta.get("timings", {})}
    return rec


# --------------------------------------------------------------------------- summary
def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def summarize(records: list[dict], variant_names: Sequence[str],
              faithfulness: Sequence[str] = ()) -> dict:
    """Dataset means (over all scored words of all items, in dataset order); with
    ``faithfulness`` (metric names), the deletion/insertion AUCs too."""
    ok = [r for r in records if "error" not in r]
    out: dict = {"n_items": len(records), "n_errors": len(records) - len(ok),
                 "rouge_l": _mean([r["rouge_l"] for r in ok if r.get("rouge_l") is not None]),
                 "meteor": _mean([r["meteor"] for r in ok if r.get("meteor") is not None]),
                 "variants": {}}
    for v in variant_names:
        out["variants"][v] = _line([r["variants"][v] for r in ok])
    # Records written before the chance lines existed (a resumed run) have none: no line is
    # better than one computed over a subset of the items.
    if ok and all("chance" in r for r in ok):
        out["chance"] = {c: _line([r["chance"][c] for r in ok]) for c in CHANCE_LINES}
    if faithfulness:
        out["faithfulness"] = summarize_faithfulness(records, faithfulness, variant_names)
    return out


def _line(scored: list[dict]) -> dict:
    """One summary row from the per-item scores of one variant (or chance line)."""
    obj = [e for s in scored for e in s["obj"]]
    func = [e["func_iou"] for s in scored for e in s["func"]]
    o, f = _mean([e["iou"] for e in obj]), _mean(func)
    # Records from before the pointing game have no hits: no figure rather than a partial one.
    hits = ([h for e in obj for h in e["point_hits"]]
            if all("point_hits" in e for e in obj) else [])
    return {
        "obj_iou": o, "func_iou": f,
        "f1_iou": f1_iou(o, f) if o is not None and f is not None else None,
        "precision": _mean([e["precision"] for e in obj]),
        "recall": _mean([e["recall"] for e in obj]),
        "pointing": _mean([float(h) for h in hits]),
        "n_obj": len(obj), "n_func": len(func), "n_point": len(hits),
        "n_absent_nouns": sum(len(s["absent_nouns"]) for s in scored),
    }


def format_summary(summary: dict) -> str:
    """A plain-text table of the summary, one row per variant (values in percent)."""
    def pct(x: float | None) -> str:
        return "   -  " if x is None else f"{100 * x:6.2f}"

    head = (f"{'variant':<9} {'Obj-IoU':>7} {'Func-IoU':>8} {'F1-IoU':>7} {'Prec':>6} "
            f"{'Recall':>6} {'Point':>6} {'#obj':>6} {'#func':>6}")
    lines = [head, "-" * len(head)]

    def row(name: str, s: dict) -> str:
        return (f"{name:<9} {pct(s['obj_iou']):>7} {pct(s['func_iou']):>8} "
                f"{pct(s['f1_iou']):>7} {pct(s['precision']):>6} {pct(s['recall']):>6} "
                f"{pct(s.get('pointing')):>6} {s['n_obj']:>6} {s['n_func']:>6}")

    lines += [row(name, s) for name, s in summary["variants"].items()]
    if summary.get("chance"):
        lines.append("chance lines (same words, maps that ignore the image):")
        lines += [row(name, s) for name, s in summary["chance"].items()]
    lines.append(f"items: {summary['n_items']} (errors: {summary['n_errors']})   "
                 f"ROUGE-L: {pct(summary['rouge_l']).strip()}   "
                 f"METEOR (exact match): {pct(summary['meteor']).strip()}")
    faith = summary.get("faithfulness")
    if faith:
        metrics = list(next(iter(faith["variants"].values())))
        lines += ["", format_faithfulness(faith, metrics)]
    elif "faithfulness" in summary:
        lines.append("faithfulness: not reported (some records were made without it)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the loop

def run_shard(items: Sequence[Any], done: set[str], rank: int, world_size: int,
              progress: bool, name: str, rank_path: Path, work: Callable[[Any], dict],
              barrier: Callable[[], None] | None,
              note: Callable[[Any, dict], str | None] | None = None) -> bool:
    """Run ``work`` on this process's items still to do (every ``world_size``-th item from
    ``rank``, less the ``done`` ids), appending each record to ``rank_path`` as it comes, with
    a progress bar over the whole share when ``progress`` is on (tqdm: rate and time left from
    the items done in this run; ``note`` may add a line under it per record). Then wait at the
    ``barrier``; True on rank 0, which merges. Shared by ``tam eval`` and batch explanations."""
    shard = [it for i, it in enumerate(items) if i % world_size == rank]
    todo = [it for it in shard if it.id not in done]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(shard), initial=len(shard) - len(todo), unit="item",
                   desc=f"{name}[{rank}]" if world_size > 1 else name, position=rank,
                   file=sys.stderr, dynamic_ncols=True)
    writer = JsonlAppender(rank_path)
    try:
        for item in todo:
            rec = work(item)
            writer.append(rec)
            if bar is not None:
                bar.update(1)
                line = note(item, rec) if note is not None else None
                if line:
                    bar.write(line, file=sys.stderr)
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    if barrier is not None:
        barrier()
    return rank == 0


def run_eval(dataset: EvalDataset, explain_fn: ExplainFn, variants: dict[str, TamOptions],
             out: str | os.PathLike, config: dict | None = None, limit: int | None = None,
             rank: int = 0, world_size: int = 1, barrier: Callable[[], None] | None = None,
             progress: bool = True, retry_errors: bool = False,
             faithfulness: Faithfulness | None = None,
             pointing_tolerance: float = POINTING_TOLERANCE) -> dict | None:
    """Evaluate this process's shard; rank 0 returns the summary (others ``None``).

    Items already in the rank files are skipped; with ``retry_errors`` those recorded as
    failed are run again. ``faithfulness``: also measure deletion/insertion AUC
    (:mod:`~tam_engine.eval.faithfulness`); ``pointing_tolerance``: the pointing game's, in
    mask pixels.
    """
    out = Path(out)
    items = dataset.items[:limit] if limit else list(dataset.items)
    config = dict(config or {})
    config.setdefault("variants", list(variants))
    config.setdefault("format", dataset.format)
    config.setdefault("dataset", str(dataset.root.resolve()))
    # Only what changes the records; left out at their defaults, so older partial results
    # (before these options) still resume.
    if faithfulness is not None:
        config.setdefault("faithfulness", faithfulness[0].config())
    if pointing_tolerance != POINTING_TOLERANCE:
        config.setdefault("pointing_tolerance", pointing_tolerance)
    if faithfulness is not None and not any(it.kind == "image" for it in items):
        raise FaithfulnessError("Faithfulness is measured on images, and this dataset has none.",
                                "Run without --faithfulness, or on a dataset with images.")
    check_run_config(out, config, rank)
    done = {k for k, r in read_records(out).items() if not (retry_errors and "error" in r)}
    def work(item: EvalItem) -> dict:
        try:
            return evaluate_item(item, explain_fn, variants, faithfulness, pointing_tolerance)
        except (Cancelled, KeyboardInterrupt, FaithfulnessError):
            raise
        except TamError as exc:
            # A broken item (unreadable media, ...) is recorded, not retried forever.
            return {"id": item.id, "media": item.media, "error": str(exc)}

    if not run_shard(items, done, rank, world_size, progress, "eval", rank_file(out, rank),
                     work, barrier):
        return None
    metrics = list(faithfulness[0].metrics) if faithfulness is not None else []
    return write_results(out, items, list(variants), config, metrics)


def write_results(out: Path, items: list[EvalItem], variant_names: list[str],
                  config: dict, faithfulness: Sequence[str] = ()) -> dict:
    recs = read_records(out)
    missing = [it.id for it in items if it.id not in recs]
    if missing:
        raise TamError(f"{len(missing)} item(s) have no result yet (first: {missing[0]}).",
                       "Run the same command again to finish them.")
    ordered = [recs[it.id] for it in items]
    summary = summarize(ordered, variant_names, faithfulness)
    # Timings vary run to run; they stay out of the summary, which depends only on the data.
    secs = {k: _mean([r["seconds"][k] for r in ordered if k in r.get("seconds", {})])
            for k in ("total", "generate_s", "engine_s")}
    doc = {"format": "tam-eval", "version": 1, "config": config, "summary": summary,
           "seconds_per_item": {k: v for k, v in secs.items() if v is not None},
           "items": ordered}
    atomic_write_bytes(out, json.dumps(doc, indent=1).encode("utf-8"))
    return summary
