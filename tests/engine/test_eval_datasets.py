"""Dataset readers on tiny hand-made folders in each supported layout."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tam_engine.core.words import group_words
from tam_engine.eval.datasets import DatasetError, detect_format, open_dataset
from tam_engine.eval.masks import mask_to_rle


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _img(path: Path, h: int, w: int) -> None:
    _png(path, np.full((h, w, 3), 128, np.uint8))


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _box(h, w, y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def _cats(item, caption: str) -> list[str]:
    words = group_words([" " + t for t in caption.split()])
    return [m.category for m in item.vocabulary.match(words)]


# ------------------------------------------------------------------------------- synthetic
def test_synthetic_layout(tmp_path):
    root = tmp_path / "syn"
    _img(root / "images/img_00000.png", 16, 16)
    red, blue, sq = _box(16, 16, 0, 4, 0, 4), _box(16, 16, 8, 12, 8, 12), _box(16, 16, 0, 3, 10, 16)
    for j, m in enumerate((red, blue, sq)):
        _png(root / f"masks/img_00000_{j}.png", m.astype(np.uint8) * 255)
    (root / "videos").mkdir()
    (root / "videos/vid_00000.mp4").write_bytes(b"not decoded by the reader")
    vm = np.zeros((3, 16, 16), np.uint8)
    vm[:, 2:5, 2:5] = 1
    buf = io.BytesIO()
    np.savez_compressed(buf, masks=vm)
    (root / "masks/vid_00000_0.npz").write_bytes(buf.getvalue())
    _json(root / "meta.json", {"format": "tam-synthetic", "version": 1, "items": [
        {"id": "img_00000", "type": "image", "file": "images/img_00000.png", "fps": None,
         "caption": "a red circle, a blue circle and a green square.", "objects": [
             {"category": "circle", "color": "red", "words": ["red", "circle"],
              "mask": "masks/img_00000_0.png"},
             {"category": "circle", "color": "blue", "words": ["blue", "circle"],
              "mask": "masks/img_00000_1.png"},
             {"category": "square", "color": "green", "words": ["green", "square"],
              "mask": "masks/img_00000_2.png"}]},
        {"id": "vid_00000", "type": "video", "file": "videos/vid_00000.mp4", "fps": 2.0,
         "caption": "a red triangle moves left.", "objects": [
             {"category": "triangle", "color": "red", "words": ["red", "triangle"],
              "mask": "masks/vid_00000_0.npz"}]}]})
    assert detect_format(root) == "synthetic"
    ds = open_dataset(root)
    assert ds.format == "synthetic" and [it.id for it in ds.items] == ["img_00000", "vid_00000"]
    img, vid = ds.items
    assert img.kind == "image" and img.media == [str(root / "images/img_00000.png")]
    assert img.references == ["a red circle, a blue circle and a green square."]
    masks = img.masks()
    assert set(masks) == {"red circle", "blue circle", "green square"}
    assert np.array_equal(masks["blue circle"], blue) and masks["red circle"].dtype == bool
    # Two circles: "circle" alone is ambiguous and names nothing; the lone square can.
    assert _cats(img, "a red circle and a circle") == ["red circle"]
    assert _cats(img, "a square and two blue circles") == ["green square", "blue circle"]
    assert vid.kind == "video" and vid.mask_fps == 2.0
    assert vid.masks()["red triangle"].shape == (3, 16, 16)
    assert _cats(vid, "the triangle") == ["red triangle"]


def test_synthetic_written_by_tam_synth(tmp_path):
    from tam_engine.demo.synth import write_dataset

    write_dataset(tmp_path / "s", n_images=2, n_videos=1, seed=3, size=32, n_frames=4)
    ds = open_dataset(tmp_path / "s", "synthetic")
    assert len(ds) == 3
    for it in ds.items:
        masks = it.masks()
        assert masks and all(m.any() for m in masks.values())
        # Every object is named by its own caption.
        assert set(_cats(it, it.references[0].replace(",", " ").replace(".", " "))) == set(masks)


# ------------------------------------------------------------------------------- COCO
def _coco(root: Path) -> None:
    _img(root / "image/COCO_val2014_000000000001.jpg", 20, 30)
    _img(root / "image/000000000002.jpg", 10, 10)          # renamed copy: found by its id
    (root / "seg_label").mkdir(parents=True)           # the authors' extra folder: ignored
    p1 = _box(20, 30, 5, 10, 0, 4)
    p2 = _box(20, 30, 0, 2, 20, 30)
    crowd = _box(10, 10, 0, 10, 0, 5)
    _json(root / "annotations/instances_minival2014.json", {
        "images": [
            {"id": 2, "file_name": "COCO_val2014_000000000002.jpg", "height": 10, "width": 10},
            {"id": 1, "file_name": "COCO_val2014_000000000001.jpg", "height": 20, "width": 30},
            {"id": 3, "file_name": "COCO_val2014_000000000003.jpg", "height": 5, "width": 5},
            {"id": 4, "file_name": "COCO_val2014_000000000002.jpg", "height": 10, "width": 10}],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"},
                       {"id": 85, "name": "clock"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 18, "iscrowd": 0,
             "segmentation": [[10, 2, 19, 2, 19, 7, 10, 7]]},
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": mask_to_rle(p1)},
            {"id": 12, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": mask_to_rle(p2)},
            {"id": 13, "image_id": 2, "category_id": 85, "iscrowd": 1,
             "segmentation": mask_to_rle(crowd, compressed=False)},
            {"id": 14, "image_id": 3, "category_id": 85, "iscrowd": 0,
             "segmentation": [[0, 0, 3, 0, 3, 3]]}]})
    _json(root / "annotations/captions_val2014.json", {"annotations": [
        {"image_id": 1, "id": 1, "caption": "A man walks a dog. "},
        {"image_id": 1, "id": 2, "caption": "Two people and a puppy."}]})


def test_coco_layout(tmp_path):
    root = tmp_path / "coco2014"
    _coco(root)
    assert detect_format(root) == "coco"
    ds = open_dataset(root)
    # Image 3's file is missing (skipped, counted); image 4 has no annotation (left out).
    assert [it.id for it in ds.items] == ["1", "2"] and ds.skipped == 1
    one, two = ds.items
    assert one.references == ["A man walks a dog.", "Two people and a puppy."]
    assert two.references == []
    m = one.masks()
    assert set(m) == {"person", "dog"}
    assert m["person"].sum() == 20 + 20                      # two people, one union mask
    assert m["dog"][2:7, 10:19].all() and m["dog"].sum() == 5 * 9    # the polygon's area
    assert two.masks()["clock"].sum() == 50                  # uncompressed crowd RLE
    assert _cats(one, "a woman with her puppy near a clock") == ["person", "dog", "clock"]


def test_coco_without_images_says_where_to_put_them(tmp_path):
    root = tmp_path / "c"
    _json(root / "annotations/instances_val2014.json", {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 2, "width": 2}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                         "segmentation": [[0, 0, 1, 0, 1, 1]]}]})
    with pytest.raises(DatasetError) as err:
        open_dataset(root, "coco")
    assert "images" in err.value.hint


# ------------------------------------------------------------------------------- GranD-f
def test_grandf_val_test_layout(tmp_path):
    root = tmp_path / "GranDf"
    _img(root / "GranDf_HA_images/val_test/sa_1.jpg", 12, 16)
    man, shirt, grass = (_box(12, 16, 0, 6, 0, 5), _box(12, 16, 2, 4, 1, 4),
                         _box(12, 16, 10, 12, 0, 16))
    _json(root / "annotations/val_test/val_gcg_coco_caption_gt.json", {
        "images": [{"id": "sa_1", "file_name": "sa_1.jpg", "height": 12, "width": 16}],
        "annotations": [{"id": 1, "image_id": "sa_1",
                         "caption": "A man in a red shirt stands on the grass.",
                         "labels": ["A man in a red shirt", "the grass"]}]})
    _json(root / "annotations/val_test/val_gcg_coco_mask_gt.json", {
        "images": [{"id": "sa_1", "file_name": "sa_1.jpg", "height": 12, "width": 16}],
        "annotations": [
            {"id": 2, "image_id": "sa_1", "category_id": 1, "segmentation": mask_to_rle(grass)},
            {"id": 1, "image_id": "sa_1", "category_id": 1, "segmentation": mask_to_rle(man)},
        ]})
    # A train list file must not be picked over the val/test pair.
    _json(root / "annotations/train/GranDf_HA_GCG_train.json", [])
    assert detect_format(root) == "grandf"
    ds = open_dataset(root)
    assert [it.id for it in ds.items] == ["sa_1"]
    it = ds.items[0]
    m = it.masks()
    assert set(m) == {"man", "grass"}
    assert np.array_equal(m["man"], man) and np.array_equal(m["grass"], grass)
    assert not np.array_equal(m["man"], shirt)
    assert it.references == ["A man in a red shirt stands on the grass."]
    # Heads that COCO names get its everyday words: "person" and "guy" find the man.
    assert _cats(it, "a person on grass") == ["man", "grass"]
    assert _cats(it, "a guy") == ["man"]


def _gcg_list(path: Path, file_name: str, h: int, w: int, groundings: dict) -> None:
    _json(path, [{"file_name": file_name, "caption": '"Two dogs play near a tree."',
                  "groundings": {ph: {"token_positives": [0, 1],
                                      "rle_masks": [mask_to_rle(m) for m in ms]}
                                 for ph, ms in groundings.items()}}])


def test_grandf_list_layout(tmp_path):
    root = tmp_path / "g"
    _img(root / "images/sa_7.jpg", 8, 8)
    d1, d2, tree = _box(8, 8, 0, 2, 0, 2), _box(8, 8, 6, 8, 6, 8), _box(8, 8, 0, 8, 4, 5)
    _gcg_list(root / "GranDf_HA_GCG_val.json", "sa_7.jpg", 8, 8,
              {"Two dogs": [d1, d2], "a tree": [tree], "it": [tree]})
    ds = open_dataset(root, "grandf")
    it = ds.items[0]
    assert it.id == "sa_7" and it.references == ["Two dogs play near a tree."]
    m = it.masks()
    assert set(m) == {"dog", "tree"}                      # "it" names nothing
    assert m["dog"].sum() == 8 and m["tree"].sum() == 8
    assert _cats(it, "a dog and two trees") == ["dog", "tree"]


def test_openpsg_list_layout(tmp_path):
    root = tmp_path / "psg"
    _img(root / "coco_2017/train2017/000000000042.jpg", 8, 8)
    d = _box(8, 8, 0, 4, 0, 4)
    _gcg_list(root / "annotations/OpenPsgGCG_val.json", "000000000042.jpg", 8, 8,
              {"a dog": [d]})
    _gcg_list(root / "annotations/GranDf_HA_GCG_val.json", "nothere.jpg", 8, 8, {"x": [d]})
    ds = open_dataset(root, "openpsg")
    assert ds.format == "openpsg" and [it.id for it in ds.items] == ["000000000042"]
    assert np.array_equal(ds.items[0].masks()["dog"], d)


# ------------------------------------------------------------------------------- errors
def test_unknown_folder_and_format(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as err:
        open_dataset(tmp_path / "empty")
    assert "--format" in err.value.hint
    with pytest.raises(DatasetError):
        open_dataset(tmp_path / "empty", "grandf")
    _json(tmp_path / "bad/meta.json", {"format": "something-else"})
    with pytest.raises(DatasetError) as err:
        open_dataset(tmp_path / "bad")
    assert "tam synth" in err.value.hint
