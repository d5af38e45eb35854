"""``tam explain`` on a tiny model: writes the explanation; clear errors without tracebacks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tam_engine.cli import main
from tam_engine.core.explanation import Explanation


@pytest.fixture
def png(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "pic.png"
    Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(path)
    return path


def test_explain_writes_an_explanation(tiny_model_dir, png, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["explain", str(png), "--model", str(tiny_model_dir("qwen2_vl")), "--prompt",
                 "Describe this image.", "--out", str(out), "--max-new-tokens", "3",
                 "--device", "cpu", "--no-filter"])
    assert code == 0
    expl = Explanation.load(out / "explanation.tam.npz")
    assert 1 <= expl.n_answer <= 3 and len(expl.grids) == 1
    assert expl.options.filter is False and expl.options.eci is True
    assert expl.meta["prompt"] == "Describe this image."
    assert capsys.readouterr().out.strip() == expl.answer_text.strip()


def test_explain_writes_exports_beside_the_explanation(tiny_model_dir, png, tmp_path):
    out = tmp_path / "out"
    code = main(["explain", str(png), "--model", str(tiny_model_dir("qwen2_vl")), "--prompt",
                 "Hi", "--out", str(out), "--max-new-tokens", "2", "--device", "cpu",
                 "--export", "json, png,sequence", "--export-layout", "overlay",
                 "--export-width", "96"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "explanation.json", "explanation.png", "explanation.tam.npz", "explanation_tokens"]
    # The --export-* options reach the renderer: a 96-pixel-wide captioned overlay.
    assert Image.open(out / "explanation.png").width == 96
    assert Image.open(next((out / "explanation_tokens").iterdir())).width == 96


def test_bad_model_gives_a_clear_error_and_no_traceback(png, tmp_path, capsys):
    code = main(["explain", str(png), "--model", str(tmp_path), "--prompt", "Hi",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0
    assert "config.json" in err and "hint:" in err and "Traceback" not in err


def test_missing_media_gives_a_clear_error(tmp_path, capsys, tiny_model_dir):
    code = main(["explain", str(tmp_path / "missing.png"), "--model",
                 str(tiny_model_dir("qwen2_vl")), "--prompt", "Hi", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and "missing.png" in err and "Traceback" not in err


def test_explain_a_video_and_an_image(tiny_model_dir, png, tmp_path):
    from tam_engine.demo import synth

    video = tmp_path / "clip.mp4"
    video.write_bytes(synth.encode_mp4(synth.make_video_scene(1, size=112, n_frames=8).frames))
    out = tmp_path / "out"
    code = main(["explain", str(video), str(png), "--model", str(tiny_model_dir("qwen2_vl")),
                 "--prompt", "What moves?", "--out", str(out), "--max-new-tokens", "2",
                 "--fps", "2", "--max-frames", "4", "--device", "cpu"])
    assert code == 0
    expl = Explanation.load(out / "explanation.tam.npz")
    assert [g.kind for g in expl.grids] == ["video", "image"]
    vid = expl.media[0]
    assert vid.n_frames <= 4 and expl.grids[0].t == (vid.n_frames + 1) // 2
    assert vid.frame_slot.tolist() == [i // 2 for i in range(vid.n_frames)]


def test_explain_never_overwrites_without_force(tiny_model_dir, png, tmp_path, capsys,
                                                monkeypatch):
    model = str(tiny_model_dir("qwen2_vl"))
    base = ["explain", str(png), "--model", model, "--prompt", "Hi", "--max-new-tokens", "2",
            "--device", "cpu"]
    # Without --out: a new numbered folder per run, named at the end; never the same file.
    monkeypatch.chdir(tmp_path)
    assert main(base) == 0
    first = capsys.readouterr().err
    assert main(base) == 0
    second = capsys.readouterr().err
    runs = sorted(p.name for p in (tmp_path / "tam-out").iterdir())
    assert runs == ["run-001", "run-002"]
    assert "run folder: tam-out/run-001" in first and "run folder: tam-out/run-002" in second
    assert (tmp_path / "tam-out" / "run-002" / "explanation.tam.npz").is_file()
    # With --out over an earlier run: refused, the file untouched; --force overwrites.
    out = tmp_path / "tam-out" / "run-001"
    target = out / "explanation.tam.npz"
    before = target.read_bytes()
    assert main([*base, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and "Traceback" not in err
    assert target.read_bytes() == before
    assert main([*base, "--out", str(out), "--export", "json"]) == 1   # json is free, npz not
    assert not (out / "explanation.json").exists()
    capsys.readouterr()
    assert main([*base, "--out", str(out), "--force"]) == 0
    assert Explanation.load(target).n_answer >= 1
