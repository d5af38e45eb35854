"""Explain a batch of items into one folder: resumable, one failure never stops it, sharded.

Layout of the output folder::

    items/<id>-<hash>.tam.npz        one explanation per finished item (written atomically)
    index.jsonl.rank<r>.jsonl        what process r finished, one record per line (fsynced)
    index.jsonl.run.json             the settings, so that a resume never mixes two runs
    index.jsonl                      the merged index, in item order (at the end)
    batch.json                       counts of the finished batch

An item's explanation is saved (atomically: a killed write leaves only a ``.part`` file) before
its record is appended, so an item is finished exactly when it has a record; a kill between the
two redoes the item. Process ``r`` of ``n`` takes items ``i % n == r`` (the evaluation's store
and process layout, :mod:`tam_engine.eval`); rank 0 merges after a barrier, so the index does
not depend on how many processes ran.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tam_engine.batch.index import (
    BATCH_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    INDEX_FILE,
    ITEMS_DIR,
    error_record,
    ok_record,
    write_index,
)
from tam_engine.batch.items import BatchItem, item_file_name
from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.core.errors import Cancelled, TamError
from tam_engine.core.explanation import Explanation
from tam_engine.eval.runner import (
    check_run_config,
    rank_file,
    read_records,
    run_shard,
)

ExplainItem = Callable[[BatchItem], Explanation]


@dataclass
class BatchSummary:
    n_items: int
    n_ok: int
    n_errors: int
    index: Path


def _finished(out: Path, recs: dict[str, dict], retry_errors: bool) -> set[str]:
    """Ids that need no work: a result whose file is there, or a recorded failure."""
    done = set()
    for key, rec in recs.items():
        if rec.get("status") == "ok" and (out / rec["file"]).is_file():
            done.add(key)
        elif rec.get("status") == "error" and not retry_errors:
            done.add(key)
    return done


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TamError):
        return str(exc).replace("\n", " (hint: ", 1) + (")" if exc.hint else "")
    # Not a user's error (a bug, an out-of-memory): its type and place still go to the index
    # so that the batch can go on and the failure can be reported.
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


def explain_one(item: BatchItem, explain: ExplainItem, out: Path) -> dict:
    """Explain one item and save it; a failure becomes an error record."""
    name = item_file_name(item.id)
    # A process killed while saving this item left its temporary file: drop it.
    for part in (out / ITEMS_DIR).glob(f".{name}.*.part"):
        part.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        expl = explain(item)
        expl.meta["item"] = item.id
        t1 = time.perf_counter()
        expl.save(out / ITEMS_DIR / name)
    except (Cancelled, KeyboardInterrupt):
        raise
    except Exception as exc:
        return error_record(item, _describe(exc),
                            {"total": round(time.perf_counter() - t0, 3)})
    seconds = {"explain": round(t1 - t0, 3), "total": round(time.perf_counter() - t0, 3),
               **expl.meta.get("timings", {})}
    return ok_record(item, expl, f"{ITEMS_DIR}/{name}", seconds)


def run_batch(items: Sequence[BatchItem], explain: ExplainItem, out: str | Path,
              config: dict | None = None, rank: int = 0, world_size: int = 1,
              barrier: Callable[[], None] | None = None, progress: bool = True,
              retry_errors: bool = False) -> BatchSummary | None:
    """Explain this process's shard of ``items`` into ``out``; rank 0 merges the index and
    returns the summary (other ranks ``None``). Finished items are skipped."""
    out = Path(out)
    index = out / INDEX_FILE
    (out / ITEMS_DIR).mkdir(parents=True, exist_ok=True)
    check_run_config(index, dict(config or {}), rank)
    done = _finished(out, read_records(index), retry_errors)
    def note(item: BatchItem, rec: dict) -> str | None:
        return f"tam: item {item.id!r} failed: {rec['error']}" if rec["status"] == "error" \
            else None

    if not run_shard(items, done, rank, world_size, progress, "explain", rank_file(index, rank),
                     lambda item: explain_one(item, explain, out), barrier, note):
        return None
    return merge_index(out, items)


def merge_index(out: Path, items: Sequence[BatchItem]) -> BatchSummary:
    """Write ``index.jsonl`` in item order from every process's records."""
    recs = read_records(out / INDEX_FILE)
    missing = [it.id for it in items if it.id not in recs]
    if missing:
        raise TamError(f"{len(missing)} item(s) have no result yet (first: {missing[0]}).",
                       "Run the same command again to finish them.")
    ordered = [recs[it.id] for it in items]
    write_index(out / INDEX_FILE, ordered)
    n_ok = sum(r["status"] == "ok" for r in ordered)
    summary = BatchSummary(len(ordered), n_ok, len(ordered) - n_ok, out / INDEX_FILE)
    doc = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "n_items": summary.n_items,
           "n_ok": n_ok, "n_errors": summary.n_errors}
    atomic_write_bytes(out / BATCH_FILE, json.dumps(doc, indent=1).encode("utf-8"))
    return summary
