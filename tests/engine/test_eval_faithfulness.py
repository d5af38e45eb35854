"""Deletion/insertion AUC and the pointing game, on hand-made cases with known answers, and
end to end (the fake model of the eval tests, and a tiny real model by teacher forcing)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_eval_scoring import make_expl, make_item

from tam_engine.cli import main
from tam_engine.core.media import MediaItem
from tam_engine.eval.chance import CHANCE_LINES
from tam_engine.eval.datasets import coco_vocabulary, open_dataset
from tam_engine.eval.faithfulness import (
    FaithfulnessError,
    FaithfulnessSpec,
    auc,
    cell_order,
    faithfulness_record,
    kept_masks,
    parse_metrics,
    step_counts,
)
from tam_engine.eval.metrics import pointing_hit
from tam_engine.eval.runner import ResumeMismatchError, format_summary, run_eval, variants_for
from tam_engine.eval.scoring import score_explanation
from tam_engine.testing.fake_eval import fake_explain, fake_probs


# --------------------------------------------------------------------------- pieces
def test_metric_names_and_spec_refusals():
    assert parse_metrics("insertion, deletion") == ("deletion", "insertion")
    assert parse_metrics("Deletion") == ("deletion",)
    for bad in ("", "deletion,auc", ","):
        with pytest.raises(ValueError):
            parse_metrics(bad)
    with pytest.raises(ValueError):
        FaithfulnessSpec(steps=0)
    with pytest.raises(ValueError):
        FaithfulnessSpec(batch=0)
    with pytest.raises(ValueError):
        FaithfulnessSpec(metrics=("pointing",))


def test_steps_order_and_kept_pixels():
    np.testing.assert_array_equal(step_counts(4, 4), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(step_counts(144, 5), [0, 29, 58, 86, 115, 144])
    np.testing.assert_array_equal(step_counts(3, 10), [0, 1, 2, 3])   # K at most the cells
    rng = np.random.default_rng(0)
    assert cell_order(np.array([1.0, 5.0, 3.0]), rng).tolist() == [1, 2, 0]
    # ties come in a random order, each once
    orders = {tuple(cell_order(np.zeros(4), np.random.default_rng(s))) for s in range(20)}
    assert len(orders) > 1 and all(sorted(o) == [0, 1, 2, 3] for o in orders)
    # a 2 x 2 grid of 2 x 2-pixel cells on a 4 x 4 frame
    boxes = np.array([[0, 0, 2, 2], [2, 0, 4, 2], [0, 2, 2, 4], [2, 2, 4, 4]])
    order = np.array([3, 0, 1, 2])
    dele = kept_masks(boxes, order, np.array([0, 2, 4]), (4, 4), "deletion")
    ins = kept_masks(boxes, order, np.array([0, 2, 4]), (4, 4), "insertion")
    assert dele[0].all() and not dele[2].any() and not ins[0].any() and ins[2].all()
    want = np.zeros((4, 4), bool)
    want[2:, 2:] = want[:2, :2] = True                 # cells 3 and 0
    np.testing.assert_array_equal(ins[1], want)
    np.testing.assert_array_equal(dele[1], ~want)
    assert auc([0, 0.5, 1], [1, 0, 0]) == pytest.approx(0.25)


def _one_row_case(values):
    """A 1 x 4 image, one 1 x 4 grid of one-pixel cells; the dog is pixel 0; the token's
    probability is 1 while pixel 0 shows the original, else 0."""
    expl = make_expl([" dog"], np.asarray(values, np.uint8)[None, None, :],
                     media=[MediaItem(kind="image", path="x.png",
                                      frames=np.zeros((1, 1, 4, 3), np.uint8))])
    mask = np.array([[True, False, False, False]])
    item = make_item({"dog": mask}, coco_vocabulary(["dog"]))
    obj = score_explanation(expl, item)["obj"]

    def factory(it, ex):
        return lambda kept: np.asarray(kept, bool)[:, 0, :1].astype(float)

    return faithfulness_record(item, [expl], ["both"], obj, factory, FaithfulnessSpec(steps=4))


def test_auc_by_hand_on_a_known_model():
    # The dog's cell is the most activated: deleting it first drops p at once.
    rec = _one_row_case([200, 10, 20, 30])
    both = rec["variants"]["both"]
    assert rec["fractions"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert rec["tokens"] == [{"token": 0, "text": " dog", "category": "dog", "p": 1.0}]
    assert both["deletion"]["curves"] == [[1.0, 0.0, 0.0, 0.0, 0.0]]
    assert both["deletion"]["auc"] == [pytest.approx(0.125)]
    assert both["insertion"]["curves"] == [[0.0, 1.0, 1.0, 1.0, 1.0]]
    assert both["insertion"]["auc"] == [pytest.approx(0.875)]
    # The least activated: the worst map possible.
    worst = _one_row_case([0, 10, 20, 30])["variants"]["both"]
    assert worst["deletion"]["auc"] == [pytest.approx(0.875)]
    assert worst["insertion"]["auc"] == [pytest.approx(0.125)]
    # Chance orders: the dog's cell comes at some rank r; deletion + insertion = 1 here.
    for c in CHANCE_LINES:
        d, i = (rec["chance"][c][m]["auc"][0] for m in ("deletion", "insertion"))
        assert any(d == pytest.approx(v) for v in (0.125, 0.375, 0.625, 0.875))
        assert d + i == pytest.approx(1.0)


def test_videos_are_not_measured():
    expl = make_expl([" dog"], np.zeros((1, 2, 2, 2), np.uint8))
    item = make_item({"dog": np.ones((2, 4, 4), bool)}, coco_vocabulary(["dog"]), kind="video")
    rec = faithfulness_record(item, [expl], ["both"], [], lambda *a: None, FaithfulnessSpec())
    assert "images only" in rec["skipped"]


def test_pointing_game_by_hand():
    mask = np.zeros((40, 40), bool)
    mask[2, 10] = True
    peak = np.zeros((40, 40), np.uint8)
    peak[2, 2] = 255                                    # 8 pixels left of the mask
    assert pointing_hit(peak, mask, tolerance=15)
    assert pointing_hit(peak, mask, tolerance=8)
    assert not pointing_hit(peak, mask, tolerance=7.9)
    assert not pointing_hit(peak, mask, tolerance=0)
    peak[2, 10] = 255                                   # a tie, one point on the mask
    hits = [pointing_hit(peak, mask, 0, np.random.default_rng(s)) for s in range(40)]
    assert 5 < sum(hits) < 35                           # ties are broken at random
    # a constant map points at a random pixel: the hit rate is the (dilated) mask's area
    big = np.zeros((20, 20), bool)
    big[:10] = True
    flat = np.full((20, 20), 7, np.uint8)
    rate = np.mean([pointing_hit(flat, big, 0, np.random.default_rng(s)) for s in range(400)])
    assert rate == pytest.approx(0.5, abs=0.08)
    # a video: the maximum is checked against its own frame's mask
    vmask = np.zeros((2, 8, 8), bool)
    vmask[0, 4, 4] = True
    vmap = np.zeros((2, 8, 8), np.uint8)
    vmap[1, 4, 4] = 255
    assert not pointing_hit(vmap, vmask, 0)
    vmask[1, 4, 5] = True
    assert pointing_hit(vmap, vmask, 1)
    with pytest.raises(ValueError):
        pointing_hit(peak, vmask, 0)


# --------------------------------------------------------------------------- runner
@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from tam_engine.demo.synth import write_dataset

    root = tmp_path_factory.mktemp("synth_faith")
    write_dataset(root, n_images=4, n_videos=1, seed=5, size=96, n_frames=4)
    return root


def test_fake_model_faithfulness_beats_chance_and_resumes(synth, tmp_path):
    ds = open_dataset(synth)
    faith = (FaithfulnessSpec(steps=4), fake_probs)
    out = tmp_path / "r.json"
    summary = run_eval(ds, fake_explain, variants_for(), out, progress=False,
                       faithfulness=faith)
    f = summary["faithfulness"]
    assert f["n_items"] == 4 and f["n_skipped"] == 1 and f["n_tokens"] > 0
    assert f["p_original"] == pytest.approx(1.0)   # the fake's intact image shows every object
    tam, uni = f["variants"]["both"], f["chance"]["uniform"]
    assert tam["deletion"]["auc"] < uni["deletion"]["auc"] - 0.1
    assert tam["insertion"]["auc"] > uni["insertion"]["auc"] + 0.1
    assert len(tam["deletion"]["curve"]) == 5 and tam["deletion"]["curve"][0] == 1.0
    # the pointing game sits beside the IoU metrics, chance lines included
    assert summary["variants"]["both"]["pointing"] > summary["chance"]["uniform"]["pointing"]
    assert summary["variants"]["both"]["n_point"] >= summary["variants"]["both"]["n_obj"]
    text = format_summary(summary)
    assert "Point" in text and "Deletion AUC" in text and "chance orders" in text
    # Resumed: the records are reused, the numbers the same.
    assert run_eval(ds, fake_explain, variants_for(), out, progress=False,
                    faithfulness=faith) == summary
    # Other steps are another evaluation.
    with pytest.raises(ResumeMismatchError):
        run_eval(ds, fake_explain, variants_for(), out, progress=False,
                 faithfulness=(FaithfulnessSpec(steps=3), fake_probs))


def test_faithfulness_refuses_a_dataset_without_images(tmp_path):
    from tam_engine.demo.synth import write_dataset

    write_dataset(tmp_path / "v", n_images=0, n_videos=1, seed=1, size=64, n_frames=2)
    with pytest.raises(FaithfulnessError, match="images"):
        run_eval(open_dataset(tmp_path / "v"), fake_explain, variants_for(), tmp_path / "r.json",
                 progress=False, faithfulness=(FaithfulnessSpec(), fake_probs))


def test_cli_option_refusals(tmp_path, capsys):
    base = ["eval", str(tmp_path), "--model", "x"]
    assert main(base + ["--faithfulness", "deletion,pointing"]) == 2
    assert "unknown faithfulness metric pointing" in capsys.readouterr().err
    assert main(base + ["--faithfulness-steps", "3"]) == 2
    assert "need --faithfulness" in capsys.readouterr().err
    assert main(base + ["--faithfulness", "deletion", "--faithfulness-steps", "0"]) == 2
    assert main(base + ["--pointing-tolerance", "-1"]) == 2


# --------------------------------------------------------------------------- tiny model
@pytest.mark.slow
def test_tiny_model_teacher_forced_curves(tiny_loaded, tmp_path):
    from tam_engine.core.words import group_words
    from tam_engine.demo.synth import write_dataset
    from tam_engine.eval.datasets import EvalDataset
    from tam_engine.eval.explainers import model_explain_fn
    from tam_engine.eval.forcing import model_prob_factory
    from tam_engine.eval.words import Vocabulary
    from tam_engine.inference.settings import GenerationSettings

    loaded = tiny_loaded("qwen2_vl")
    settings = GenerationSettings(max_new_tokens=4, device="cpu", min_pixels=3136,
                                  max_pixels=3136)
    prompt = "What is in the picture?"
    explain = model_explain_fn(loaded, settings, prompt)
    write_dataset(tmp_path / "ds", n_images=2, n_videos=0, seed=3, size=56)
    items = open_dataset(tmp_path / "ds").items
    # The random model's first word names an "object" covering the left half of the image.
    for it in items:
        words = [w for w in group_words(explain(it, variants_for().values())[0].answer.texts)
                 if w.key]
        it.vocabulary = Vocabulary({words[0].key: ()})
        half = np.zeros((56, 56), bool)
        half[:, :28] = True
        it._load_masks = lambda half=half, key=words[0].key: {key: half}
    ds = EvalDataset("synthetic", tmp_path / "ds", items)
    factory = model_prob_factory(loaded, settings, prompt)
    summary = run_eval(ds, explain, variants_for(ablation=True), tmp_path / "r.json",
                       progress=False, faithfulness=(FaithfulnessSpec(steps=3, batch=4), factory))
    recs = json.loads((tmp_path / "r.json").read_text())["items"]
    for r in recs:
        f = r["faithfulness"]
        assert f["steps"] == 3 and len(f["tokens"]) >= 1          # a 2 x 2 grid, K = 3
        for group, names in (("variants", ("neither", "eci", "filter", "both")),
                             ("chance", CHANCE_LINES)):
            for n in names:
                for m in ("deletion", "insertion"):
                    curves = f[group][n][m]["curves"]
                    assert len(curves) == len(f["tokens"])
                    assert all(len(c) == 4 and all(0 <= p <= 1 for p in c) for c in curves)
                # the intact image ends insertion and starts deletion: the same probability
                for c_del, c_ins, tok in zip(f[group][n]["deletion"]["curves"],
                                             f[group][n]["insertion"]["curves"], f["tokens"]):
                    assert c_del[0] == c_ins[-1] == tok["p"]
    assert summary["faithfulness"]["n_tokens"] == sum(len(r["faithfulness"]["tokens"])
                                                     for r in recs)

    # Nothing unchecked: an explanation whose probabilities the forward pass does not
    # reproduce is refused (the run stops, no item is recorded as merely failed).
    def lying(item, opts):
        out = explain(item, opts)
        for e in out:
            # far from the truth whatever the model's confidence (a random tiny model's top
            # probability can be below the tolerance, so a shift by -0.5 could clip to a near one)
            e.candidates.probs[:, 0] = 1.0 - e.candidates.probs[:, 0]
        return out

    with pytest.raises(FaithfulnessError, match="reproduce"):
        run_eval(ds, lying, variants_for(), tmp_path / "r2.json", progress=False,
                 faithfulness=(FaithfulnessSpec(steps=3), factory))
