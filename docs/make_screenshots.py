"""Regenerate docs/screenshot-image.png, -video.png, -tiles.png, -compare.png and -region.png
from the real app.

Needs an X server (the screenshots are of real windows, not offscreen renders) and ImageMagick's
``import``::

    Xvfb :99 -screen 0 1600x1000x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb python docs/make_screenshots.py [--model DIR] \
        [--compare-with DIR] [--only tiles ...]

The model defaults to the bundled demo model. For each sample, the app opens the media, runs the
model through its own worker, shows the colour/shape word with the strongest map (on the frame
where it is strongest) with Stretch on, and ImageMagick grabs the window. The tiles shot runs
a tiny RANDOM InternVL whose processor tiles (built with the family matrix's builder into a
temporary folder) on the sample image widened to 3:2 with its own background, so it is cut into
3 x 2 tiles plus a thumbnail, and shows the "tiles" layer with the tile borders: it shows how
tiles are stitched, not a meaningful map. With ``--compare-with``, the compare window runs the
model (A) against that one (B) on the sample image and shows A's strongest colour/shape word
beside its counterpart in B. The flags shot (docs/screenshot-flags.png) runs the model on the
sample image, swaps the first colour word of its answer for a colour the answer does not name,
explains that given answer ("Explain this answer…", teacher forcing) and shows the swapped word,
flagged "little visual evidence" in the strip and the timeline, with its candidates.
The region shot queries a box around one object of the sample
image (its true outline, from the scene the sample was made from) and shows the ranking, with
the best token's map. ``--only`` regenerates just the shots named.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SHOTS = ["image", "video", "tiles", "compare", "flags", "region"]
#: The scene the bundled sample image was drawn from (training/make_sample_media.py), and the
#: object the region shot boxes (its index in the scene's objects).
SAMPLE_IMAGE_SEED, REGION_OBJECT = 34, 0


def shoot(app, media: Path, model: str, prompt: str, out: Path, *, layer: str | None = None,
          tile_borders: bool = False, prepare=None) -> str:
    """``prepare(window)``, when given, sets the view up before the grab and says what it
    showed."""
    from tam_desktop.main_window import MainWindow
    from tam_desktop.settings import AppSettings
    from tam_engine.inference.settings import GenerationSettings

    w = MainWindow(AppSettings(), save_on_close=False)
    w.resize(1500, 900)
    w.move(0, 0)
    w.show()

    def wait(cond, timeout: float = 300.0) -> None:
        _wait(app, cond, timeout)

    w.open_paths([str(media)])
    wait(lambda: bool(w.media_paths))
    w.run_panel.set_model(model)
    w.run_panel.set_prompt(prompt)
    w.settings.generation = GenerationSettings(max_new_tokens=32)
    w.run()
    wait(lambda: not w.controller.running)
    ex = w.state.explanation
    if ex is None:
        raise SystemExit(f"the run on {media.name} did not finish: {w.status_label.text()}")
    # The default view, as a newcomer sees it: the token with the strongest visual evidence,
    # on the default colour scale (the method's joint normalisation).
    k = w.state.token
    if layer is not None:
        w.state.display.layer = layer
    w.state.display.tile_borders = tile_borders
    frames = w.state.frame_strengths()
    if frames is not None and frames.size > 1:
        w.state.cursor.set_frame(int(frames.argmax()))
    said = f"{out.name}: {ex.answer_text!r}, token {k} {ex.answer_texts[k]!r}"
    if prepare is not None:
        said = f"{out.name}: {ex.answer_text!r}; {prepare(w)}"
    wait(lambda: False, 0.3)  # let everything paint
    subprocess.run(["import", "-window", str(int(w.winId())), str(out)], check=True)
    w.close()
    return said


def _wait(app, cond, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def shoot_compare(app, media: Path, model_a: str, model_b: str, prompt: str, out: Path) -> str:
    from tam_desktop.app_context import AppContext
    from tam_desktop.compare.window import CompareWindow
    from tam_desktop.settings import AppSettings
    from tam_engine.inference.settings import GenerationSettings

    settings = AppSettings()
    settings.generation = GenerationSettings(max_new_tokens=32)
    w = CompareWindow(AppContext(settings), media_paths=[str(media)], prompt=prompt,
                      model_a=model_a, model_b=model_b)
    w.move(0, 0)
    w.show()
    _wait(app, lambda: bool(w.media))
    w.run()
    _wait(app, lambda: not w.controller.running)
    a = w.states["a"].explanation
    if a is None or w.states["b"].explanation is None:
        raise SystemExit("the compare run did not finish")
    k = w.states["a"].token   # the default view: A's strongest token, the default scale
    _wait(app, lambda: False, 0.3)
    subprocess.run(["import", "-window", str(int(w.winId())), str(out)], check=True)
    w.close()
    return f"{out.name}: A {a.answer_text!r}, token {k} {a.answer_texts[k]!r}"


def widened_sample(folder: Path) -> Path:
    """The sample image padded left and right with its own background to 3:2 (336 x 224), so a
    tiling processor cuts it into 3 x 2 tiles; the shapes keep their proportions."""
    import numpy as np
    from PIL import Image

    from tam_engine.core.resources import sample_image_path

    square = np.asarray(Image.open(sample_image_path()).convert("RGB"))
    h, w, _ = square.shape
    pad = (h * 3 // 2 - w) // 2
    wide = np.empty((h, w + 2 * pad, 3), np.uint8)
    wide[:] = square[0, 0]  # the background colour
    wide[:, pad:pad + w] = square
    path = folder / "sample_image_wide.png"
    Image.fromarray(wide).save(path)
    return path


def shoot_tiles(app, out: Path) -> str:
    """A tiny random tiled InternVL on the widened sample: the stitched tiles and their borders."""
    from tam_engine.testing.families.tiled import build_internvl_tiled

    with tempfile.TemporaryDirectory(prefix="tam-shots-tiled-") as tmp:
        folder = Path(tmp)
        model = folder / "internvl_tiled"
        # seed 3: a random model whose first token's map differs from tile to tile, so the
        # stitching shows (seed 0's lights up one tile only)
        build_internvl_tiled(model, seed=3)
        said = shoot(app, widened_sample(folder), str(model), "Describe this image.", out,
                     layer="tiles", tile_borders=True)
    from PIL import Image

    Image.open(out).save(out, optimize=True)  # a README image: keep it small
    return said


def shoot_flags(app, media: Path, model: str, prompt: str, out: Path) -> str:
    import re

    from tam_desktop.main_window import MainWindow
    from tam_desktop.settings import AppSettings
    from tam_engine.demo import synth
    from tam_engine.eval.runner import clean_caption
    from tam_engine.inference.settings import GenerationSettings

    w = MainWindow(AppSettings(), save_on_close=False)
    w.resize(1500, 900)
    w.move(0, 0)
    w.show()
    w.open_paths([str(media)])
    _wait(app, lambda: bool(w.media_paths))
    w.run_panel.set_model(model)
    w.run_panel.set_prompt(prompt)
    w.settings.generation = GenerationSettings(max_new_tokens=32)
    w.run()
    _wait(app, lambda: not w.controller.running)
    ex = w.state.explanation
    if ex is None:
        raise SystemExit(f"the run on {media.name} did not finish: {w.status_label.text()}")
    said = clean_caption(ex.answer.texts, ex.special())
    named = [c for c in synth.COLORS if re.search(rf"\b{c}\b", said)]
    absent = [c for c in synth.COLORS if c not in named]
    if not named or not absent:
        raise SystemExit(f"no colour word to swap in {said!r}")
    given = re.sub(rf"\b{named[0]}\b", absent[0], said, count=1)
    w.given_answer = given
    w._start_run(auto=False, answer=given)
    _wait(app, lambda: not w.controller.running)
    ex = w.state.explanation
    flagged = [k for k in range(ex.n_answer) if w.pane.answer_strip.flags.flagged[k]]
    if not flagged:
        raise SystemExit(f"nothing flagged in the given answer {given!r}")
    w.state.set_token(flagged[0], "answer")
    _wait(app, lambda: False, 0.3)  # let everything paint
    subprocess.run(["import", "-window", str(int(w.winId())), str(out)], check=True)
    w.close()
    words = [ex.answer_texts[k] for k in flagged]
    return f"{out.name}: model said {said!r}; given {given!r}; flagged tokens {words}"


def region_box(margin: float = 8.0) -> tuple[float, float, float, float]:
    """A box around one object of the sample image, from the scene it was drawn from (checked
    to be that image)."""
    import numpy as np
    from PIL import Image

    from tam_engine.core.resources import sample_image_path
    from tam_engine.demo import synth

    scene = synth.make_image_scene(SAMPLE_IMAGE_SEED, n_objects=3)
    if not np.array_equal(scene.image, np.asarray(Image.open(sample_image_path()).convert("RGB"))):
        raise SystemExit("the sample image is not scene 34 any more: update SAMPLE_IMAGE_SEED")
    ys, xs = np.nonzero(scene.objects[REGION_OBJECT].mask)
    h, w = scene.image.shape[:2]
    return (max(xs.min() - margin, 0.0), max(ys.min() - margin, 0.0),
            min(xs.max() + 1 + margin, w), min(ys.max() + 1 + margin, h))


def query_region(app, w) -> str:
    """The region query on the box around the object, its best token shown."""
    box = region_box()
    w.region_action.set_mode(True)
    q = w.pane.region
    q.set_box(box)
    _wait(app, lambda: q.ranking is not None, 30.0)
    r = q.ranking
    if r is None:
        raise SystemExit(f"the region query gave no ranking: {q.error}")
    best = int(r.order[0])
    w.state.set_token(best, "answer")
    ex = w.state.explanation
    top = ", ".join(f"{ex.answer_texts[k]!r} {r.share[k]:.0%}" for k in r.order[:5])
    return f"box {tuple(round(v) for v in box)}: {top}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model folder or Hub id (default: the demo model)")
    parser.add_argument("--compare-with", metavar="MODEL",
                        help="also shoot the compare window: --model (A) against MODEL (B)")
    parser.add_argument("--only", nargs="+", choices=SHOTS, default=SHOTS,
                        help="just these shots (compare also needs --compare-with)")
    args = parser.parse_args()
    os.environ.setdefault("TAM_DESKTOP_CONFIG_DIR", tempfile.mkdtemp(prefix="tam-shots-"))
    from PySide6.QtWidgets import QApplication

    from tam_engine.core.resources import demo_model_path, sample_image_path, sample_video_path

    app = QApplication.instance() or QApplication(sys.argv[:1])
    model = args.model or str(demo_model_path())
    if "image" in args.only:
        print(shoot(app, sample_image_path(), model, "Describe this image.",
                    DOCS / "screenshot-image.png"))
    if "video" in args.only:
        print(shoot(app, sample_video_path(), model, "What is happening in this video?",
                    DOCS / "screenshot-video.png"))
    if "tiles" in args.only:
        print(shoot_tiles(app, DOCS / "screenshot-tiles.png"))
    if "flags" in args.only:
        print(shoot_flags(app, sample_image_path(), model, "Describe this image.",
                          DOCS / "screenshot-flags.png"))
    if "region" in args.only:
        print(shoot(app, sample_image_path(), model, "Describe this image.",
                    DOCS / "screenshot-region.png",
                    prepare=lambda w: query_region(app, w)))
    if args.compare_with and "compare" in args.only:
        print(shoot_compare(app, sample_image_path(), model, args.compare_with,
                            "Describe this image.", DOCS / "screenshot-compare.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
