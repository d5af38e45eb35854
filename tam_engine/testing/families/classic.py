"""The four families supported from the start: Qwen2-VL, Qwen2.5-VL, LLaVA-1.5 and InternVL.

The tiny builders are those of :mod:`tam_engine.testing.tiny_models`. Each family's
``vision_brightness`` reads which pixels every vision token saw from the processor's own
``pixel_values`` (un-normalised with the processor's mean and std; the fraction of pixels
brighter than 0.5, so a processor's padding colour never counts as the square), never from
the adapter:

* Qwen2-VL / Qwen2.5-VL: one row of ``pixel_values`` per ``patch x patch`` patch, rows already
  grouped ``merge x merge`` per token (the processor's own patch order), so a token's
  brightness is taken over its ``merge**2`` consecutive rows.
* LLaVA-1.5 and InternVL (one tile per image or frame): one ``(3, S, S)`` plane per image or
  frame, split evenly into the token grid (CLIP patches; InternVL's pixel shuffle keeps the
  tile's row-major order).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tam_engine.testing.families import FamilySpec
from tam_engine.testing.geometry import block_means, unnormalize

CLASSIC_CASES = ("square", "wide", "tall", "two", "large", "video")


# The tiny models' processors keep their classes' defaults: the OpenAI CLIP statistics.
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _build(family: str, out_dir: Path) -> Path:
    from tam_engine.testing.tiny_models import build_tiny_model

    return build_tiny_model(family, out_dir)


def _numpy(value: Any) -> np.ndarray:
    return value.float().cpu().numpy() if hasattr(value, "float") else np.asarray(value)


def qwen_brightness(prepared: Any) -> np.ndarray:
    """Per token, in sequence order, from the patch rows of each image and video: the rows of
    one kind split evenly between that kind's tokens (``merge**2`` rows each, in order)."""
    grids = prepared.spans.grids
    out: list[np.ndarray] = []
    for kind, key in (("image", "pixel_values"), ("video", "pixel_values_videos")):
        mine = [g for g in grids if g.kind == kind]
        if not mine:
            continue
        rows = _numpy(prepared.model_inputs[key])
        n_tokens = sum(g.size for g in mine)
        merge2 = rows.shape[0] // n_tokens
        if merge2 * n_tokens != rows.shape[0]:
            raise AssertionError(f"{rows.shape[0]} {kind} patches for {n_tokens} tokens")
        rgb = rows.reshape(rows.shape[0], 3, -1) * np.reshape(_CLIP_STD, (1, 3, 1)) \
            + np.reshape(_CLIP_MEAN, (1, 3, 1))
        per_token = (rgb.mean(axis=1) > 0.5).mean(axis=1).reshape(n_tokens, merge2).mean(axis=1)
        out.append(per_token)
    order = [g.kind for g in grids]
    if "image" in order and "video" in order and order != sorted(order):
        raise AssertionError("the brightness is read images first: a video before an image "
                             "is not supported here")
    return np.concatenate(out) if out else np.zeros(0)


def plane_brightness(prepared: Any) -> np.ndarray:
    """Per token, in sequence order: every image (or frame) is one ``(3, S, S)`` plane split
    evenly into its grid's ``h x w`` cells."""
    planes = unnormalize(_numpy(prepared.model_inputs["pixel_values"]), _CLIP_MEAN, _CLIP_STD)
    out, i = [], 0
    for g in prepared.spans.grids:
        out.append(block_means(planes[i:i + g.t] > 0.5, g.h, g.w).reshape(-1))
        i += g.t
    if i != planes.shape[0]:
        raise AssertionError(f"{planes.shape[0]} planes for {i} grid slots")
    return np.concatenate(out)


def feature_counts(name: str, prepared: Any, config: Any) -> list[int]:
    """The family's own feature count of every grid (processor outputs or the model config),
    to compare with the grids' cell counts."""
    inputs = prepared.model_inputs
    if name in ("qwen2_vl", "qwen2_5_vl"):
        merge = int(config.vision_config.spatial_merge_size)
        counts = {k: list(_numpy(inputs[f"{k}_grid_thw"]).astype(int).prod(axis=1) // merge**2)
                  for k in ("image", "video") if f"{k}_grid_thw" in inputs}
        return [int(counts[g.kind].pop(0)) for g in prepared.spans.grids]
    per_plane = int(config.image_seq_length)
    return [g.t * per_plane for g in prepared.spans.grids]


SPECS = [
    FamilySpec("qwen2_vl", partial(_build, "qwen2_vl"), CLASSIC_CASES, qwen_brightness),
    FamilySpec("qwen2_5_vl", partial(_build, "qwen2_5_vl"), CLASSIC_CASES, qwen_brightness),
    FamilySpec("llava", partial(_build, "llava"), CLASSIC_CASES, plane_brightness),
    FamilySpec("internvl", partial(_build, "internvl"), CLASSIC_CASES, plane_brightness),
]
