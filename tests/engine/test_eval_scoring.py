"""Word-level scoring of hand-made explanations with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid
from tam_engine.core.token_maps import TokenMaps
from tam_engine.eval.datasets import EvalItem, coco_vocabulary
from tam_engine.eval.metrics import otsu_threshold
from tam_engine.eval.scoring import score_explanation
from tam_engine.eval.words import Vocabulary

H = W = 8


def make_expl(texts: list[str], maps: np.ndarray, media: list[MediaItem] | None = None
              ) -> Explanation:
    """An explanation whose answer token ``k`` has the uint8 map ``maps[k]`` ((t,) h, w)."""
    maps = np.asarray(maps, np.uint8)
    if maps.ndim == 3:
        maps = maps[:, None]
    T, t, h, w = maps.shape
    n_vis = t * h * w
    L = 1 + n_vis
    vec = maps.reshape(T, n_vis)
    f = vec.astype(np.float32) / 255
    tm = TokenMaps(kind="answer", token_ids=np.arange(T), positions=np.arange(L, L + T),
                   texts=list(texts), raw=f, eci=f, filtered=f, maps=vec,
                   alpha=np.zeros(T, np.float32), relevance=np.zeros((T, T), np.float32),
                   context=np.zeros((T, T), bool), norm_lo=np.zeros(T, np.float32),
                   norm_hi=np.ones(T, np.float32))
    grid = VisionGrid(kind="video" if t > 1 else "image", media_index=0, t=t, h=h, w=w,
                      positions=np.arange(1, 1 + n_vis))
    return Explanation(ids=np.arange(L + T), input_len=L,
                       token_texts=["<s>"] + ["<img>"] * n_vis + list(texts), grids=[grid],
                       prompt_positions=np.zeros(0, np.int64), answer=tm, prompt=None,
                       candidates=None, options=TamOptions(), media=media or [])


def make_item(masks: dict[str, np.ndarray], vocab: Vocabulary, kind="image", fps=None
              ) -> EvalItem:
    return EvalItem(id="x", kind=kind, media=["x.png"], references=["ref"], vocabulary=vocab,
                    mask_fps=fps, _load_masks=lambda: masks)


def box(y0, y1, x0, x1, shape=(H, W)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def u8(mask: np.ndarray) -> np.ndarray:
    return mask.astype(np.uint8) * 255


DOG = box(1, 5, 1, 5)
CAT = box(4, 8, 5, 8)
DARK = np.zeros((H, W), np.uint8)


def test_perfect_noun_maps_and_dark_function_words():
    texts = ["A", " dog", " and", " a", " cat"]
    maps = np.stack([DARK, u8(DOG), DARK, DARK, u8(CAT)])
    item = make_item({"dog": DOG, "cat": CAT}, coco_vocabulary(["dog", "cat"]))
    s = score_explanation(make_expl(texts, maps), item)
    assert [(e["text"], e["iou"]) for e in s["obj"]] == [("dog", 1.0), ("cat", 1.0)]
    assert [(e["text"], e["class"], e["func_iou"]) for e in s["func"]] == [
        ("A", "determiner", 1.0), ("and", "conjunction", 1.0), ("a", "determiner", 1.0)]
    assert s["absent_nouns"] == []


def test_empty_noun_map_scores_zero():
    item = make_item({"dog": DOG}, coco_vocabulary(["dog"]))
    s = score_explanation(make_expl(["the", " dog"], np.stack([DARK, DARK])), item)
    assert s["obj"][0]["iou"] == 0.0


def test_multi_token_word_takes_its_best_token():
    texts = [" sur", "f", "board"]
    bad = u8(box(0, 2, 0, 8))
    maps = np.stack([bad, u8(DOG), bad])
    item = make_item({"surfboard": DOG}, coco_vocabulary(["surfboard"]))
    s = score_explanation(make_expl(texts, maps), item)
    assert len(s["obj"]) == 1
    assert s["obj"][0]["iou"] == 1.0 and s["obj"][0]["token"] == 1


def test_consecutive_words_of_one_category_merge_keeping_the_best():
    # "man" and "player" both name a person: one entry, the better of the two.
    texts = [" a", " man", " player", " and", " a", " man"]
    half = u8(box(1, 3, 1, 5))                    # IoU 0.5 with DOG
    maps = np.stack([DARK, half, u8(DOG), DARK, DARK, half])
    item = make_item({"person": DOG}, coco_vocabulary(["person"]))
    s = score_explanation(make_expl(texts, maps), item)
    assert [(e["text"], round(e["iou"], 3)) for e in s["obj"]] == [
        ("man player", 1.0), ("man", 0.5)]      # not consecutive with the first run: kept apart


def test_function_threshold_is_the_mean_otsu_threshold_of_noun_tokens():
    dog_map = u8(DOG) // 2 + 20                   # values 20 and 147
    cat_map = u8(CAT)                              # values 0 and 255
    dim = np.full((H, W), 5, np.uint8)
    dim[:2] = 200
    texts = [" dog", " and", " cat"]
    item = make_item({"dog": DOG, "cat": CAT}, coco_vocabulary(["dog", "cat"]))
    s = score_explanation(make_expl(texts, np.stack([dog_map, dim, cat_map])), item)
    thr = (otsu_threshold(dog_map) + otsu_threshold(cat_map)) / 2
    assert s["threshold"] == pytest.approx(thr)
    expected = np.count_nonzero(dim <= thr) / dim.size
    assert s["func"][0]["func_iou"] == pytest.approx(expected)
    assert thr == pytest.approx(10.0) and expected == pytest.approx(0.75)


def test_nouns_of_absent_categories_are_counted_not_scored():
    item = make_item({"dog": DOG}, coco_vocabulary(["dog", "cat"]))
    s = score_explanation(make_expl([" a", " cat"], np.stack([DARK, u8(DOG)])), item)
    assert s["obj"] == [] and s["absent_nouns"] == ["cat"]
    assert s["func"] == [] and s["threshold"] is None      # no noun, no threshold


def test_maps_are_resized_to_the_mask():
    big = box(8, 40, 8, 40, shape=(64, 64))       # the 8x8 map's cells 1..4, 8x upscaled
    item = make_item({"dog": big}, coco_vocabulary(["dog"]))
    s = score_explanation(make_expl([" dog"], u8(DOG)[None]), item)
    assert s["obj"][0]["iou"] > 0.75


def test_video_frames_follow_the_mask_frame_rate():
    # 2 map slots, 4 displayed frames sampled at 1 fps from masks stored at 2 fps.
    masks = np.zeros((8, H, W), bool)
    masks[0] = DOG
    masks[2] = DOG                                  # t = 1 s
    masks[4] = CAT                                  # t = 2 s
    masks[6] = CAT                                  # t = 3 s
    token_map = np.stack([u8(DOG), u8(CAT)])         # slot 0 -> dog box, slot 1 -> cat box
    media = MediaItem(kind="video", path="v.mp4", frames=np.zeros((4, H, W, 3)),
                      frame_slot=np.array([0, 0, 1, 1]), timestamps=np.arange(4.0), fps=1.0)
    item = make_item({"thing": masks}, Vocabulary({"thing": []}), kind="video", fps=2.0)
    s = score_explanation(make_expl([" thing"], token_map[None], media=[media]), item)
    assert s["obj"][0]["iou"] == 1.0
    # Read at the wrong rate (1 fps), frames 1 and 3 of the masks are empty: IoU drops.
    item_wrong = make_item({"thing": masks}, Vocabulary({"thing": []}), kind="video", fps=1.0)
    s2 = score_explanation(make_expl([" thing"], token_map[None], media=[media]), item_wrong)
    assert s2["obj"][0]["iou"] < 0.6
