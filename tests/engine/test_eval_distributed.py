"""Two processes under ``accelerate launch`` on the CPU give the numbers of one process
(the paper's metrics, the pointing game and the faithfulness curves)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tam_engine.eval.datasets import open_dataset
from tam_engine.eval.runner import run_eval, variants_for
from tam_engine.testing.fake_eval import fake_explain

SCRIPT = Path(__file__).parent / "fixtures" / "dist_eval.py"
sys.path.insert(0, str(SCRIPT.parent))
from dist_eval import FAITHFULNESS  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    from tam_engine.demo.synth import write_dataset

    data = tmp_path / "ds"
    write_dataset(data, n_images=5, n_videos=1, seed=5, size=96, n_frames=4)
    out = tmp_path / "two" / "r.json"
    # accelerate forms a CPU process group for `--multi_gpu` when ACCELERATE_USE_CPU is set
    # (its `--cpu` flag alone runs a single process unless MPI is installed).
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           str(SCRIPT), str(data), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RANK 0/2" in proc.stdout and "RANK 1/2" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.startswith("SUMMARY "))
    two = json.loads(line[len("SUMMARY "):])

    ds = open_dataset(data)
    one = run_eval(ds, fake_explain, variants_for(ablation=True), tmp_path / "one.json",
                   progress=False, faithfulness=FAITHFULNESS)
    assert two == one
    assert one["faithfulness"]["n_tokens"] > 0 and one["variants"]["both"]["pointing"] is not None
    assert json.loads(out.read_text())["summary"] == one
    # Each rank wrote its own shard.
    ids = [it.id for it in ds.items]
    for rank in (0, 1):
        shard = [json.loads(x)["id"] for x in
                 (out.parent / f"r.json.rank{rank}.jsonl").read_text().splitlines()]
        assert shard == ids[rank::2]
