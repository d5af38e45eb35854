"""Long videos and long answers (issue 16): explain, memory, file, save and reopen at three sizes.

Run from the repository root::

    python benchmarks/bench_scale.py                 # new path vs the baseline release
    python benchmarks/bench_scale.py --sizes 0 1     # the two smaller rows only
    python benchmarks/bench_scale.py --no-baseline   # this tree only

Inputs are synthetic but of real shape: a Qwen2-VL-like sequence (scaffold, one video of
``slots`` temporal slots of 18 x 18 merged vision tokens, 40 prompt tokens, the answer), hidden
size 1536, answers drawn from a pool of 300 ids (so same-text exclusion matters, as in real
captions), and the video's displayed frames: two per slot, 504 x 504 RGB (18 merged tokens of 28
px), a moving scene with mild noise. The ``lm_head`` has 8,192 rows instead of 151,936: the
engine only gathers the rows of the explained classes, so the vocabulary size does not change
its work, and the bench stays inside this machine's memory.

"Baseline" is the code of a git revision (default: the release before issue 16), exported with
``git archive`` and run in its own process on the very same inputs; every measurement runs in a
fresh process so peaks do not mix. Columns:

- explain: wall time of ``engine.explain`` (the product included), the median of three runs
  in the process (the first one in a fresh process, which also gives the peak), and in
  brackets the CPU time of the process (all threads): this machine's wall times vary by
  +-15 % from run to run even when it is otherwise idle, and on a shared machine the wall
  time mostly measures the other users;
- extra peak: peak resident memory during ``explain`` minus the resident memory before it
  (``/proc/self/status`` VmHWM after resetting it through ``/proc/self/clear_refs``);
- file, save: size of the ``.tam.npz`` and wall (CPU) time of ``Explanation.save``;
- reopen: wall time of ``Explanation.load`` plus the first map (``vision_vector(0)``) and the
  first displayed frame, i.e. what the window needs to show something.
- maps: whether the new uint8 maps equal the baseline's, cell for cell (from saved files).

With the largest row run, a GUI row follows: the new file opened in the main window offscreen
at 1920 x 1080 (:func:`gui_row`), with the same switches on a short video in the same window
and process for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = 1536
VOCAB = 8192
N_PROMPT = 40
GRID = 18
FRAME_PX = GRID * 28
BASELINE = "4ba2fad"
SIZES = [(4, 256), (32, 512), (128, 1024)]  # (temporal slots, answer tokens)
EXPLAIN_RUNS = 3


def make_inputs(slots: int, n_answer: int, seed: int = 0):
    """A Qwen2-VL-like layout: scaffold, one video block, prompt text, scaffold, answer."""
    import numpy as np
    import torch

    from tam_engine.core.inputs import TamInputs
    from tam_engine.core.spans import Spans, VisionGrid

    rng = np.random.default_rng(seed)
    n_pre, n_post = 14, 5
    pos = n_pre + 1                                   # <|vision_start|>
    nv = slots * GRID * GRID
    grid = VisionGrid(kind="video", media_index=0, t=slots, h=GRID, w=GRID,
                      positions=np.arange(pos, pos + nv))
    pos += nv + 1                                     # ... <|vision_end|>
    prompt = np.arange(pos, pos + N_PROMPT)
    L = pos + N_PROMPT + n_post
    T = n_answer
    pool = rng.choice(VOCAB, size=300, replace=False)
    ids = rng.choice(pool, size=L + T)
    texts = [f" w{int(i)}" for i in ids]
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(L + T - 1, HIDDEN, generator=g)
    weight = torch.randn(VOCAB, HIDDEN, generator=g) * 0.05
    return TamInputs(ids=ids, input_len=L, hidden=hidden, lm_weight=weight, lm_bias=None,
                     spans=Spans(grids=(grid,), prompt_positions=prompt), token_texts=texts)


def make_media(slots: int, seed: int = 0):
    """Two displayed frames per slot: a gradient background, two moving discs, mild noise."""
    import numpy as np

    from tam_engine.core.media import MediaItem

    n = 2 * slots
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:FRAME_PX, 0:FRAME_PX]
    base = np.stack([xx * 200 // FRAME_PX + 20, yy * 180 // FRAME_PX + 30,
                     np.full_like(xx, 110)], -1).astype(np.int16)
    frames = np.empty((n, FRAME_PX, FRAME_PX, 3), np.uint8)
    for i in range(n):
        f = base.copy()
        for cx, cy, col in (((40 + 3 * i) % FRAME_PX, 200, (230, 40, 40)),
                            (300, (60 + 2 * i) % FRAME_PX, (40, 60, 230))):
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 45 ** 2
            f[disc] = col
        f += rng.integers(-3, 4, size=f.shape, dtype=np.int16)
        frames[i] = np.clip(f, 0, 255)
    return MediaItem(kind="video", path="long.mp4", frames=frames,
                     frame_slot=np.arange(n) // 2, timestamps=np.arange(n) / 2.0, fps=2.0)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def worker(slots: int, n_answer: int, out: Path, keep_maps: Path | None) -> dict:
    """One row, measured in this process (run it under the tree to measure via PYTHONPATH)."""
    import gc

    import numpy as np

    from tam_engine.core.engine import explain
    from tam_engine.core.explanation import Explanation

    inputs = make_inputs(slots, n_answer)
    media = make_media(slots)
    gc.collect()
    rss0 = _rss_kib("VmRSS")
    exact_peak = _reset_peak()
    c0, t0 = time.process_time(), time.perf_counter()
    expl = explain(inputs, media=[media], meta={"model": "bench", "prompt": "Describe"})
    runs = [(time.perf_counter() - t0, time.process_time() - c0)]
    peak = _rss_kib("VmHWM")
    for _ in range(EXPLAIN_RUNS - 1):
        del expl
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        expl = explain(inputs, media=[media], meta={"model": "bench", "prompt": "Describe"})
        runs.append((time.perf_counter() - t0, time.process_time() - c0))
    runs.sort()
    t_explain, c_explain = runs[len(runs) // 2]
    row = {"explain": t_explain, "explain_cpu": c_explain, "extra_mib": (peak - rss0) / 1024,
           "exact_peak": exact_peak, "explain_runs": [r[0] for r in runs]}
    if keep_maps is not None:
        np.save(keep_maps, np.asarray(expl.answer.maps[:, :]))
    del inputs
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    expl.save(out)
    row["save"], row["save_cpu"] = time.perf_counter() - t0, time.process_time() - c0
    row["file_mb"] = out.stat().st_size / 1e6
    del expl
    gc.collect()
    t0 = time.perf_counter()
    back = Explanation.load(out)
    first = back.vision_vector(0)
    frame = back.media[0].frames[0]
    row["reopen"] = time.perf_counter() - t0
    assert first.dtype == np.uint8 and frame.shape == (FRAME_PX, FRAME_PX, 3)
    return row


def gui_row(path: Path, switches: int = 40) -> dict:
    """The app with the long explanation open, offscreen at 1920 x 1080: token and frame switch
    (state change until the media view painted: wall time, and in brackets the median CPU time
    of the UI thread, which a shared machine inflates far less), the longest UI stall (a 5 ms
    heartbeat) while opening, while switching (including the pauses between switches), and
    while scrolling the filmstrip, the token strip and the timeline, and the process's resident
    memory; and how long after a token switch the text
    map (laid out once the switch has been painted) shows the new token."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TAM_DESKTOP_CONFIG_DIR", tempfile.mkdtemp(prefix="tam-bench-cfg-"))
    import statistics

    import numpy as np
    from PySide6.QtCore import QThreadPool, QTimer
    from PySide6.QtWidgets import QApplication

    from tam_desktop.app import settle_heap
    from tam_desktop.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow(save_on_close=False)
    window.resize(1920, 1080)
    window.show()
    settle_heap()   # as the app does at start (tam_desktop.app.run_app)
    app.processEvents()
    view, st = window.pane.media_view, window.state
    ticks: list[float] = []
    beat = QTimer()
    beat.setInterval(5)
    beat.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def pump(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)

    cpu_ms: list[float] = []   # the UI thread's CPU time of each switch (same order)

    def painted_after(change) -> float:
        done: list[int] = []
        view.painted.connect(lambda: done.append(1))
        c0, t0 = time.thread_time(), time.perf_counter()
        change()
        while not done and time.perf_counter() - t0 < 5.0:
            app.processEvents()
        view.painted.disconnect()
        cpu_ms.append((time.thread_time() - c0) * 1000.0)
        return (time.perf_counter() - t0) * 1000.0

    beat.start()
    t0 = time.perf_counter()
    window.open_explanation(str(path))
    while st.explanation is None and time.perf_counter() - t0 < 60:
        app.processEvents()
        time.sleep(0.001)
    pump(0.05)
    t_open = time.perf_counter() - t0
    expl = st.explanation
    assert expl is not None
    pump(0.5)
    opened = len(ticks)
    rng = np.random.default_rng(0)
    token_ms = [painted_after(lambda k=int(k): st.set_token(k))
                for k in rng.integers(0, expl.n_answer, switches)]
    token_cpu = statistics.median(cpu_ms)
    cpu_ms.clear()
    # The text map is laid out once the switch has been painted (a burst of switches lays it
    # out once, at its end): from the switch until it is laid out and painted, switch by switch.
    text_map = window.pane.text_map
    text_ms = []
    for k in rng.integers(0, expl.n_answer, 10):
        t0 = time.perf_counter()
        st.set_token(int(k))
        while text_map.pending and time.perf_counter() - t0 < 5.0:
            app.processEvents()
        app.processEvents()
        text_ms.append((time.perf_counter() - t0) * 1000.0)
        pump(0.05)
    cpu_ms.clear()
    n_frames = expl.media[0].n_frames
    frame_ms = [painted_after(lambda f=int(f): st.cursor.set_frame(f))
                for f in rng.integers(0, n_frames, switches)]
    frame_cpu = statistics.median(cpu_ms)
    pump(0.2)
    from PySide6.QtWidgets import QScrollArea

    scrolled = len(ticks)
    for area in window.findChildren(QScrollArea):
        bar = area.horizontalScrollBar() if area.horizontalScrollBar().maximum() else \
            area.verticalScrollBar()
        for v in np.linspace(0, bar.maximum(), 40):
            bar.setValue(int(v))
            pump(0.01)
    pump(0.2)
    beat.stop()
    beats = np.asarray(ticks)

    def stall(a: int, b: int) -> float:
        """The longest gap between heartbeats a-1 .. b, less the beat's 5 ms."""
        return float(np.diff(beats[max(0, a - 1):b]).max() * 1000.0 - 5.0)

    stalls = {"stall_open_ms": stall(0, opened), "stall_switch_ms": stall(opened, scrolled),
              "stall_scroll_ms": stall(scrolled, len(beats))}
    rss = _rss_kib("VmRSS") / 1024
    # The same switches on a short video (8 frames, 32 tokens) in the same window and process:
    # on a shared machine, the ratio says what the length costs.
    from tam_engine.testing.synthetic import synthetic_explanation

    short = synthetic_explanation("video", width=FRAME_PX, height=FRAME_PX, n_frames=8,
                                  grid_hw=(GRID, GRID), n_answer=32)
    window.show_explanation(short)
    pump(0.5)
    short_token = [painted_after(lambda k=int(k): st.set_token(k))
                   for k in rng.integers(0, short.n_answer, switches)]
    short_frame = [painted_after(lambda f=int(f): st.cursor.set_frame(f))
                   for f in rng.integers(0, 8, switches)]
    row = {"short_token_ms": statistics.median(short_token),
           "short_frame_ms": statistics.median(short_frame), "open": t_open, "token_ms": statistics.median(token_ms),
           "token_max_ms": max(token_ms), "frame_ms": statistics.median(frame_ms),
           "token_cpu_ms": token_cpu, "frame_cpu_ms": frame_cpu,
           "text_map_ms": statistics.median(text_ms),
           "frame_max_ms": max(frame_ms), "stall_ms": max(stalls.values()), **stalls,
           "rss_mib": rss, "peak_mib": _rss_kib("VmHWM") / 1024}
    window.close()
    QThreadPool.globalInstance().waitForDone(30_000)
    return row


