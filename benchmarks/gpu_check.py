"""Check the CUDA paths end to end on a GPU machine (not a test: CI has no GPU).

For every tiny family: load with ``device="auto"`` (must pick CUDA) and ``dtype="auto"`` (must
pick bf16 where supported), explain one image and one video through ``run_and_explain``, and
check that the maps are finite and that the engine's one product on the GPU (bf16 hidden states
and lm_head) agrees with the same product recomputed on the CPU in float32.

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
    print("all CUDA paths ok" if failures == 0 else f"{failures} failures")
    return int(failures > 0)


if __name__ == "__main__":
    raise SystemExit(main())
