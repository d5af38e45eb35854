"""The bundled demo model, through the real loader, pipeline and engine (small held-out set).

The full measurement (200 images, 20 videos) is ``python -m tam_engine.demo.quality``; its
figures are in resources/demo_model/MODEL_CARD.md. This quick version uses a few
scenes and thresholds a little below the full ones, so a broken model, processor, adapter or
engine shows up in CI without training anything.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tam_engine.core.resources import demo_model_path, sample_image_path, sample_video_path
from tam_engine.demo import synth
from tam_engine.demo.quality import clean_answer, measure, named_words, peak_inside


def test_bundled_files_are_small_and_complete():
    folder = demo_model_path()
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "MODEL_CARD.md"} <= names
    assert any(n.startswith("tokenizer") for n in names)
    assert any("processor" in n or "preprocessor" in n for n in names)
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total < 8 * 2**20
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "qwen2_vl"
    assert sample_image_path().stat().st_size < 200_000
    assert sample_video_path().stat().st_size < 500_000


def test_named_words_and_peaks():
    scene = synth.make_image_scene(34, n_objects=3)
    texts = ["a", " purple", " circle", ",", " a", " green", " square", " and", " a", " blue",
             " triangle", ".", "<|im_end|>"]
    special = [False] * 12 + [True]           # the tokenizer's mask: "<|im_end|>"
    assert clean_answer(texts, special) == scene.caption
    # The mask decides, not the look of the text.
    assert clean_answer(texts, [False] * 13) == scene.caption + "<|im_end|>"
    assert clean_answer(texts, [True] + [False] * 12) == scene.caption[1:].lstrip() + "<|im_end|>"
    pairs = named_words(texts, scene.objects)
    assert [k for k, _ in pairs] == [1, 2, 5, 6, 9, 10]
    assert [o.shape for _, o in pairs] == ["circle", "circle", "square", "square", "triangle",
                                          "triangle"]
    mask = scene.objects[0].mask
    ys, xs = np.nonzero(mask)
    m = np.zeros((8, 8), np.uint8)
    m[int(ys.mean()) * 8 // 224, int(xs.mean()) * 8 // 224] = 255
    assert peak_inside(m, mask)
    assert not peak_inside(m, scene.objects[2].mask)
    assert not peak_inside(np.zeros((8, 8), np.uint8), mask)


@pytest.mark.slow
def test_sample_media_are_captioned_right():
    # The showcase must not show a wrong caption: the bundled samples are held-out scenes whose
    # true captions the synthetic generator knows (issue 13: the old model said "moves right"
    # for objects moving down).
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
    import make_sample_media as msm

    from tam_engine.inference.loading import load_model
    from tam_engine.inference.pipeline import run_and_explain
    from tam_engine.inference.settings import GenerationSettings
    from tam_engine.media.io import load_media

    loaded = load_model(str(demo_model_path()), device="cpu", dtype="float32")
    settings = GenerationSettings(max_new_tokens=40, device="cpu", dtype="float32")
    image = synth.make_image_scene(msm.SAMPLE_IMAGE_SEED, n_objects=3)
    video = synth.make_video_scene(msm.SAMPLE_VIDEO_SEED, n_objects=2)
    cases = [(sample_image_path(), "Describe this image.", image.caption),
             (sample_video_path(), "Describe this video.", video.caption),
             # The CLI's default video prompt (tam_engine/cli/explain.py).
             (sample_video_path(), "What is happening in this video?", video.caption)]
    for path, prompt, caption in cases:
        expl = run_and_explain(loaded, load_media([path]), prompt, settings)
        assert clean_answer(expl.answer_texts, expl.special()) == caption, (path, prompt)


@pytest.mark.slow
def test_demo_model_quality_small():
    # Full figures (200 images, 20 videos) are in MODEL_CARD.md; these thresholds sit below
    # them, above what a random map or a blind captioner would reach.
    rep = measure(n_images=10, n_videos=2)
    print(rep.summary())
    assert rep.image_caption_acc >= 0.8, rep.failures
    assert rep.image_peak_total >= 20
    assert rep.image_peak_rate >= 0.6
    assert rep.image_peak_hits_unfiltered / rep.image_peak_total >= 0.6
    assert rep.video_peak_total >= 8
    assert rep.video_peak_rate >= 0.6
    assert rep.video_caption_acc >= 0.5, rep.failures
