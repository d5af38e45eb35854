"""The memory plan: parameters counted from configs of real checkpoints' sizes (no weights), the
machine's memory beside it, and the placement a person would choose."""

from __future__ import annotations

from pathlib import Path

import pytest

from tam_engine.cli import main
from tam_engine.inference.plan import GiB, Machine, model_size, plan_config, propose

CONFIGS = Path(__file__).parent / "fixtures" / "big_configs"


def _size(name: str):
    return model_size(plan_config(str(CONFIGS / name)), name)


@pytest.fixture(scope="module")
def sizes():
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = _size(name)
        return cache[name]

    return get


# ---------------------------------------------------------------- parameter-count arithmetic
def _qwen2_decoder(h, inter, layers, heads, kv, vocab, tie):
    kvd = kv * h // heads
    layer = (h * h + h) + 2 * (h * kvd + kvd) + h * h + 3 * h * inter + 2 * h
    return vocab * h * (1 if tie else 2) + layers * layer + h


def _qwen25_vision(d, vi, out, depth=32):
    block = (3 * d * d + 3 * d) + (d * d + d) + 2 * (d * vi + vi) + (vi * d + d) + 2 * d
    merger = d + (4 * d * 4 * d + 4 * d) + (4 * d * out + out)
    return 3 * 2 * 14 * 14 * d + depth * block + merger


def _internvit(d=3200, vi=12800, layers=45, patches=1024, text=8192):
    layer = 3 * d * d + 2 * d + (d * d + d) + (d * vi + vi) + (vi * d + d) + 2 * d + 2 * d
    embeddings = d + (3 * 14 * 14 * d + d) + (patches + 1) * d
    projector = 2 * 4 * d + (4 * d * text + text) + (text * text + text)
    return embeddings + layers * layer + projector


ARITHMETIC = {
    "qwen2.5-vl-7b": _qwen2_decoder(3584, 18944, 28, 28, 4, 152064, False)
    + _qwen25_vision(1280, 3420, 3584),
    "qwen2.5-vl-72b": _qwen2_decoder(8192, 29568, 80, 64, 8, 152064, False)
    + _qwen25_vision(1280, 3456, 8192),
    "internvl3-78b-like": _qwen2_decoder(8192, 29568, 80, 64, 8, 151674, False) + _internvit(),
}


@pytest.mark.parametrize("name", sorted(ARITHMETIC))
def test_bf16_plan_is_within_5_percent_of_parameter_arithmetic(sizes, name):
    need = sizes(name).need("bfloat16")
    expected_bytes = 2 * ARITHMETIC[name]
    assert abs(need.weight_bytes - expected_bytes) <= 0.05 * expected_bytes, (
        need.weight_bytes / GiB, expected_bytes / GiB)


def test_published_sizes_and_tied_embeddings(sizes):
    # The model cards' counts: 2.21B (tied embeddings counted once), 8.29B, 73.4B, 78.4B.
    for name, billions in [("qwen2-vl-2b", 2.21), ("qwen2.5-vl-7b", 8.29),
                           ("qwen2.5-vl-72b", 73.4), ("internvl3-78b-like", 78.4)]:
        assert sizes(name).params / 1e9 == pytest.approx(billions, rel=0.01), name


def test_quantised_needs_shrink_but_keep_the_head(sizes):
    size = sizes("qwen2.5-vl-7b")
    bf16, q8, q4 = (size.need("bfloat16", q).weight_bytes for q in (None, "8bit", "4bit"))
    assert q4 < q8 < bf16
    assert q8 > bf16 / 2 and q4 > bf16 / 4  # embeddings, norms and lm_head stay 16-bit
    assert size.need("float32").weight_bytes == 2 * bf16


# ---------------------------------------------------------------- proposals
# (model, GPU memory in GiB, RAM in GiB, disk in GiB, quantisation possible) -> placement
TABLE = [
    ("qwen2-vl-2b", (24,), 64, 500, True, "one GPU"),
    ("qwen2.5-vl-7b", (24,), 64, 500, True, "one GPU"),
    ("qwen2.5-vl-7b", (12,), 64, 500, True, "8-bit on one GPU"),
    ("qwen2.5-vl-7b", (8,), 64, 500, True, "4-bit on one GPU"),
    ("qwen2.5-vl-7b", (), 64, 500, True, "CPU"),
    ("qwen2.5-vl-32b", (80,), 64, 500, True, "one GPU"),
    ("qwen2.5-vl-32b", (40, 40), 64, 500, True, "split over 2 GPUs"),
    ("qwen2.5-vl-32b", (24, 24), 64, 500, True, "split over 2 GPUs, 8-bit"),
    ("qwen2.5-vl-32b", (24,), 64, 500, False, "GPU + CPU offload"),
    ("qwen2.5-vl-72b", (80, 80), 64, 500, True, "split over 2 GPUs"),
    ("qwen2.5-vl-72b", (80,), 64, 500, True, "4-bit on one GPU"),
    ("qwen2.5-vl-72b", (24, 24), 256, 500, False, "GPU + CPU offload"),
    ("qwen2.5-vl-72b", (24, 24), 64, 500, True, "disk offload"),
    ("qwen2.5-vl-72b", (), 64, 500, True, "disk offload"),
    ("qwen2.5-vl-72b", (), 64, 100, True, "does not fit"),
    ("internvl3-78b-like", (141,), 256, 500, True, "8-bit on one GPU"),
]


@pytest.mark.parametrize("name,gpus,ram,disk,quant,expected", TABLE)
def test_proposed_placement(sizes, name, gpus, ram, disk, quant, expected):
    machine = Machine(tuple(g * GiB for g in gpus), ram * GiB, disk * GiB,
                      offload_folder="/tmp/off")
    dtype = "bfloat16" if gpus else "float32"
    proposal = propose(sizes(name), machine, dtype, quantization_available=quant)
    assert proposal.kind == expected
    assert proposal.trade_off
    assert proposal.fits == (expected != "does not fit")
    p = proposal.placement
    if "split" in expected or "offload" in expected:
        assert p.device_map == "auto" and p.max_memory
        assert set(p.max_memory) == set(range(len(gpus))) | ({"cpu"} if "offload" in expected
                                                              else set())
    assert (p.offload_folder == "/tmp/off") == (expected == "disk offload")
    assert (p.quantization is not None) == ("bit" in expected)


def test_cli_prints_the_plan_beside_the_machine(capsys):
    assert main(["models", "--plan", str(CONFIGS / "qwen2.5-vl-7b"), "--dtype", "bfloat16"]) == 0
    out = capsys.readouterr().out
    assert "8.3B parameters: 15.4 GiB of weights in bfloat16" in out
    assert "CPU memory:" in out and "Free disk for offload" in out
    assert "Proposed:" in out and "Trade-off:" in out
