"""``tam``'s one ``main``: exit statuses, errors reported once, the shared export options, and
a parser that does not depend on the order its commands are registered in."""

from __future__ import annotations

import argparse
import itertools
import re
from dataclasses import fields
from pathlib import Path

import pytest

from tam_engine.cli import build_parser, main
from tam_engine.cli import eval as cli_eval
from tam_engine.cli import explain as cli_explain
from tam_engine.cli import export as cli_export
from tam_engine.cli import models as cli_models
from tam_engine.cli import synth as cli_synth
from tam_engine.cli.exitcodes import BUG_NOTE, MEANING, ExitCode
from tam_engine.cli.export import ExportOptions
from tam_engine.core.errors import TamError

COMMANDS = (cli_explain, cli_export, cli_eval, cli_synth, cli_models)
README = Path(__file__).resolve().parents[2] / "README.md"


def _synth(tmp_path, *extra):
    return main(["synth", str(tmp_path / "ds"), "--images", "1", "--videos", "0",
                 "--size", "56", *extra])


# ------------------------------------------------------------------------------ exit statuses
def test_success_is_0(tmp_path, capsys):
    assert _synth(tmp_path) == ExitCode.OK == 0
    assert capsys.readouterr().err == ""
    assert main([]) == 0 and "COMMAND" in capsys.readouterr().out
    assert main(["--version"]) == 0


def test_a_tam_error_is_1_with_one_line_and_its_hint(tmp_path, capsys, monkeypatch):
    import tam_engine.demo.synth

    def fails(*args, **kwargs):
        raise TamError("The disk is full.", "Free some space and run again.")

    monkeypatch.setattr(tam_engine.demo.synth, "write_dataset", fails)
    assert _synth(tmp_path) == ExitCode.FAILURE == 1
    captured = capsys.readouterr()
    assert captured.err == "tam: error: The disk is full.\nhint: Free some space and run again.\n"
    assert captured.out == ""


