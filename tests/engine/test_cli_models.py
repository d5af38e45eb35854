"""``tam models``: the supported families and their media, from the adapter classes themselves,
the same as README's model table."""

from __future__ import annotations

import re
from pathlib import Path

from tam_engine.cli import main
from tam_engine.cli.exitcodes import ExitCode
from tam_engine.inference.adapters import ADAPTERS
from tam_engine.inference.adapters.base import Adapter
from tam_engine.inference.adapters.generic import GenericAdapter
from tam_engine.inference.catalog import families, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def _models(capsys, *args: str) -> str:
    assert main(["models", *args]) == ExitCode.OK
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def test_every_adapter_describes_itself():
    for cls in ADAPTERS:
        assert cls.title, cls
        assert set(cls.media) <= {"image", "images", "video"}, cls
        # only a family refused as a whole (Llama 4) takes no media
        refused = cls.refusal.__func__ is not Adapter.refusal.__func__
        assert bool(cls.media) != refused and not (refused and cls.tiling), cls
        if cls is not GenericAdapter:
            assert cls.examples and all("/" in e for e in cls.examples), cls
            assert getattr(cls, "model_types", ()), cls
    assert [f.title for f in families()] == [cls.title for cls in ADAPTERS]


def test_tam_models_lists_every_family_with_its_media(capsys):
    out = _models(capsys)
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["family", "model_type"]
    assert "several images" in lines[0] and "tiling" in lines[0]
    for cls, line in zip(ADAPTERS, lines[1:], strict=True):
        assert line.startswith(cls.title)
        rest = line[len(cls.title):].strip()
        types = "any other" if cls is GenericAdapter else ", ".join(cls.model_types)
        assert rest.startswith(types)
        flags = rest[len(types):].split()[:4]
        assert flags == ["yes" if m in cls.media else "-" for m in ("image", "images", "video")] + [
            "yes" if cls.tiling else "-"]
        for example in cls.examples:
            assert example in line


def test_readme_model_table_is_the_generated_one(capsys):
    readme = README.read_text(encoding="utf-8")
    table = _models(capsys, "--markdown")
    assert table == markdown_table()
    section = readme[readme.index("## Models"):readme.index("## Command line")]
    assert table in section, "README's model table is stale: paste `tam models --markdown`"
    # the same families, in the same order, as `tam models`
    readme_families = re.findall(r"^\| ([^|]+?) \| ", section, re.M)[2:]  # after header, rule
    assert readme_families == [f.title for f in families()]
    assert "tam models" in readme
