"""How fast is the TAM engine? Against the loop-by-loop reference and the one unavoidable product.

Run from the repository root::

    python benchmarks/bench_engine.py              # full sweep, full reference everywhere
    python benchmarks/bench_engine.py --quick      # three cases, reference on the main one
    python benchmarks/bench_engine.py --threads 1  # one BLAS/torch thread (steadier timings)

Inputs are realistic in size and random in value: hidden size 1536, an ``lm_head`` of 151,936
float32 rows (~890 MiB), 40 prompt tokens, answers of 32-512 tokens, images of 16x16 to 72x72
vision tokens and a video of 8 temporal slots of 18x18.

"product" is the work no TAM implementation can skip: gather the needed hidden rows and
``lm_head`` rows and multiply them once (float32, torch, as the engine does). The engine's time
includes that product. Engine and product run interleaved, several times, and the medians are
reported, as wall time and as CPU time of this process (CPU time is steadier on a busy
machine). The reference runs once per case, in full: nothing is extrapolated.
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

ROOT = Path(__file__).resolve().parents[1]
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


def make_inputs(weight, case: Case, seed: int = 0):
    """A Qwen2-VL-like layout: scaffold, vision block(s), prompt text, scaffold, answer."""
    import numpy as np
    import torch

    from tam_engine.core.inputs import TamInputs
    from tam_engine.core.spans import Spans, VisionGrid

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
    pool = rng.choice(weight.shape[0], size=300, replace=False)
    ids = rng.choice(pool, size=L + T)
    texts = [f" w{int(i)}" for i in ids]
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(L + T - 1, HIDDEN, generator=g)
    return TamInputs(ids=ids, input_len=L, hidden=hidden, lm_weight=weight, lm_bias=None,
                     spans=Spans(grids=tuple(grids), prompt_positions=prompt), token_texts=texts)


def product(inputs, rows, classes):
    """The unavoidable part: gather needed hidden and lm_head rows, one matmul."""
    import torch

    with torch.no_grad():
        h = inputs.hidden.index_select(0, rows)
        w = inputs.lm_weight.index_select(0, classes)
        return h @ w.T


def median_times(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Median wall and CPU time of each function, the functions interleaved run by run so that
    a busy machine slows them alike (their ratio is what this benchmark is about)."""
    for fn in fns.values():
        fn()  # warm-up: first touch of pages, thread pools
    wall: dict = {name: [] for name in fns}
    cpu: dict = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    med = statistics.median
    return ({n: med(v) for n, v in wall.items()}, {n: med(v) for n, v in cpu.items()})


