from __future__ import annotations

import json

import numpy as np
import pytest

from tam_engine.cli import main as tam_main
from tam_engine.demo import synth


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_image_scene_is_deterministic_and_consistent(seed):
    a, b = synth.make_image_scene(seed), synth.make_image_scene(seed)
    assert np.array_equal(a.image, b.image) and a.caption == b.caption
    assert a.image.shape == (224, 224, 3) and a.image.dtype == np.uint8
    assert 1 <= len(a.objects) <= 3
    pairs = [(o.color, o.shape) for o in a.objects]
    assert len(set(pairs)) == len(pairs)
    union = np.zeros((224, 224), int)
    for o in a.objects:
        assert o.mask.shape == (224, 224) and o.mask.sum() > 500
        union += o.mask
        # The object's pixels carry its colour (within the jitter), the background does not.
        mean = a.image[o.mask].mean(axis=0)
        assert np.abs(mean - np.array(synth.COLORS[o.color])).max() < 20
    assert union.max() == 1  # never overlapping
    for o in a.objects:
        assert o.phrase in a.caption
    assert a.caption.endswith(".")
    assert set(a.caption.rstrip(".").replace(",", "").split()) <= set(synth.CAPTION_WORDS)


def test_different_seeds_differ_and_cover_the_vocabulary():
    scenes = [synth.make_image_scene(s) for s in range(60)]
    assert len({s.caption for s in scenes}) > 40
    words = {w for s in scenes for o in s.objects for w in o.words}
    assert words == set(synth.COLORS) | set(synth.SHAPES)
    assert {len(s.objects) for s in scenes} == {1, 2, 3}
    assert any(" an orange" in s.caption or s.caption.startswith("an ") for s in scenes)


def test_caption_order_is_canonical():
    scene = synth.make_image_scene(5, n_objects=3)
    order = [(synth.SHAPES.index(o.shape), list(synth.COLORS).index(o.color))
             for o in scene.objects]
    assert order == sorted(order)
    assert scene.caption.count(" and ") == 1 and scene.caption.count(",") == 1


@pytest.mark.parametrize("seed", [0, 3])
def test_video_scene_moves_as_the_caption_says(seed):
    v = synth.make_video_scene(seed, captions="motion")
    assert v.frames.shape == (8, 224, 224, 3) and v.fps == synth.VIDEO_FPS
    assert np.array_equal(v.frames, synth.make_video_scene(seed).frames)
    for o in v.objects:
        assert o.mask.shape == (8, 224, 224)
        assert f"{o.phrase} moves {o.direction}" in v.caption
        ys, xs = [], []
        for m in o.mask:
            yy, xx = np.nonzero(m)
            ys.append(yy.mean())
            xs.append(xx.mean())
        dx, dy = xs[-1] - xs[0], ys[-1] - ys[0]
        expected = {"left": dx < -20, "right": dx > 20, "up": dy < -20, "down": dy > 20}
        assert expected[o.direction]


@pytest.mark.parametrize("travel", [1, 2, 3])
def test_video_objects_travel_whole_lattice_cells(travel):
    cell = 224 / synth.LATTICE
    for seed in range(6):
        v = synth.make_video_scene(seed, travel=travel)
        assert v.objects
        for o in v.objects:
            ux, uy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[
                o.direction]
            ys, xs = np.nonzero(o.mask[-1])
            y0, x0 = np.nonzero(o.mask[0])
            # The last frame is the first moved by `travel` cells (same shape, same size).
            assert abs((xs.mean() - x0.mean()) - ux * travel * cell) < 0.5
            assert abs((ys.mean() - y0.mean()) - uy * travel * cell) < 0.5
            assert not o.mask[:, 0].any() and not o.mask[:, -1].any()
            assert not o.mask[:, :, 0].any() and not o.mask[:, :, -1].any()


def test_video_captions_can_name_the_objects_only():
    for seed in range(10):
        moving = synth.make_video_scene(seed, captions="motion")
        named = synth.make_video_scene(seed, captions="objects")
        # Same clip, same objects; only the caption differs.
        assert np.array_equal(moving.frames, named.frames)
        assert named.caption == synth._join([o.phrase for o in named.objects])
        assert " moves " not in named.caption and " moves " in moving.caption
    with pytest.raises(ValueError):
        synth.make_video_scene(0, captions="where")


def test_mp4_round_trip_keeps_every_frame():
    import io

    import av

    v = synth.make_video_scene(1)
    data = synth.encode_mp4(v.frames, v.fps)
    with av.open(io.BytesIO(data)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 8
    assert np.abs(np.stack(frames).astype(int) - v.frames).mean() < 4


def test_cli_writes_the_contract_layout(tmp_path, capsys):
    out = tmp_path / "ds"
    assert tam_main(["synth", str(out), "--images", "3", "--videos", "1", "--seed", "4"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format"] == "tam-synthetic" and meta["version"] == 1
    items = meta["items"]
    assert [i["type"] for i in items] == ["image"] * 3 + ["video"]
    from PIL import Image

    for item in items:
        assert (out / item["file"]).is_file()
        for obj in item["objects"]:
            assert obj["category"] in synth.SHAPES and obj["words"] == [obj["color"],
                                                                         obj["category"]]
            if item["type"] == "image":
                m = np.asarray(Image.open(out / obj["mask"]))
                assert m.shape == (224, 224) and set(np.unique(m)) <= {0, 255}
            else:
                m = np.load(out / obj["mask"])["masks"]
                assert m.shape == (8, 224, 224) and m.dtype == np.uint8 and m.max() == 1
    assert items[3]["fps"] == synth.VIDEO_FPS and items[0]["fps"] is None
    # Same seed, same bytes of the index (the scenes are deterministic).
    out2 = tmp_path / "ds2"
    tam_main(["synth", str(out2), "--images", "3", "--videos", "1", "--seed", "4"])
    assert (out2 / "meta.json").read_text() == (out / "meta.json").read_text()
    assert (out2 / "images/img_00001.png").read_bytes() == (out / "images/img_00001.png"
                                                            ).read_bytes()


def test_objects_sit_on_the_lattice_and_inside_the_frame():
    cell = 224 / synth.LATTICE
    for seed in range(20):
        scene = synth.make_image_scene(seed)
        for o in scene.objects:
            cx, cy = o.center
            assert (cx / cell - 0.5) % 1 == 0 and (cy / cell - 0.5) % 1 == 0
            ys, xs = np.nonzero(o.mask)
            assert ys.min() > 0 and xs.min() > 0 and ys.max() < 223 and xs.max() < 223
    free = synth.make_image_scene(3, lattice=0)
    assert any((o.center[0] / cell - 0.5) % 1 != 0 for o in free.objects)
