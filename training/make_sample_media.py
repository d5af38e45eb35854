"""Write the bundled sample media from held-out synthetic scenes (seeds training never uses).

    python training/make_sample_media.py            # into resources/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.demo import synth

#: Held-out scene seeds of the samples (training draws from synth.item_seed(20251125, ...)).
SAMPLE_IMAGE_SEED = 34
SAMPLE_VIDEO_SEED = 8


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="resources")
    args = ap.parse_args(argv)
    out = Path(args.out)
    scene = synth.make_image_scene(SAMPLE_IMAGE_SEED, n_objects=3)
    atomic_write_bytes(out / "sample_image.png", synth.encode_png(scene.image))
    video = synth.make_video_scene(SAMPLE_VIDEO_SEED, n_objects=2)
    atomic_write_bytes(out / "sample_video.mp4", synth.encode_mp4(video.frames, video.fps))
    print(f"sample_image.png: {scene.caption!r}")
    print(f"sample_video.mp4: {video.caption!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
