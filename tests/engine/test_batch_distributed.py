"""``accelerate launch -m tam_engine.cli explain FOLDER`` with two CPU processes writes the
index and the explanations of a one-process run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tam_engine.batch.index import read_index
from tam_engine.core.explanation import Explanation


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _comparable(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "seconds"}  # timings differ run to run


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, tiny_model_dir):
    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(4):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(
            data / f"im{i}.png")
    model = str(tiny_model_dir("qwen2_vl"))
    args = ["explain", str(data), "--model", model, "--max-new-tokens", "2", "--device", "cpu",
            "--no-progress"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "tam_engine.cli", *args, "--out", str(tmp_path / "two")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The one-process run in the same environment (one BLAS thread), so that even the float
    # maps before quantisation can be compared bit for bit.
    proc = subprocess.run([sys.executable, "-m", "tam_engine.cli", *args, "--out",
                           str(tmp_path / "one")], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    one, two = read_index(tmp_path / "one"), read_index(tmp_path / "two")
    assert [_comparable(r) for r in two] == [_comparable(r) for r in one]
    # Each process wrote its own items.
    for rank in (0, 1):
        shard = [json.loads(x)["id"] for x in
                 (tmp_path / "two" / f"index.jsonl.rank{rank}.jsonl").read_text().splitlines()]
        assert shard == [f"im{i}.png" for i in range(4)][rank::2]
    for rec in one:
        a = Explanation.load(tmp_path / "one" / rec["file"])
        b = Explanation.load(tmp_path / "two" / rec["file"])
        assert a.answer.texts == b.answer.texts
        for name in ("raw", "eci", "filtered", "maps", "relevance"):
            np.testing.assert_array_equal(getattr(a.answer, name), getattr(b.answer, name))
