"""How good the bundled demo model is, measured through the real pipeline.

Held-out synthetic scenes (seeds the training never used) go through
:func:`tam_engine.loading.load_model` and :func:`tam_engine.pipeline.run_and_explain` (greedy
generation, full TAM: ECI and the rank Gaussian filter). Reported:

- caption accuracy: the greedy caption equals the scene's caption exactly;
- image peak hit rate: for each colour and shape word of a correct image caption, whether the
  peak of its final map (resized bilinearly to the image) lies inside the object the word names;
- video peak hit rate: the same per temporal slot, against the object's mask in the frames of
  that slot (either frame of the slot counts as inside).

Run ``python -m tam_engine.demo_quality`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

#: Base seed of the held-out scenes (training uses a different base, see training/).
HELDOUT_SEED = 424242
IMAGE_PROMPT = "Describe this image."
VIDEO_PROMPT = "Describe this video."


@dataclass
class QualityReport:
    n_images: int = 0
    n_videos: int = 0
    image_caption_acc: float = 0.0
    video_caption_acc: float = 0.0
    image_peak_hits: int = 0
    image_peak_total: int = 0
    video_peak_hits: int = 0
    video_peak_total: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def image_peak_rate(self) -> float:
        return self.image_peak_hits / self.image_peak_total if self.image_peak_total else 0.0

    @property
    def video_peak_rate(self) -> float:
        return self.video_peak_hits / self.video_peak_total if self.video_peak_total else 0.0

    def summary(self) -> str:
        return (
            f"images: {self.n_images}, exact captions {self.image_caption_acc:.1%}; colour/shape "
            f"map peaks inside the named object {self.image_peak_rate:.1%} "
            f"({self.image_peak_hits}/{self.image_peak_total} words)\n"
            f"videos: {self.n_videos}, exact captions {self.video_caption_acc:.1%}; peaks inside "
            f"the object per temporal slot {self.video_peak_rate:.1%} "
            f"({self.video_peak_hits}/{self.video_peak_total} word-slots)\n"
            f"time: {self.seconds:.0f} s")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(image_peak_rate=self.image_peak_rate, video_peak_rate=self.video_peak_rate)
        return d


def clean_answer(texts: list[str]) -> str:
    """The answer as a sentence: special tokens (``<|...|>``) dropped, spaces trimmed."""
    return "".join(t for t in texts if not (t.startswith("<|") and t.endswith("|>"))).strip()


def named_words(texts: list[str], objects) -> list[tuple[int, object]]:
    """(answer token index, object) for each colour/shape token of a correct caption.

    A correct caption names the objects in order, one ``a/an COLOUR SHAPE`` phrase each; the
    phrase index advances at each colour word.
    """
    from tam_engine.synth import COLORS, SHAPES

    out: list[tuple[int, object]] = []
    phrase = -1
    for k, t in enumerate(texts):
        w = t.strip()
        if w in COLORS:
            phrase += 1
        if (w in COLORS or w in SHAPES) and 0 <= phrase < len(objects):
            out.append((k, objects[phrase]))
    return out


def peak_inside(map_u8: np.ndarray, mask: np.ndarray) -> bool:
    """Is the maximum of ``map_u8`` (h, w), resized bilinearly to the mask, inside the mask?"""
    import cv2

    h, w = mask.shape
    up = cv2.resize(map_u8.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    if float(up.max()) <= 0.0:
        return False  # an all-zero map points nowhere
    y, x = np.unravel_index(int(np.argmax(up)), up.shape)
    return bool(mask[y, x])


def _settings(device: str):
    from tam_engine.adapters.base import GenerationSettings

    return GenerationSettings(max_new_tokens=40, device=device, dtype="float32")


def measure(model: str | Path | None = None, n_images: int = 200, n_videos: int = 20,
            seed: int = HELDOUT_SEED, device: str = "cpu", progress=None) -> QualityReport:
    """Measure the demo model (or ``model``) on held-out scenes; see the module docstring."""
    from tam_engine import synth
    from tam_engine.loading import load_model
    from tam_engine.media import MediaItem
    from tam_engine.media_io import load_video
    from tam_engine.pipeline import run_and_explain
    from tam_engine.resources import demo_model_path

    t0 = time.time()
    path = Path(model) if model else demo_model_path()
    loaded = load_model(str(path), device=device, dtype="float32")
    settings = _settings(device)
    rep = QualityReport(n_images=n_images, n_videos=n_videos)
    correct = 0
    for i in range(n_images):
        scene = synth.make_image_scene(synth.item_seed(seed, "image", i))
        media = MediaItem(kind="image", path=f"synth-image-{i}.png", frames=scene.image[None])
        expl = run_and_explain(loaded, [media], IMAGE_PROMPT, settings)
        text = clean_answer(expl.answer_texts)
        if text != scene.caption:
            rep.failures.append((scene.caption, text))
        else:
            correct += 1
            for k, obj in named_words(expl.answer_texts, scene.objects):
                rep.image_peak_total += 1
                rep.image_peak_hits += peak_inside(expl.frame_map(k, 0, 0), obj.mask)
        if progress:
            progress(i + 1, n_images + n_videos)
    rep.image_caption_acc = correct / n_images if n_images else 0.0
    correct = 0
    with tempfile.TemporaryDirectory(prefix="tam-demo-quality-") as tmp:
        for i in range(n_videos):
            vs = synth.make_video_scene(synth.item_seed(seed, "video", i))
            # Through an H.264 file and the real decoder, as a user's clip would go.
            file = Path(tmp) / f"vid_{i}.mp4"
            file.write_bytes(synth.encode_mp4(vs.frames, vs.fps))
            media = load_video(file, fps=vs.fps, max_frames=16)
            expl = run_and_explain(loaded, [media], VIDEO_PROMPT, settings)
            text = clean_answer(expl.answer_texts)
            if text != vs.caption:
                rep.failures.append((vs.caption, text))
            else:
                correct += 1
                shown = expl.media[0] if expl.media else media
                slots = np.asarray(shown.frame_slot)
                for k, obj in named_words(expl.answer_texts, vs.objects):
                    maps = expl.grid_maps(k)[expl.grid_for_media(0)]
                    for s in range(maps.shape[0]):
                        frames = np.nonzero(slots == s)[0]
                        frames = frames[frames < obj.mask.shape[0]]
                        if frames.size == 0:
                            continue
                        mask = obj.mask[frames].any(axis=0)
                        rep.video_peak_total += 1
                        rep.video_peak_hits += peak_inside(maps[s], mask)
            if progress:
                progress(n_images + i + 1, n_images + n_videos)
    rep.video_caption_acc = correct / n_videos if n_videos else 0.0
    rep.seconds = time.time() - t0
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tam_engine.demo_quality",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model folder (default: the bundled demo)")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--seed", type=int, default=HELDOUT_SEED)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--show-failures", type=int, default=5)
    args = ap.parse_args(argv)
    rep = measure(args.model, args.images, args.videos, args.seed, args.device)
    print(rep.summary())
    for want, got in rep.failures[:args.show_failures]:
        print(f"  expected {want!r}, got {got!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(rep.to_dict(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
