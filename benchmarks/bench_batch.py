"""Whole datasets: batch throughput, and the gallery with many items.

1. ``explain``: items per second of ``tam explain FOLDER`` over N demo images (synthetic
   scenes, the bundled demo model, CPU), one process, then two processes under
   ``accelerate launch`` (each process loads the model once; time from start to the merged
   index, so start-up is included; and the rate of the explaining itself, from the index).
2. ``gallery``: the gallery widget over N synthetic items (records of a few real explanation
   files, each item its own thumbnail): time from handing over the records to the first paint
   of the grid and to the first screen of thumbnails; then scrolling through the whole grid
   while thumbnails render: the longest gap of a 5 ms UI heartbeat (the longest stall a user
   could feel) and the longest single scroll step; the process's peak memory (RSS).

    python benchmarks/bench_batch.py explain [--n 200]
    QT_QPA_PLATFORM=offscreen python benchmarks/bench_batch.py gallery [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TAM_DESKTOP_CONFIG_DIR", tempfile.mkdtemp(prefix="tam-bench-config-"))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _demo_images(folder: Path, n: int) -> None:
    from tam_engine.demo.synth import encode_png, make_image_scene

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"scene{i:04d}.png").write_bytes(encode_png(make_image_scene(i, 224).image))


def _explain_rate(out: Path) -> float:
    recs = [json.loads(x) for x in (out / "index.jsonl").read_text().splitlines()]
    return len(recs) / max(1e-9, sum(r["seconds"]["total"] for r in recs))


def bench_explain(n: int, tokens: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tam-bench-batch-"))
    _demo_images(tmp / "imgs", n)
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    args = ["explain", str(tmp / "imgs"), "--max-new-tokens", str(tokens), "--device", "cpu",
            "--no-progress"]
    runs = {
        "1 process": [sys.executable, "-m", "tam_engine.cli", *args, "--out", str(tmp / "one")],
        "2 processes": [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                        "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                        "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
                        "-m", "tam_engine.cli", *args, "--out", str(tmp / "two")],
    }
    print(f"{n} demo images (224x224), demo model, CPU, {tokens} new tokens, OMP_NUM_THREADS=1")
    for (name, cmd), out in zip(runs.items(), ("one", "two")):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        wall = time.perf_counter() - t0
        per_process = _explain_rate(tmp / out)
        print(f"  {name:<12} {n / wall:6.2f} items/s end to end ({wall:6.1f} s with start-up); "
              f"explaining alone {per_process:5.2f} items/s per process")


def bench_gallery(n: int, screens: int) -> None:
    import psutil
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from tam_desktop.gallery.view import GalleryWidget
    from tam_engine.batch.index import ok_record
    from tam_engine.batch.items import BatchItem
    from tam_engine.testing.synthetic import synthetic_explanation

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="tam-bench-gallery-"))
    (tmp / "items").mkdir()
    files = []
    for j in range(8):
        expl = synthetic_explanation(n_answer=6 + j, seed=j, width=320, height=240)
        expl.save(tmp / "items" / f"e{j}.tam.npz")
        files.append(expl)
    records = []
    for i in range(n):
        j = i % len(files)
        rec = ok_record(BatchItem(f"item{i:05d}", (f"x{i}.png",), "Describe"), files[j],
                        f"items/e{j}.tam.npz", {"total": 1.0})
        rec["answer"] = f"{rec['answer']} #{i}"  # its own thumbnail (the cache key)
        records.append(rec)

    w = GalleryWidget()
    w.resize(1400, 900)
    w.show()

    class Painted(QObject):
        at: float | None = None

        def eventFilter(self, obj, ev):  # noqa: N802
            if ev.type() == QEvent.Type.Paint and self.at is None:
                self.at = time.perf_counter()
            return False

    painted = Painted()
    w.view.viewport().installEventFilter(painted)
    model = w.model
    bar = w.view.verticalScrollBar()

    def on_screen() -> list[int]:
        rect = w.view.viewport().rect()
        rows: list[int] = []
        for r in range(model.rowCount()):
            if w.view.visualRect(model.index(r)).intersects(rect):
                rows.append(r)
            elif rows:
                break
        return rows

    # Everything runs inside one app.exec(), driven by timers: PySide6 6.12 on Python 3.11
    # leaks a reference to None on every processEvents() / nested event loop from Python,
    # which crashes a long busy-wait benchmark.
    res: dict = {"steps": [], "gaps": []}
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        res["gaps"].append((now - last[0]) * 1000 - 5)
        last[0] = now

    heart = QTimer()
    heart.timeout.connect(beat)
    poll = QTimer()
    state = {"phase": "paint", "value": 0, "t": 0.0}

    def step() -> None:
        now = time.perf_counter()
        if state["phase"] == "paint" and painted.at is not None:
            res["first_paint"] = (painted.at - t0) * 1000
            state["phase"] = "screen"
        elif state["phase"] == "screen":
            if all(model.has_thumbnail(r) for r in on_screen()) or now - t0 > 120:
                res["first_screen"] = (now - t0) * 1000
                res["cells"] = len(on_screen())
                state["phase"], state["t"] = "scroll", now
                last[0] = time.perf_counter()
                heart.start(5)
        elif state["phase"] == "scroll" and now - state["t"] >= 0.1:
            # A person looks at each screen a little: thumbnails render meanwhile.
            if state["value"] >= bar.maximum():
                state["phase"] = "drain"
                heart.stop()
                return
            page = bar.pageStep()
            state["value"] = min(bar.maximum(),
                                 state["value"] + page * max(1, bar.maximum() // (page * screens)))
            s0 = time.perf_counter()
            bar.setValue(state["value"])
            w.view.viewport().repaint()  # the paint of the new screen, timed with the step
            res["steps"].append((time.perf_counter() - s0) * 1000)
            state["t"] = time.perf_counter()
        elif state["phase"] == "drain" and not model.busy:
            poll.stop()
            app.quit()

    poll.timeout.connect(step)
    t0 = time.perf_counter()
    w.set_batch(tmp, records)
    poll.start(1)
    app.exec()
    rss = psutil.Process().memory_info().rss / 2**20
    print(f"gallery, {n} items, window 1400x900, {len(res['steps'])} scroll steps over the grid:")
    print(f"  first paint of the grid      {res['first_paint']:8.1f} ms")
    print(f"  first screen of thumbnails   {res['first_screen']:8.1f} ms ({res['cells']} cells)")
    print(f"  longest scroll step (paint)  {max(res['steps']):8.1f} ms")
    print(f"  longest UI stall (heartbeat) {max(res['gaps']):8.1f} ms")
    print(f"  memory (RSS) afterwards      {rss:8.0f} MiB")
    w.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=("explain", "gallery"))
    ap.add_argument("--n", type=int, help="items (default: 200 to explain, 10000 in the "
                    "gallery)")
    ap.add_argument("--tokens", type=int, default=16, help="new tokens per item (explain)")
    ap.add_argument("--screens", type=int, default=40, help="scroll steps (gallery)")
    a = ap.parse_args()
    if a.part == "explain":
        bench_explain(a.n or 200, a.tokens)
    else:
        bench_gallery(a.n or 10_000, a.screens)


if __name__ == "__main__":
    main()
