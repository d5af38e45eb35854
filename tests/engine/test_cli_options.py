"""The model and media options are one definition shared by ``tam explain`` and ``tam eval``."""

from __future__ import annotations

import pytest

from tam_engine.cli import build_parser, main
from tam_engine.cli.options import load_kwargs, settings_kwargs

SHARED = ["--fps", "4", "--max-frames", "8", "--min-pixels", "3136", "--max-pixels", "50176",
          "--device", "cpu", "--dtype", "float32", "--trust-remote-code", "--allow-pickle"]


@pytest.mark.parametrize("command", [["explain", "a.png"], ["eval", "data", "--model", "m"]])
def test_both_commands_read_the_same_options(command):
    args = build_parser().parse_args(command + SHARED)
    assert load_kwargs(args) == {"device": "cpu", "dtype": "float32",
                                 "trust_remote_code": True, "allow_pickle": True}
    assert settings_kwargs(args, "cuda:1") == {
        "device": "cuda:1", "dtype": "float32", "trust_remote_code": True, "video_fps": 4.0,
        "max_frames": 8, "min_pixels": 3136, "max_pixels": 50176}


@pytest.mark.parametrize("bad", [["--fps", "0"], ["--max-frames", "0"], ["--min-pixels", "0"]])
def test_bad_media_options_are_refused_before_loading_anything(bad, tmp_path, capsys):
    missing_model = str(tmp_path / "no-such-model")
    # A refused value is a usage error (exit 2) in every command.
    assert main(["explain", "--model", missing_model, "--out", str(tmp_path)] + bad) == 2
    assert main(["eval", str(tmp_path), "--model", missing_model] + bad) == 2
    err = capsys.readouterr().err
    assert "no-such-model" not in err and err.count("must be") == 2