def _run_worker(tree: Path, slots: int, n_answer: int, tmp: Path, tag: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    maps = tmp / f"{tag}_{slots}_{n_answer}_maps.npy"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(slots), str(n_answer),
           str(tmp / f"{tag}_{slots}_{n_answer}.tam.npz"), str(maps)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
    if proc.returncode:
        raise SystemExit(f"{tag} worker failed:\n{proc.stdout}\n{proc.stderr}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["maps"] = str(maps)
    return row


def _export_baseline(rev: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "tam_engine"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[0, 1, 2],
                    help="rows to run: 0 = 4 slots/256 tokens, 1 = 32/512, 2 = 128/1024")
    ap.add_argument("--baseline", default=BASELINE, help="git revision of the old path")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--gui-file", help=argparse.SUPPRESS)
    ap.add_argument("--no-gui", action="store_true", help="skip the GUI row")
    args = ap.parse_args()
    if args.gui_file:
        print(json.dumps(gui_row(Path(args.gui_file))))
        return
    if args.worker:
        slots, n, out, maps = args.worker
        print(json.dumps(worker(int(slots), int(n), Path(out), Path(maps))))
        return

    import numpy as np

    with tempfile.TemporaryDirectory(prefix="bench_scale_") as td:
        tmp = Path(td)
        trees = {"new": ROOT}
        if not args.no_baseline:
            (tmp / "old").mkdir()
            trees["old"] = _export_baseline(args.baseline, tmp / "old")
        load = os.getloadavg()
        print(f"bench_scale: {os.cpu_count()} CPUs, load average {load[0]:.1f} at start "
              f"(a shared machine inflates absolute times; compare the new/old ratios, measured "
              f"side by side)")
        print(f"old = git {args.baseline} (the release before issue 16), new = this tree\n")
        head = ("| video (slots x grid) | answer tokens | path | explain, median of 3 (CPU) | extra peak "
                "memory | file | save (CPU) | reopen to first map | maps = old |")
        print(head)
        print("|---" * (head.count("|") - 1) + "|")
        for i in args.sizes:
            slots, n = SIZES[i]
            rows = {tag: _run_worker(tree, slots, n, tmp, tag) for tag, tree in trees.items()}
            same = ""
            if "old" in rows:
                a, b = np.load(rows["old"]["maps"]), np.load(rows["new"]["maps"])
                diff = int(np.count_nonzero(a != b))
                same = "identical" if diff == 0 else f"{diff} of {a.size} cells differ"
            for tag in trees:
                r = rows[tag]
                print(f"| {slots} x {GRID} x {GRID} | {n:,} | {tag} | {r['explain']:.2f} s "
                      f"({r['explain_cpu']:.2f} s) | {r['extra_mib']:,.0f} MB | "
                      f"{r['file_mb']:.1f} MB | {r['save']:.2f} s ({r['save_cpu']:.2f} s) | "
                      f"{r['reopen']:.3f} s | {same if tag == 'new' else ''} |")
            if "old" in rows:
                o, w = rows["old"], rows["new"]
                print(f"| | | new/old | {w['explain'] / o['explain']:.2f} "
                      f"({w['explain_cpu'] / o['explain_cpu']:.2f}) | "
                      f"{w['extra_mib'] / max(o['extra_mib'], 1e-9):.2f} | "
                      f"{w['file_mb'] / o['file_mb']:.2f} | {w['save'] / o['save']:.2f} "
                      f"({w['save_cpu'] / o['save_cpu']:.2f}) | "
                      f"{w['reopen'] / o['reopen']:.2f} | |")
            sys.stdout.flush()
        if 2 in args.sizes and not args.no_gui:
            _print_gui(tmp / f"new_{SIZES[2][0]}_{SIZES[2][1]}.tam.npz")
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


def _print_gui(path: Path) -> None:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--gui-file",
                           str(path)], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"GUI row failed:\n{proc.stdout}\n{proc.stderr}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nGUI, offscreen 1920 x 1080, {path.name} opened in the app (new path only: the "
          "old one's 332 MB file is what this replaces)")
    print("| open (read + shown) | token switch median / max (UI CPU) | frame switch median / "
          "max (UI CPU) | longest UI stall: opening / switching / scrolling | process memory "
          "now / peak |")
    print("|---|---|---|---|---|")
    print(f"| {r['open']:.2f} s | {r['token_ms']:.1f} / {r['token_max_ms']:.1f} ms "
          f"({r['token_cpu_ms']:.1f} ms) | {r['frame_ms']:.1f} / {r['frame_max_ms']:.1f} ms "
          f"({r['frame_cpu_ms']:.1f} ms) | {r['stall_open_ms']:.0f} / "
          f"{r['stall_switch_ms']:.0f} / {r['stall_scroll_ms']:.0f} ms | "
          f"{r['rss_mib']:,.0f} / {r['peak_mib']:,.0f} MB |")
    print(f"| same window, a short video (8 frames, 32 tokens) | {r['short_token_ms']:.1f} ms "
          f"| {r['short_frame_ms']:.1f} ms | | |")
    print(f"\nThe text map is laid out after the switch has been painted: {r['text_map_ms']:.1f} ms "
          "from a token switch until it is laid out and painted too (median of 10, one at a time).")


if __name__ == "__main__":
    main()