def test_a_real_failure_is_reported_the_same_way(tmp_path, capsys):
    bad = tmp_path / "bad.tam.npz"
    bad.write_text("nope")
    assert main(["export", str(bad), "png"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("tam: error: bad.tam.npz is not a TAM explanation file")
    assert lines[1].startswith("hint: ")


@pytest.mark.parametrize("argv", [["synth"],                               # OUT_DIR missing
                                  ["synth", "d", "--images", "many"],     # not a number
                                  ["synth", "d", "--colour", "red"],      # no such option
                                  ["render"],                             # no such command
                                  ["export", "e.tam.npz", "gif"]])        # no such choice
def test_argparse_usage_errors_are_2(argv, capsys):
    assert main(argv) == ExitCode.USAGE == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: tam") and "error:" in err


def test_a_refused_value_is_2_with_one_line(tmp_path, capsys):
    assert _synth(tmp_path, "--frames", "0") == 2
    err = capsys.readouterr().err
    assert err == "tam: error: --frames must be at least 1, not 0.\n"
    assert not (tmp_path / "ds").exists()


def test_an_interrupt_inside_a_command_is_130(tmp_path, capsys, monkeypatch):
    import tam_engine.demo.synth

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tam_engine.demo.synth, "write_dataset", interrupted)
    assert _synth(tmp_path) == ExitCode.INTERRUPTED == 130
    assert capsys.readouterr().err.strip() == "tam: interrupted"


def test_an_interrupted_export_says_nothing_was_written(tmp_path, capsys, monkeypatch):
    from tam_engine.testing.golden import build_explanation

    src = build_explanation().save(tmp_path / "e.tam.npz")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_export, "write_export", interrupted)
    assert main(["export", str(src), "png"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["tam: interrupted",
                                                            "hint: Nothing was written."]


def test_any_other_exception_is_a_bug_and_keeps_its_traceback(tmp_path, monkeypatch):
    import tam_engine.demo.synth

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(tam_engine.demo.synth, "write_dataset", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        _synth(tmp_path)


def test_the_exit_statuses_are_documented(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for code in ExitCode:
        assert re.search(rf"^ +{int(code)}  {re.escape(MEANING[code])}$", out, re.M)
    assert BUG_NOTE in out
    readme = README.read_text(encoding="utf-8")
    section = readme[readme.index("## Command line"):readme.index("## Export")]
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M))
    assert rows == {str(int(code)): MEANING[code] for code in ExitCode}
    assert BUG_NOTE in section


# ------------------------------------------------------------------------------ export options
def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return parser._option_string_actions[flag]


def test_explain_export_and_export_have_the_same_options_and_defaults():
    parser = build_parser()
    explain, export = _subparser(parser, "explain"), _subparser(parser, "export")
    for f in fields(ExportOptions):
        flag = f.name.replace("_", "-")
        a, b = _option(export, f"--{flag}"), _option(explain, f"--export-{flag}")
        assert a.default == b.default == f.default, f.name
        assert (a.type, a.choices, a.nargs, a.const, a.help, a.metavar) == (
            b.type, b.choices, b.nargs, b.const, b.help, b.metavar), f.name
    defaults = ExportOptions()
    assert ExportOptions.from_args(parser.parse_args(["explain"])) == defaults
    assert ExportOptions.from_args(parser.parse_args(["export", "e.tam.npz", "png"])) == defaults


def test_explain_export_and_export_read_the_same_values():
    parser = build_parser()
    export = _subparser(parser, "export")
    changed: dict[str, str | None] = {}   # None: a flag, given without a value
    for f in fields(ExportOptions):
        action = _option(export, "--" + f.name.replace("_", "-"))
        if action.nargs == 0:
            changed[f.name] = None
        else:
            changed[f.name] = ([c for c in action.choices if c != f.default][-1]
                               if action.choices else "3")
    assert all(changed[f.name] != f.default for f in fields(ExportOptions))

    def argv(prefix: str) -> list[str]:
        out = []
        for name, value in changed.items():
            out.append(f"--{prefix}{name.replace('_', '-')}")
            out.extend([] if value is None else [value])
        return out

    via_export = ExportOptions.from_args(parser.parse_args(["export", "e.tam.npz", "png",
                                                            *argv("")]))
    via_explain = ExportOptions.from_args(parser.parse_args(["explain", "a.png",
                                                             *argv("export-")]))
    assert via_export == via_explain
    assert all(getattr(via_export, f.name) != f.default for f in fields(ExportOptions))
    # tam explain's own --fps and MEDIA are not the export's.
    args = parser.parse_args(["explain", "a.png", "--fps", "4", "--export-fps", "12"])
    assert args.fps == 4.0 and args.media == ["a.png"]
    assert ExportOptions.from_args(args).fps == 12.0


# ------------------------------------------------------------------------------ registration
def _shape(parser: argparse.ArgumentParser) -> dict[str, list[tuple]]:
    """Every command's options, as what they parse to."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: [(tuple(a.option_strings), a.dest, a.default, a.type, a.choices, a.nargs,
                    a.const, a.required, a.help, a.metavar) for a in p._actions]
            for name, p in sub.choices.items()}


def _parser_of(commands) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tam")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in commands:
        command.register(sub)
    return parser


@pytest.mark.parametrize("order", list(itertools.permutations(COMMANDS)),
                         ids=lambda order: "-".join(m.__name__.rsplit(".", 1)[1] for m in order))
def test_registration_order_does_not_change_the_options(order):
    assert _shape(_parser_of(order)) == _shape(build_parser())


@pytest.mark.parametrize("command", COMMANDS, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_each_command_alone_has_all_its_options(command):
    full = _shape(build_parser())
    alone = _shape(_parser_of([command]))
    assert len(alone) == 1
    name, options = next(iter(alone.items()))
    assert options == full[name]
