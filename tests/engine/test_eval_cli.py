"""``tam eval`` end to end with a tiny random model (the plumbing, not the scores)."""

from __future__ import annotations

import json

import pytest

from tam_engine.cli import main


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from tam_engine.demo.synth import write_dataset

    root = tmp_path_factory.mktemp("synth_cli")
    write_dataset(root, n_images=3, n_videos=1, seed=2, size=56, n_frames=4)
    return root


@pytest.mark.slow
def test_tam_eval_with_a_tiny_model_and_resume(synth_dir, tiny_model_dir, tmp_path, capsys):
    model = tiny_model_dir("qwen2_vl")
    out = tmp_path / "res" / "r.json"
    args = ["eval", str(synth_dir), "--model", str(model), "--out", str(out),
            "--max-new-tokens", "4", "--ablation", "--no-progress", "--device", "cpu",
            "--min-pixels", "3136", "--max-pixels", "3136", "--max-frames", "3",
            "--prompt", "What is in the picture?"]
    assert main(args + ["--limit", "2"]) == 0
    printed = capsys.readouterr().out
    assert "neither" in printed and "F1-IoU" in printed and str(out) in printed
    doc = json.loads(out.read_text())
    assert [r["id"] for r in doc["items"]] == ["img_00000", "img_00001"]
    assert doc["config"]["prompt"] == "What is in the picture?"
    assert doc["seconds_per_item"]["generate_s"] > 0 and "engine_s" in doc["seconds_per_item"]
    rec = doc["items"][0]
    assert set(rec["variants"]) == {"neither", "eci", "filter", "both"}
    assert 1 <= rec["n_tokens"] <= 4 and rec["rouge_l"] is not None
    # 56 x 56 pixels in 28-pixel merged cells: a 2 x 2 map, as --max-pixels asked.
    assert rec["grids"] == [[1, 2, 2]] and doc["config"]["max_pixels"] == 3136
    # Another prompt is another evaluation: refused, with a hint.
    assert main(args[:-1] + ["Describe it."]) == 1
    assert "different evaluation" in capsys.readouterr().err
    # Same command without --limit: the two done items are kept, the rest is added.
    before = {r["id"]: r for r in doc["items"]}
    assert main(args) == 0
    doc2 = json.loads(out.read_text())
    assert [r["id"] for r in doc2["items"]] == ["img_00000", "img_00001", "img_00002",
                                                "vid_00000"]
    assert doc2["items"][0] == before["img_00000"]            # not recomputed
    assert doc2["summary"]["n_items"] == 4
    # The video was sampled at --fps 2 within --max-frames 3: three frames, two per map slot.
    vid = doc2["items"][3]
    assert vid["id"] == "vid_00000" and vid["grids"][0][0] == 2


def test_tam_eval_errors(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope"), "--model", "x"]) == 1
    err = capsys.readouterr().err
    assert "Dataset folder not found" in err
    assert main(["eval", str(tmp_path), "--model", "x", "--ablation", "--no-eci"]) == 2
    assert main(["eval", str(tmp_path), "--model", "x", "--limit", "0"]) == 2
    assert main(["eval", str(tmp_path), "--model", "x", "--fps", "0"]) == 2


def test_tam_eval_interrupted_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from tam_engine.cli import eval as cli_eval

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_eval, "_run", interrupted)
    out = tmp_path / "r.json"
    assert main(["eval", str(tmp_path), "--model", "x", "--out", str(out)]) == 130
    assert "run the same command again" in capsys.readouterr().err
