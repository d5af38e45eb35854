"""The evaluation loop: results, ablations from one generation, resuming, sharding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tam_engine.core.errors import MediaError
from tam_engine.core.explanation import TamOptions
from tam_engine.eval.datasets import open_dataset
from tam_engine.eval.runner import (
    ABLATION_VARIANTS,
    JsonlAppender,
    ResumeMismatchError,
    clean_caption,
    evaluate_item,
    format_summary,
    rank_file,
    read_records,
    run_eval,
    variants_for,
)
from tam_engine.testing.fake_eval import fake_explain


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from tam_engine.demo.synth import write_dataset

    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, n_images=5, n_videos=1, seed=11, size=96, n_frames=4)
    return root


class Counting:
    """Wraps the fake explainer, counting generations and optionally failing at one."""

    def __init__(self, stop_after: int | None = None, exc=KeyboardInterrupt):
        self.calls: list[str] = []
        self.options: list[list[TamOptions]] = []
        self.stop_after = stop_after
        self.exc = exc

    def __call__(self, item, options):
        if self.stop_after is not None and len(self.calls) == self.stop_after:
            raise self.exc()
        self.calls.append(item.id)
        self.options.append(list(options))
        return fake_explain(item, options)


def _load(path):
    return json.loads(path.read_text())


def test_results_file_and_summary(synth_dir, tmp_path):
    ds = open_dataset(synth_dir)
    out = tmp_path / "r.json"
    summary = run_eval(ds, fake_explain, variants_for(), out, config={"model": "fake"},
                       progress=False)
    doc = _load(out)
    assert doc["format"] == "tam-eval" and doc["summary"] == summary
    assert [r["id"] for r in doc["items"]] == [it.id for it in ds.items]
    assert doc["config"]["model"] == "fake" and doc["config"]["variants"] == ["both"]
    s = summary["variants"]["both"]
    assert summary["n_items"] == 6 and summary["n_errors"] == 0
    assert s["n_obj"] > 0 and s["n_func"] > 0 and 0 <= s["obj_iou"] <= 1
    # The fake captions with the reference itself.
    assert summary["rouge_l"] == pytest.approx(1.0)
    # The fake model's noun maps sit on their objects: far better than chance (each object
    # covers a few percent of its image, so a foreground placed at random scores below 0.1).
    assert s["obj_iou"] > 0.25 and s["recall"] > 0.7
    text = format_summary(summary)
    assert "both" in text and "Obj-IoU" in text and "METEOR" in text


def test_ablation_reports_four_variants_from_one_generation(synth_dir, tmp_path):
    ds = open_dataset(synth_dir)
    fn = Counting()
    summary = run_eval(ds, fn, variants_for(ablation=True), tmp_path / "a.json", progress=False)
    assert set(summary["variants"]) == {"neither", "eci", "filter", "both"}
    assert len(fn.calls) == len(ds)                    # one generation per item
    assert all(opts == list(ABLATION_VARIANTS.values()) for opts in fn.options)
    # Each variant equals a run with only that option set.
    for name, flags in {"both": (False, False), "neither": (True, True)}.items():
        single = run_eval(ds, fake_explain, variants_for(*flags), tmp_path / f"{name}.json",
                          progress=False)
        assert single["variants"][name] == summary["variants"][name]
    assert summary["variants"]["both"] != summary["variants"]["neither"]


def test_special_tokens_are_not_part_of_the_caption():
    # The tokenizer's mask decides, not the look of the text.
    assert clean_caption(["a", " red", " triangle", ".", "<|im_end|>"],
                         [False, False, False, False, True]) == "a red triangle."
    assert clean_caption([" two", "  dogs", "</s>", "<pad>", "<pad>"],
                         np.array([0, 0, 1, 1, 1], bool)) == "two dogs"
    assert clean_caption(["x", " <", " y", " and", " <b>"], [False] * 5) == "x < y and <b>"
    assert clean_caption(["a", "[SEP]", "b"], [False, True, False]) == "a b"   # still two words


def test_the_record_caption_leaves_out_the_tokens_marked_special(synth_dir):
    item = open_dataset(synth_dir).items[0]

    def explain_fn(item, options):
        expls = fake_explain(item, options)
        for e in expls:                       # the tokenizer marks the last answer token
            e.is_special = e.is_special.copy()
            e.is_special[-1] = True
        return expls

    rec = evaluate_item(item, explain_fn, variants_for())
    last = fake_explain(item, [TamOptions()])[0].answer.texts[-1]
    assert rec["answer"].endswith(last) and last.strip()
    assert rec["caption"] == " ".join(rec["answer"][:-len(last)].split())


def test_variants_for_flags():
    assert variants_for() == {"both": TamOptions()}
    assert list(variants_for(no_eci=True)) == ["filter"]
    assert variants_for(no_eci=True)["filter"].eci is False
    assert list(variants_for(no_filter=True)) == ["eci"]
    assert list(variants_for(True, True)) == ["neither"]


def test_resume_after_an_interruption_skips_done_items(synth_dir, tmp_path):
    ds = open_dataset(synth_dir)
    out = tmp_path / "r.json"
    first = Counting(stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        run_eval(ds, first, variants_for(), out, progress=False)
    assert not out.exists()
    assert list(read_records(out)) == [it.id for it in ds.items[:3]]
    second = Counting()
    resumed = run_eval(ds, second, variants_for(), out, progress=False)
    assert second.calls == [it.id for it in ds.items[3:]]
    fresh = run_eval(ds, fake_explain, variants_for(), tmp_path / "fresh.json", progress=False)
    assert resumed == fresh
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in _load(out)["items"]]
    strip_fresh = [{k: v for k, v in r.items() if k != "seconds"}
                   for r in _load(tmp_path / "fresh.json")["items"]]
    assert strip == strip_fresh


def test_a_torn_last_line_is_dropped_and_repaired(tmp_path):
    out = tmp_path / "r.json"
    path = rank_file(out, 0)
    path.write_text('{"id": "a", "x": 1}\n{"id": "b", "x"')
    assert list(read_records(out)) == ["a"]
    w = JsonlAppender(path)
    w.append({"id": "c"})
    w.close()
    assert path.read_text() == '{"id": "a", "x": 1}\n{"id": "c"}\n'
    assert list(read_records(out)) == ["a", "c"]


def test_resuming_a_different_run_is_refused(synth_dir, tmp_path):
    ds = open_dataset(synth_dir)
    out = tmp_path / "r.json"
    run_eval(ds, fake_explain, variants_for(), out, config={"model": "m1"}, limit=2,
             progress=False)
    with pytest.raises(ResumeMismatchError) as err:
        run_eval(ds, fake_explain, variants_for(ablation=True), out, config={"model": "m1"},
                 limit=2, progress=False)
    assert "variants" in err.value.message and "--out" in err.value.hint


def test_shards_give_the_same_numbers_as_one_process(synth_dir, tmp_path):
    ds = open_dataset(synth_dir)
    one = run_eval(ds, fake_explain, variants_for(ablation=True), tmp_path / "one.json",
                   progress=False)
    out = tmp_path / "two.json"
    fns = [Counting(), Counting()]
    assert run_eval(ds, fns[1], variants_for(ablation=True), out, rank=1, world_size=2,
                    progress=False) is None
    two = run_eval(ds, fns[0], variants_for(ablation=True), out, rank=0, world_size=2,
                   progress=False)
    assert two == one
    assert fns[0].calls == [it.id for it in ds.items[0::2]]
    assert fns[1].calls == [it.id for it in ds.items[1::2]]


def test_a_broken_item_is_recorded_not_fatal(synth_dir, tmp_path):
    ds = open_dataset(synth_dir)
    bad = ds.items[1].id

    def fn(item, options):
        if item.id == bad:
            raise MediaError("broken.png: truncated", "re-save it")
        return fake_explain(item, options)

    summary = run_eval(ds, fn, variants_for(), tmp_path / "r.json", limit=3, progress=False)
    assert summary["n_items"] == 3 and summary["n_errors"] == 1
    rec = _load(tmp_path / "r.json")["items"][1]
    assert rec["id"] == bad and "truncated" in rec["error"]
    # A plain resume keeps the error; --retry-errors runs that item (only) again.
    again = Counting()
    assert run_eval(ds, again, variants_for(), tmp_path / "r.json", limit=3,
                    progress=False)["n_errors"] == 1
    assert again.calls == []
    fixed = run_eval(ds, again, variants_for(), tmp_path / "r.json", limit=3, progress=False,
                     retry_errors=True)
    assert again.calls == [bad] and fixed["n_errors"] == 0
    assert fixed == run_eval(ds, fake_explain, variants_for(), tmp_path / "ok.json", limit=3,
                             progress=False)


def test_limit_and_progress_bar(synth_dir, tmp_path, capsys):
    ds = open_dataset(synth_dir)
    summary = run_eval(ds, fake_explain, variants_for(), tmp_path / "r.json", limit=2)
    assert summary["n_items"] == 2
    assert "2/2" in capsys.readouterr().err
