"""The memory plan of 2B / 7B / 32B / 72B vision-language models against common GPUs.

Counts each model's parameters from a config with its real sizes (tests/engine/fixtures/
big_configs; no weights) and prints, as Markdown, what :func:`~tam_engine.inference.plan.propose`
picks on a machine with one 24 GiB GPU, two 24 GiB GPUs, and one 80 GiB GPU (each with 64 GiB
of CPU memory and 500 GiB of free disk), in bfloat16 with bitsandbytes available.

Run: ``python benchmarks/plan_table.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tam_engine.inference.plan import GiB, Machine, gib, model_size, plan_config, propose  # noqa: E402

MODELS = [("2B (Qwen2-VL-2B)", "qwen2-vl-2b"), ("7B (Qwen2.5-VL-7B)", "qwen2.5-vl-7b"),
          ("32B (Qwen2.5-VL-32B)", "qwen2.5-vl-32b"), ("72B (Qwen2.5-VL-72B)", "qwen2.5-vl-72b")]
MACHINES = [("24 GB GPU", (24,)), ("2 x 24 GB GPUs", (24, 24)), ("80 GB GPU", (80,))]


def main() -> int:
    folder = ROOT / "tests" / "engine" / "fixtures" / "big_configs"
    print("| model | bf16 need | " + " | ".join(m for m, _ in MACHINES) + " |")
    print("|---|---|" + "---|" * len(MACHINES))
    for title, name in MODELS:
        size = model_size(plan_config(str(folder / name)), name)
        cells = []
        for _, gpus in MACHINES:
            machine = Machine(tuple(g * GiB for g in gpus), 64 * GiB, 500 * GiB,
                              offload_folder="OFFLOAD")
            p = propose(size, machine, "bfloat16")
            cells.append(f"{p.kind} ({gib(p.need.total_bytes)})")
        print(f"| {title} | {gib(size.need('bfloat16').total_bytes)} | " + " | ".join(cells)
              + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
