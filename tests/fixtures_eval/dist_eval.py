"""Run the evaluation with the fake explainer in whatever process layout launched it.

Used by tests/test_eval_distributed.py under ``accelerate launch --num_processes 2 --cpu``:
``python dist_eval.py DATASET_DIR OUT_JSON``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_explainer import fake_explain  # noqa: E402

from tam_engine.eval.datasets import open_dataset  # noqa: E402
from tam_engine.eval.explainers import process_layout  # noqa: E402
from tam_engine.eval.runner import run_eval, variants_for  # noqa: E402


def main(dataset: str, out: str) -> None:
    layout = process_layout()
    ds = open_dataset(dataset)
    summary = run_eval(ds, fake_explain, variants_for(ablation=True), out, rank=layout.rank,
                       world_size=layout.world_size, barrier=layout.barrier, progress=False)
    print(f"RANK {layout.rank}/{layout.world_size}", flush=True)
    if summary is not None:
        print("SUMMARY " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
