"""Throughput of the MP4 sweep export: overlay rendering + H.264 encoding.

A 256-token sweep over a 1280x720 image (one frame per token, captions on) is timed end to end
through ``export_sweep_mp4``, beside the raw encode of the same frames pre-rendered, in the same
run, so the ratio shows what rendering costs on top of encoding. Run::

    python benchmarks/bench_export.py [--tokens 256] [--size 1280x720] [--preset veryfast]

The explanation is made by the real engine from random hidden states (no model needed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tam_engine.core.engine import explain  # noqa: E402
from tam_engine.core.inputs import TamInputs  # noqa: E402
from tam_engine.core.media import MediaItem  # noqa: E402
from tam_engine.core.spans import Spans, VisionGrid  # noqa: E402
from tam_engine.export import export_sweep_mp4, sweep_frames  # noqa: E402
from tam_engine.render.mp4 import H264Writer  # noqa: E402


def make_explanation(n_tokens: int, width: int, height: int, seed: int = 0):
    """An explanation with ``n_tokens`` answer tokens over one ``width x height`` image, with a
    Qwen2-VL-like grid (one cell per 28 px)."""
    rng = np.random.default_rng(seed)
    gh, gw = max(1, height // 28), max(1, width // 28)
    nv, n_prompt, d, vocab = gh * gw, 8, 64, 512
    L = 1 + nv + n_prompt
    ids = np.concatenate([[0], np.ones(nv, int), rng.integers(2, vocab, n_prompt + n_tokens)])
    words = ["the", "cat", "猫", "sits", "on", "a", "mat", "😀", "café", "and", "looks", "up"]
    texts = ["<s>"] + ["<img>"] * nv + [" " + words[i % len(words)]
                                        for i in range(n_prompt + n_tokens)]
    inputs = TamInputs(
        ids=ids, input_len=L, hidden=rng.normal(size=(L + n_tokens - 1, d)).astype(np.float32),
        lm_weight=rng.normal(size=(vocab, d)).astype(np.float32), lm_bias=None,
        spans=Spans(grids=(VisionGrid("image", 0, 1, gh, gw, np.arange(1, 1 + nv)),),
                    prompt_positions=np.arange(1 + nv, L)),
        token_texts=texts)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([(xx * 255 // width), (yy * 255 // height),
                    ((xx + yy) * 127 // (width + height)) + 64], axis=-1).astype(np.uint8)
    img = (img.astype(np.int16) + rng.integers(-20, 20, img.shape)).clip(0, 255).astype(np.uint8)
    return explain(inputs, media=[MediaItem(kind="image", path="bench.png", frames=img)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--fps", type=float, default=8.0, help="output frame rate of the MP4")
    ap.add_argument("--layout", choices=("overlay", "figure"), default="overlay",
                    help="overlay (the media's size) or the paper figure with its text map")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    n = args.tokens
    t0 = time.perf_counter()
    expl = make_explanation(n, w, h)
    t_engine = time.perf_counter() - t0
    print(f"machine: {os.cpu_count()} CPU(s), load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} (shared with other work)")
    print(f"explanation: {n} tokens, grid {expl.grids[0].h}x{expl.grids[0].w}, "
          f"image {w}x{h} (engine {t_engine:.2f} s)")
    width = w if args.layout == "figure" else None
    next(iter(sweep_frames(expl, layout=args.layout, width=width)))   # warm fonts, LUTs, cv2

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        frames = list(sweep_frames(expl, layout=args.layout, width=width))
        t_render = time.perf_counter() - t0

        t0 = time.perf_counter()
        with H264Writer(Path(tmp) / "raw.mp4", args.fps, crf=args.crf,
                        preset=args.preset) as writer:
            for f in frames:
                writer.write(f)
        t_raw = time.perf_counter() - t0
        raw_size = (Path(tmp) / "raw.mp4").stat().st_size

        t0 = time.perf_counter()
        export_sweep_mp4(expl, Path(tmp) / "sweep.mp4", fps=args.fps, crf=args.crf,
                         preset=args.preset, layout=args.layout, width=width)
        t_sweep = time.perf_counter() - t0

    fps_render, fps_raw, fps_sweep = n / t_render, n / t_raw, n / t_sweep
    fh, fw = frames[0].shape[:2]
    print(f"frames: {fw}x{fh}, layout {args.layout}")
    print(f"render only:                      {fps_render:7.1f} frames/s")
    print(f"raw encode of pre-rendered frames: {fps_raw:7.1f} frames/s "
          f"(libx264 {args.preset}, crf {args.crf}, {raw_size / 1e6:.1f} MB)")
    print(f"sweep export (render + encode):   {fps_sweep:7.1f} frames/s")
    print(f"ratio sweep / raw encode: {fps_sweep / fps_raw:.2f}")
    print(f"target >= 30 frames/s: {'met' if fps_sweep >= 30 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
