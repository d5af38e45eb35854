"""How fast is the TAM engine? Against the loop-by-loop reference and the one unavoidable product.

Run from the repository root::

    python benchmarks/bench_engine.py            # full sweep, full reference everywhere (minutes)
    python benchmarks/bench_engine.py --quick    # a smaller sweep (well under a minute)

Inputs are realistic in size and random in value: hidden size 1536, an ``lm_head`` of 151,936
float32 rows (~930 MB), 40 prompt tokens, answers of 32-512 tokens, images of 16x16 to 72x72
vision tokens and a video of 8 temporal slots of 18x18.

"product" is the work no TAM implementation can skip: gather the needed hidden rows and
``lm_head`` rows and multiply them once (float32, torch, as the engine does). The engine's time
includes that product. Times are medians of several runs; the reference runs once per case.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from reference_tam import reference_explain  # noqa: E402

from tam_engine.capture_types import TamInputs  # noqa: E402
from tam_engine.engine import explain, needed_rows_and_classes  # noqa: E402
from tam_engine.explanation import TamOptions  # noqa: E402
from tam_engine.spans import Spans, VisionGrid  # noqa: E402

HIDDEN = 1536
VOCAB = 151_936
N_PROMPT = 40


@dataclass
class Case:
    name: str
    grids: tuple[tuple[int, int, int], ...]
    n_answer: int
    reference: bool = True

    @property
    def n_vision(self) -> int:
        return sum(t * h * w for t, h, w in self.grids)


def make_inputs(weight: torch.Tensor, case: Case, seed: int = 0) -> TamInputs:
    """A Qwen2-VL-like layout: scaffold, vision block(s), prompt text, scaffold, answer."""
    rng = np.random.default_rng(seed)
    n_pre, n_post = 14, 5
    pos = n_pre
    grids = []
    for gi, (t, h, w) in enumerate(case.grids):
        pos += 1                                    # <|vision_start|>
        grids.append(VisionGrid(kind="video" if t > 1 else "image", media_index=gi, t=t, h=h,
                                w=w, positions=np.arange(pos, pos + t * h * w)))
        pos += t * h * w + 1                        # ... <|vision_end|>
    prompt = np.arange(pos, pos + N_PROMPT)
    L = pos + N_PROMPT + n_post
    T = case.n_answer
    # Answers reuse words (a pool of 300 ids), as real captions do: same-text exclusion matters.
    pool = rng.choice(VOCAB, size=300, replace=False)
    ids = rng.choice(pool, size=L + T)
    texts = [f" w{int(i)}" for i in ids]
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(L + T - 1, HIDDEN, generator=g)
    return TamInputs(ids=ids, input_len=L, hidden=hidden, lm_weight=weight, lm_bias=None,
                     spans=Spans(grids=tuple(grids), prompt_positions=prompt), token_texts=texts)


def product(inputs: TamInputs, rows: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """The unavoidable part: gather needed hidden and lm_head rows, one matmul."""
    with torch.no_grad():
        h = inputs.hidden.index_select(0, rows)
        w = inputs.lm_weight.index_select(0, classes)
        return h @ w.T


def median_times(fns: dict, repeats: int) -> dict:
    """Median wall time of each function, the functions interleaved run by run so that a
    busy machine slows them alike (their ratio is what this benchmark is about)."""
    for fn in fns.values():
        fn()  # warm-up: first touch of pages, thread pools
    times: dict = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def numpy_peak_mb(fn) -> float:
    """Peak of memory allocated through Python/numpy while ``fn`` runs (torch's own buffers,
    i.e. the gathered rows and the score matrix, are not seen by tracemalloc)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def torch_buffers_mb(inputs: TamInputs) -> float:
    rows, classes = needed_rows_and_classes(inputs)
    nr, nc = np.unique(rows).size, np.unique(classes).size
    return 4 * (nr * HIDDEN + nc * HIDDEN + nr * nc) / 2**20


def run_case(weight: torch.Tensor, case: Case, repeats: int) -> dict:
    inputs = make_inputs(weight, case)
    rows, classes = needed_rows_and_classes(inputs)
    rows_t = torch.as_tensor(np.unique(rows))
    cls_t = torch.as_tensor(np.unique(classes))
    options = TamOptions()
    med = median_times({"prod": lambda: product(inputs, rows_t, cls_t),
                        "eng": lambda: explain(inputs, options)}, repeats)
    t_prod, t_eng = med["prod"], med["eng"]
    peak = numpy_peak_mb(lambda: explain(inputs, options)) + torch_buffers_mb(inputs)
    t_ref = None
    if case.reference:
        t0 = time.perf_counter()
        reference_explain(inputs)
        t_ref = time.perf_counter() - t0
    return dict(case=case, t_prod=t_prod, t_eng=t_eng, t_ref=t_ref, peak=peak)


def fmt_row(r: dict) -> str:
    c: Case = r["case"]
    ref = "not run" if r["t_ref"] is None else f"{r['t_ref']:.1f}"
    speedup = "-" if r["t_ref"] is None else f"{r['t_ref'] / r['t_eng']:.0f}x"
    return (f"| {c.name} | {c.n_vision} | {c.n_answer} | {1e3 * r['t_eng']:.1f} | "
            f"{1e3 * r['t_prod']:.1f} | {r['t_eng'] / r['t_prod']:.2f} | {ref} | {speedup} | "
            f"{r['peak']:.0f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, smaller cases")
    ap.add_argument("--repeats", type=int, default=None, help="engine/product runs per case")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (5 if args.quick else 9)

    img = ((1, 36, 36),)
    if args.quick:
        cases = [Case("image 36x36", img, 256), Case("answer 32", img, 32, reference=False),
                 Case("image 16x16", ((1, 16, 16),), 256, reference=False)]
    else:
        cases = [Case("image 36x36", img, 256)]
        cases += [Case(f"answer {n}", img, n) for n in (32, 128, 512)]
        cases += [Case("image 16x16", ((1, 16, 16),), 256),
                  Case("image 72x72", ((1, 72, 72),), 256),
                  Case("video 8x18x18", ((8, 18, 18),), 256)]

    print(f"# bench_engine ({'quick' if args.quick else 'full'}), {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"load average before {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    weight = torch.randn(VOCAB, HIDDEN) * 0.02
    print(f"lm_head {VOCAB} x {HIDDEN} float32 ({weight.numel() * 4 / 2**20:.0f} MB) built in "
          f"{time.perf_counter() - t0:.1f} s; {N_PROMPT} prompt tokens; engine and product: "
          f"median of {repeats} interleaved runs; reference: one full run per case (no "
          "extrapolation).")
    print()
    print("| case | vision tokens | answer tokens | engine ms | product ms | engine / product "
          "| reference s | reference / engine | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    for case in cases:
        r = run_case(weight, case, repeats)
        results.append(r)
        print(fmt_row(r), flush=True)
    print()
    print("peak MB: numpy allocations during explain() (tracemalloc) plus torch's gathered rows "
          "and score matrix (computed from their shapes); the lm_head itself is not counted.")
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"load average after {os.getloadavg()[0]:.2f} (2-core machine shared with other "
          "jobs: compare ratios from the same run).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
