"""Synthetic scenes of coloured shapes with exact masks and captions, deterministic by seed.

They serve three purposes: training data for the bundled demo model, sample media for the GUI,
and a dataset with perfect ground truth for ``tam eval`` (the paper's metrics need a mask per
named object; here every colour and shape word has one).

Captions follow one regular grammar so that a tiny model can learn them exactly:

- image: ``"a red circle."``, ``"a red circle and a blue square."``,
  ``"a red circle, an orange square and a green triangle."``
- video (the default, ``captions="objects"``): the objects only, as image captions:
  ``"a green triangle."``; with ``captions="motion"`` also where each moves:
  ``"a red circle moves up and a blue square moves right."``

Objects are named in a canonical order (shape, then colour, in the order of :data:`SHAPES` and
:data:`COLORS`), never in screen order, so the caption is a function of the set of objects.
Each (colour, shape) pair appears at most once per scene and objects never overlap, so every
word has one unambiguous mask.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 160, 60),
    "blue": (35, 75, 215),
    "yellow": (235, 200, 30),
    "purple": (135, 55, 175),
    "orange": (245, 135, 25),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
_DIR_VEC = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
#: Function words of the captions (they should activate nothing).
FUNCTION_WORDS: tuple[str, ...] = ("a", "an", "and")
#: Every word a caption can contain, in a fixed order.
CAPTION_WORDS: tuple[str, ...] = (
    *FUNCTION_WORDS, *COLORS, *SHAPES, "moves", *DIRECTIONS)

VIDEO_FPS = 2.0
#: Object radius range in pixels at 224 px (scaled with the frame size). Objects of 2-3 map
#: cells keep their peak under TAM's 3 x 3 rank filter; single-cell objects often do not.
IMAGE_RADIUS = (30.0, 46.0)
VIDEO_RADIUS = (26.0, 38.0)
_MAX_TRIES = 200
#: Object centres lie on the centres of a ``LATTICE x LATTICE`` grid of cells (0: anywhere).
#: A lattice of 8 (28-px cells at 224 px) lets a tiny model learn shapes in minutes; sizes,
#: colours and backgrounds still vary. The demo model sees these scenes scaled to 336 px, on a
#: 12 x 12 map grid, where objects span 3-5 cells and their maps survive the 3 x 3 rank filter.
LATTICE = 8
#: How far each video object moves over a clip, in lattice cells (one cell: 4 px a frame at
#: 224 px, so maps visibly follow the objects from one temporal slot to the next).
VIDEO_TRAVEL = 1
#: What video captions say: "objects" (the objects only, in the image grammar) or "motion"
#: (each object and where it moves). The demo model is trained on "objects": with "motion" it
#: got the direction word right too rarely (5 % exact video captions, see its model card).
VIDEO_CAPTIONS = "objects"


@dataclass
class SynthObject:
    """One shape in a scene.

    ``mask`` is ``(H, W)`` bool for an image, ``(n, H, W)`` for a video. ``center`` and
    ``radius`` are in pixels (the first frame's centre for a video); ``direction`` is set for
    video objects only.
    """

    color: str
    shape: str
    mask: np.ndarray = field(repr=False)
    center: tuple[float, float] = (0.0, 0.0)
    radius: float = 0.0
    direction: str | None = None

    @property
    def category(self) -> str:
        return self.shape

    @property
    def words(self) -> list[str]:
        return [self.color, self.shape]

    @property
    def phrase(self) -> str:
        article = "an" if self.color[0] in "aeiou" else "a"
        return f"{article} {self.color} {self.shape}"


@dataclass
class Scene:
    """A still image: ``image`` (H, W, 3) uint8 RGB, its objects and caption."""

    image: np.ndarray = field(repr=False)
    objects: list[SynthObject]
    caption: str
    seed: int = 0


@dataclass
class VideoScene:
    """A short clip: ``frames`` (n, H, W, 3) uint8 RGB, objects with (n, H, W) masks."""

    frames: np.ndarray = field(repr=False)
    objects: list[SynthObject]
    caption: str
    fps: float = VIDEO_FPS
    seed: int = 0


# ---------------------------------------------------------------------------------- drawing
def _shape_mask(shape: str, cx: float, cy: float, r: float, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        a = 0.85 * r  # about the same area as the circle, so size does not give the shape away
        return (np.abs(dx) <= a) & (np.abs(dy) <= a)
    if shape == "triangle":
        # Upright isosceles triangle inscribed in the box [-r, r]^2: apex at the top centre.
        inside_y = (dy <= r) & (dy >= -r)
        half_width = (dy + r) / 2.0  # 0 at the apex, r at the base
        return inside_y & (np.abs(dx) <= half_width)
    raise ValueError(f"unknown shape {shape!r}")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A light, low-saturation background, plain or lightly textured."""
    base = rng.uniform(200, 250) + rng.uniform(-12, 12, size=3)
    img = np.broadcast_to(base, (size, size, 3)).astype(np.float32).copy()
    kind = rng.integers(0, 4)
    if kind == 1:  # fine noise
        img += rng.normal(0.0, 5.0, size=(size, size, 1))
    elif kind == 2:  # soft stripes
        period = rng.uniform(10, 30) * size / 224
        phase = rng.uniform(0, 2 * np.pi)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        img += (6.0 * np.sin(2 * np.pi * t / period + phase))[..., None]
    elif kind == 3:  # gentle gradient
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        g = rng.uniform(-15, 15) * xx + rng.uniform(-15, 15) * yy
        img += g[..., None]
    return img


def _paint(img: np.ndarray, mask: np.ndarray, color: str, rng: np.random.Generator) -> None:
    rgb = np.asarray(COLORS[color], np.float32) + rng.uniform(-12, 12, size=3)
    img[mask] = rgb


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _pick_pairs(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    colors, shapes = list(COLORS), list(SHAPES)
    all_pairs = [(c, s) for s in shapes for c in colors]
    idx = rng.choice(len(all_pairs), size=n, replace=False)
    return [all_pairs[i] for i in idx]


def _canonical(objs: list[SynthObject]) -> list[SynthObject]:
    colors = list(COLORS)
    return sorted(objs, key=lambda o: (SHAPES.index(o.shape), colors.index(o.color)))


def _join(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0] + "."
    return ", ".join(phrases[:-1]) + " and " + phrases[-1] + "."


def _lattice_point(rng: np.random.Generator, lattice: int, size: int, r: float
                   ) -> tuple[float, float]:
    """A cell centre of the lattice; on fine lattices (>= 6) only cells the object fits in."""
    cell = size / lattice
    if lattice < 6:
        i, j = rng.integers(0, lattice, size=2)
    else:
        idx = np.arange(lattice)
        centres = (idx + 0.5) * cell
        fits = idx[(centres - r >= 3) & (centres + r <= size - 3)]
        i, j = rng.choice(fits if fits.size else idx, size=2)
    return float((i + 0.5) * cell), float((j + 0.5) * cell)


def _boxes_apart(a: tuple[float, float, float, float], b: tuple[float, float, float, float],
                 gap: float) -> bool:
    return (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1]
            or b[3] + gap <= a[1])


# ---------------------------------------------------------------------------------- scenes
def make_image_scene(seed: int, size: int = 224, n_objects: int | None = None,
                     lattice: int = LATTICE) -> Scene:
    """A still scene of 1-3 non-overlapping shapes (``n_objects`` forces the count).

    Object centres sit on the cell centres of a ``lattice x lattice`` grid (0: anywhere).
    """
    rng = np.random.default_rng(seed)
    n = int(n_objects) if n_objects else int(rng.integers(1, 4))
    scale = size / 224.0
    img = _background(rng, size)
    boxes: list[tuple[float, float, float, float]] = []
    objs: list[SynthObject] = []
    for color, shape in _pick_pairs(rng, n):
        for _ in range(_MAX_TRIES):
            r = rng.uniform(*IMAGE_RADIUS) * scale
            if lattice:
                cx, cy = _lattice_point(rng, lattice, size, r)
                r = min(r, cx - 3, cy - 3, size - cx - 3, size - cy - 3)  # inside the frame
            else:
                cx, cy = rng.uniform(r + 3, size - r - 3, size=2)
            box = (cx - r, cy - r, cx + r, cy + r)
            if all(_boxes_apart(box, b, 6 * scale) for b in boxes):
                break
        else:  # no room left: fewer objects, still deterministic
            continue
        boxes.append(box)
        mask = _shape_mask(shape, cx, cy, r, size)
        _paint(img, mask, color, rng)
        objs.append(SynthObject(color, shape, mask, (float(cx), float(cy)), float(r)))
    objs = _canonical(objs)
    return Scene(_to_u8(img), objs, _join([o.phrase for o in objs]), seed)


def make_video_scene(seed: int, size: int = 224, n_frames: int = 8,
                     n_objects: int | None = None, lattice: int = LATTICE,
                     travel: int = VIDEO_TRAVEL, captions: str = VIDEO_CAPTIONS
                     ) -> VideoScene:
    """A clip of 1-2 shapes, each moving steadily left, right, up or down, never overlapping.

    The caption says how each moves (``"a green triangle moves left."``) or, with
    ``captions="objects"``, only what it is (``"a green triangle."``). With a lattice, each
    object starts on a cell centre and moves exactly ``travel`` cells over the clip.
    """
    if captions not in ("motion", "objects"):
        raise ValueError(f"unknown video caption kind {captions!r}")
    rng = np.random.default_rng(seed)
    n = int(n_objects) if n_objects else int(rng.integers(1, 3))
    scale = size / 224.0
    bg = _background(rng, size)
    frames = np.repeat(bg[None], n_frames, axis=0)
    sweeps: list[tuple[float, float, float, float]] = []
    objs: list[SynthObject] = []
    for color, shape in _pick_pairs(rng, n):
        for _ in range(_MAX_TRIES):
            r = rng.uniform(*VIDEO_RADIUS) * scale
            direction = DIRECTIONS[int(rng.integers(0, 4))]
            speed = rng.uniform(6, 9) * scale  # pixels per frame
            ux, uy = _DIR_VEC[direction]
            if lattice:
                speed = travel * size / lattice / max(1, n_frames - 1)
                x0, y0 = _lattice_point(rng, lattice, size, r)
            else:
                x0, y0 = rng.uniform(r + 3, size - r - 3, size=2)
            dist = speed * (n_frames - 1)
            x1, y1 = x0 + ux * dist, y0 + uy * dist
            sweep = (min(x0, x1) - r, min(y0, y1) - r, max(x0, x1) + r, max(y0, y1) + r)
            inside = sweep[0] >= 2 and sweep[1] >= 2 and sweep[2] <= size - 2 \
                and sweep[3] <= size - 2
            if inside and all(_boxes_apart(sweep, b, 6 * scale) for b in sweeps):
                break
        else:
            continue
        sweeps.append(sweep)
        rgb_rng = np.random.default_rng(rng.integers(0, 2**63))
        masks = np.zeros((n_frames, size, size), bool)
        for f in range(n_frames):
            cx, cy = x0 + ux * speed * f, y0 + uy * speed * f
            masks[f] = _shape_mask(shape, cx, cy, r, size)
        rgb = np.asarray(COLORS[color], np.float32) + rgb_rng.uniform(-12, 12, size=3)
        frames[masks] = rgb
        objs.append(SynthObject(color, shape, masks, (float(x0), float(y0)), float(r),
                                direction))
    objs = _canonical(objs)
    if captions == "motion":
        caption = _join([f"{o.phrase} moves {o.direction}" for o in objs])
    else:
        caption = _join([o.phrase for o in objs])
    return VideoScene(_to_u8(frames), objs, caption, VIDEO_FPS, seed)


def item_seed(base_seed: int, kind: str, index: int) -> int:
    """The scene seed of item ``index`` of a dataset: independent streams per kind and base."""
    k = {"image": 0, "video": 1}[kind]
    return int(np.random.SeedSequence([int(base_seed), k, int(index)]).generate_state(1)[0])


# ---------------------------------------------------------------------------------- files
def encode_png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def encode_mp4(frames: np.ndarray, fps: float = VIDEO_FPS, crf: int = 18) -> bytes:
    """H.264 (yuv420p) MP4 of ``frames`` (n, H, W, 3) uint8 RGB, one frame per 1/fps second."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        # Deterministic output: no threads, fixed settings.
        stream.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
        stream.codec_context.thread_count = 1
        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def write_dataset(out_dir: str | Path, n_images: int, n_videos: int, seed: int = 0,
                  size: int = 224, n_frames: int = 8, progress=None) -> Path:
    """Write ``n_images`` images and ``n_videos`` videos in the tam-synthetic layout.

    ``progress(i, n)`` is called after each item. Returns the path of ``meta.json``.
    """
    from tam_engine.core.atomic import atomic_write_bytes

    out = Path(out_dir)
    items: list[dict] = []
    total = n_images + n_videos
    for i in range(n_images):
        scene = make_image_scene(item_seed(seed, "image", i), size)
        name = f"img_{i:05d}"
        atomic_write_bytes(out / "images" / f"{name}.png", encode_png(scene.image))
        objects: list[dict[str, object]] = []
        for j, o in enumerate(scene.objects):
            rel = f"masks/{name}_{j}.png"
            atomic_write_bytes(out / rel, encode_png(o.mask.astype(np.uint8) * 255))
            objects.append({"category": o.category, "color": o.color, "words": o.words,
                            "mask": rel})
        items.append({"id": name, "type": "image", "file": f"images/{name}.png", "fps": None,
                      "caption": scene.caption, "objects": objects, "seed": scene.seed})
        if progress:
            progress(i + 1, total)
    for i in range(n_videos):
        vs = make_video_scene(item_seed(seed, "video", i), size, n_frames)
        name = f"vid_{i:05d}"
        atomic_write_bytes(out / "videos" / f"{name}.mp4", encode_mp4(vs.frames, vs.fps))
        objects = []
        for j, o in enumerate(vs.objects):
            rel = f"masks/{name}_{j}.npz"
            buf = io.BytesIO()
            np.savez_compressed(buf, masks=o.mask.astype(np.uint8))
            atomic_write_bytes(out / rel, buf.getvalue())
            objects.append({"category": o.category, "color": o.color, "words": o.words,
                            "direction": o.direction, "mask": rel})
        items.append({"id": name, "type": "video", "file": f"videos/{name}.mp4",
                      "fps": vs.fps, "caption": vs.caption, "objects": objects,
                      "seed": vs.seed})
        if progress:
            progress(n_images + i + 1, total)
    meta = {"format": "tam-synthetic", "version": 1, "seed": int(seed), "size": int(size),
            "items": items}
    path = out / "meta.json"
    atomic_write_bytes(path, json.dumps(meta, indent=1).encode("utf-8"))
    return path
