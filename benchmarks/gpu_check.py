"""Check the CUDA paths end to end on a GPU machine (not a test: CI has no GPU).

For every tiny family: load with ``device="auto"`` (must pick CUDA) and ``dtype="auto"`` (must
pick bf16 where supported), explain one image and one video through ``run_and_explain``, and
check that the maps are finite and that the engine's one product on the GPU (bf16 hidden states
and lm_head) agrees with the same product recomputed on the CPU in float32.

Big-model paths (issue #15) on the tiny Qwen2-VL: ``device_map="auto"`` on one GPU, a custom
map with decoder layers on the GPU and ``lm_head`` on disk offload, and (when bitsandbytes is
importable) 4-bit loading with ``lm_head`` kept in bf16; the first two must give the plain
load's uint8 maps within one level, the 4-bit run's difference is reported.

Run: ``python benchmarks/gpu_check.py``
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tam_engine.core.engine import score_table  # noqa: E402
from tam_engine.core.media import MediaItem  # noqa: E402
from tam_engine.inference.capture import capture  # noqa: E402
from tam_engine.inference.loading import load_model  # noqa: E402
from tam_engine.inference.pipeline import run_and_explain  # noqa: E402
from tam_engine.inference.settings import GenerationSettings  # noqa: E402
from tam_engine.testing.tiny_models import FAMILIES, build_tiny_model  # noqa: E402


def _media(rng: np.random.Generator) -> tuple[MediaItem, MediaItem]:
    image = MediaItem("image", "gpu-check.png", rng.integers(0, 255, (112, 112, 3), np.uint8))
    frames = rng.integers(0, 255, (4, 112, 112, 3), np.uint8)
    video = MediaItem("video", "gpu-check.mp4", frames, frame_slot=np.arange(4),
                      timestamps=np.arange(4) / 2.0, fps=2.0)
    return image, video


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 1
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    rng = np.random.default_rng(0)
    image, video = _media(rng)
    settings = GenerationSettings(max_new_tokens=8)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            folder = build_tiny_model(family, Path(tmp) / family)
            loaded = load_model(folder)
            assert loaded.device.type == "cuda", loaded.device
            for media in ([image], [video]):
                t0 = time.perf_counter()
                expl = run_and_explain(loaded, media, "Describe this.", settings)
                dt = time.perf_counter() - t0
                ok = all(np.isfinite(expl.answer.filtered).all() for _ in [0])
                ok &= expl.answer.maps.shape == (expl.n_answer, expl.n_vision)
                # The GPU product against a float32 CPU recomputation of the same capture.
                prepared = loaded.adapter.prepare(media, "Describe this.", settings)
                inputs = capture(loaded, prepared, settings)
                gpu = score_table(inputs).act
                inputs.hidden = torch.as_tensor(inputs.hidden).float().cpu()
                inputs.lm_weight = torch.as_tensor(inputs.lm_weight).float().cpu()
                if inputs.lm_bias is not None:
                    inputs.lm_bias = torch.as_tensor(inputs.lm_bias).float().cpu()
                cpu = score_table(inputs).act
                scale = max(float(np.abs(cpu).max()), 1e-6)
                err = float(np.abs(gpu - cpu).max()) / scale
                ok &= err < 1e-2
                failures += not ok
                print(f"{family:11s} {media[0].kind:5s} dtype={loaded.dtype} "
                      f"tokens={expl.n_answer} vision={expl.n_vision} {dt * 1e3:7.1f} ms "
                      f"gpu-vs-cpu product rel.err={err:.2e} {'ok' if ok else 'FAIL'}")
            del loaded
            torch.cuda.empty_cache()
        failures += _check_big_model_paths(Path(tmp), image, settings)
    print("all CUDA paths ok" if failures == 0 else f"{failures} failures")
    return int(failures > 0)


def _check_big_model_paths(tmp: Path, image: MediaItem, settings: GenerationSettings) -> int:
    import importlib.util
    import json

    from tam_engine.inference.model_placement import ModelPlacement

    folder = build_tiny_model("qwen2_vl", tmp / "big-qwen2_vl")
    n = json.loads((folder / "config.json").read_text())["text_config"]["num_hidden_layers"]
    text = "model.language_model"
    offload = {"model.visual": 0, f"{text}.embed_tokens": 0, f"{text}.norm": 0,
               f"{text}.rotary_emb": 0, "lm_head": "disk",
               **{f"{text}.layers.{k}": (0 if k % 2 == 0 else "disk") for k in range(n)}}
    plain = run_and_explain(load_model(folder, dtype="bfloat16"), [image], "Describe this.",
                            settings)
    cases = [("device_map auto", ModelPlacement("auto"), True),
             ("layers + lm_head on disk", ModelPlacement(offload, offload_folder=str(
                 tmp / "offload")), True)]
    if importlib.util.find_spec("bitsandbytes") is not None:
        cases.append(("4-bit", ModelPlacement(quantization="4bit"), False))
    else:
        print("bitsandbytes not installed: 4-bit path skipped")
    failures = 0
    for title, placement, exact in cases:
        loaded = load_model(folder, dtype="bfloat16", placement=placement)
        head = loaded.model.get_output_embeddings()
        t0 = time.perf_counter()
        expl = run_and_explain(loaded, [image], "Describe this.", settings)
        dt = time.perf_counter() - t0
        same_tokens = list(expl.ids) == list(plain.ids)
        diff = (int(np.abs(expl.answer.maps.astype(int) - plain.answer.maps.astype(int)).max())
                if same_tokens else -1)
        ok = bool(np.isfinite(expl.answer.filtered).all()) and head.weight.dtype == torch.bfloat16
        if exact:
            ok &= same_tokens and diff <= 1
        failures += not ok
        print(f"{title:26s} input on {loaded.device}, lm_head {head.weight.device}/"
              f"{head.weight.dtype} same tokens={same_tokens} max map diff={diff} "
              f"{dt * 1e3:7.1f} ms {'ok' if ok else 'FAIL'}")
        del loaded
        torch.cuda.empty_cache()
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