def numpy_peak_mib(fn) -> float:
    """Peak of memory allocated through Python/numpy while ``fn`` runs (torch's own buffers,
    i.e. the gathered rows and the score matrix, are not seen by tracemalloc)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def torch_buffers_mib(inputs) -> float:
    import numpy as np

    from tam_engine.core.engine import needed_rows_and_classes

    rows, classes = needed_rows_and_classes(inputs)
    nr, nc = np.unique(rows).size, np.unique(classes).size
    return 4 * (nr * HIDDEN + nc * HIDDEN + nr * nc) / 2**20


def run_case(weight, case: Case, repeats: int) -> dict:
    import numpy as np
    import torch

    from tam_engine.core.engine import (
        explain,
        explain_from_scores,
        needed_rows_and_classes,
        score_table,
    )
    from tam_engine.core.explanation import TamOptions
    from tam_engine.testing.reference import reference_explain

    inputs = make_inputs(weight, case)
    rows, classes = needed_rows_and_classes(inputs)
    rows_t = torch.as_tensor(np.unique(rows))
    cls_t = torch.as_tensor(np.unique(classes))
    options, no_eci = TamOptions(), TamOptions(eci=False)
    table = score_table(inputs)
    wall, cpu = median_times({
        "prod": lambda: product(inputs, rows_t, cls_t),
        "eng": lambda: explain(inputs, options),
        "post": lambda: explain_from_scores(inputs, table, options),
        "post_no_eci": lambda: explain_from_scores(inputs, table, no_eci),
    }, repeats)
    peak = numpy_peak_mib(lambda: explain(inputs, options)) + torch_buffers_mib(inputs)
    t_ref = c_ref = None
    if case.reference:
        c0, t0 = time.process_time(), time.perf_counter()
        reference_explain(inputs)
        t_ref, c_ref = time.perf_counter() - t0, time.process_time() - c0
    return dict(case=case, wall=wall, cpu=cpu, t_ref=t_ref, c_ref=c_ref, peak=peak)


HEADER = ("| case | vision tokens | answer tokens | engine ms | product ms | engine / product "
          "| reference s | reference / engine | engine CPU ms | product CPU ms "
          "| CPU engine / product | ECI CPU ms | peak MiB |")


def fmt_row(r: dict) -> str:
    c: Case = r["case"]
    w, p = r["wall"], r["cpu"]
    if r["t_ref"] is None:
        ref = speedup = "not run"
    else:
        ref = f"{r['t_ref']:.1f}"
        speedup = f"{r['t_ref'] / w['eng']:.0f}x"
    eci = p["post"] - p["post_no_eci"]
    return (f"| {c.name} | {c.n_vision} | {c.n_answer} | {1e3 * w['eng']:.1f} | "
            f"{1e3 * w['prod']:.1f} | {w['eng'] / w['prod']:.2f} | {ref} | {speedup} | "
            f"{1e3 * p['eng']:.1f} | {1e3 * p['prod']:.1f} | {p['eng'] / p['prod']:.2f} | "
            f"{1e3 * eci:.1f} | {r['peak']:.0f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Time the TAM engine against its reference and "
                                             "against the one unavoidable product.")
    ap.add_argument("--quick", action="store_true", help="three cases; reference on the first")
    ap.add_argument("--repeats", type=int, default=None, help="engine/product runs per case")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch, BLAS and engine threads (default: the libraries' own choice)")
    args = ap.parse_args(argv)
    if args.threads:
        # Must be set before numpy/torch load their BLAS and OpenMP runtimes.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TAM_ENGINE_THREADS"):
            os.environ[var] = str(args.threads)
    sys.path.insert(0, str(ROOT))
    import torch

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

    print(f"# bench_engine ({'quick' if args.quick else 'full'}): {platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"load average before {os.getloadavg()[0]:.2f}")
    load, ncpu = os.getloadavg()[0], os.cpu_count() or 1
    if load > ncpu and torch.get_num_threads() > 1:
        print(f"NOTE: the machine is busy (load {load:.1f} on {ncpu} CPUs): multi-threaded "
              "BLAS/OpenMP calls then spin-wait for descheduled threads and wall times swell; "
              "rerun with --threads 1 for steady numbers.")
    t0 = time.perf_counter()
    weight = torch.randn(VOCAB, HIDDEN)
    weight *= 0.02
    print(f"lm_head {VOCAB} x {HIDDEN} float32 ({weight.numel() * 4 / 2**20:.0f} MiB, built in "
          f"{time.perf_counter() - t0:.1f} s); {N_PROMPT} prompt tokens; engine and product: "
          f"median of {repeats} interleaved runs; reference: one full run per case (nothing "
          "extrapolated).")
    print()
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for case in cases:
        print(fmt_row(run_case(weight, case, repeats)), flush=True)
    print()
    print("engine = explain(): product + raw maps, ECI, joint normalisation, filter, uint8, for "
          "all answer and prompt tokens. ECI CPU ms = explain_from_scores with ECI minus "
          "without. peak MiB: numpy allocations during explain() (tracemalloc) plus torch's "
          "gathered rows and score matrix (from their shapes); the lm_head is not counted.")
    print(f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"load average after {os.getloadavg()[0]:.2f} (a shared machine slows wall times; "
          "compare ratios from one run, and the CPU columns).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
