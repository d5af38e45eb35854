"""Corpus: pickles and remote code, each planted where a loader of ours might meet it.

Every payload kind gives two cases. ``payload/<kind>/control`` triggers it on purpose (an
unpickling with pickles allowed, a load with ``trust_remote_code=True``, an unsandboxed
template) and must leave its marker file: the proof that the payload is live. The
``payload/<kind>/ours`` case gives the same file to our loader (the app's and the CLI's way of
opening it) and must leave no marker, whatever else happens (a clean refusal is the expected
outcome; a success is fine when the payload sits beside what is really loaded).
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fuzz_corpus import Case, Ctx, cli


class _Fire:
    """Unpickling this creates the marker file (``open(marker, "w")``): harmless and visible."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


def _marker(ctx: Ctx, kind: str) -> Path:
    return ctx.markers / kind.replace("/", "_")


def _object_npy(marker: Path) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([_Fire(marker)], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _npz_with_object(ctx: Ctx, kind: str, member: str, base: bool) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        if base:
            with zipfile.ZipFile(ctx.explanation()) as src:
                for n in src.namelist():
                    if n != member:
                        zf.writestr(n, src.read(n))
        zf.writestr(member, _object_npy(_marker(ctx, kind)))
    return buf.getvalue()


def _torch_pickle(marker: Path) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"weight": _Fire(marker)}, buf)
    return buf.getvalue()


_CONFIG_CODE = '''
open({marker!r}, "w").close()
from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLConfig


class EvilConfig(Qwen2VLConfig):
    model_type = "qwen2_vl"
'''

_TEMPLATE = ("{{ lipsum.__globals__['os'].open(MARKER, 65) }}"
             "{% for m in messages %}{{ m['content'] }}{% endfor %}")


# ---------------------------------------------------------------------- the kinds
def _explanation_kind(kind: str, make: Callable[[Ctx], bytes]) -> list[Case]:
    def setup(ctx: Ctx, work: Path) -> None:
        (work / "p.tam.npz").write_bytes(make(ctx))

    def control(ctx: Ctx, work: Path) -> Any:  # each as its own reader would, on purpose
        data = (work / "p.tam.npz").read_bytes()
        if data.startswith(b"PK"):
            with np.load(io.BytesIO(data), allow_pickle=True) as z:
                return [z[n] for n in z.files]
        if data.startswith(b"\x93NUMPY"):
            return np.load(io.BytesIO(data), allow_pickle=True)
        return pickle.loads(data)  # noqa: S301

    def ours(ctx: Ctx, work: Path) -> Any:
        from tam_engine.core.explanation import Explanation

        return Explanation.load(work / "p.tam.npz")

    def ours_cli(ctx: Ctx, work: Path) -> Any:
        return cli("export", work / "p.tam.npz", "json", "--out", work / "out.json")
    return _pair(kind, setup, control, [("api", ours), ("cli", ours_cli)])


def _model_kind(kind: str, plant: Callable[[Ctx, Path], None],
                control: Callable[[Ctx, Path], Any], expect: str = "error") -> list[Case]:
    def setup(ctx: Ctx, work: Path) -> None:
        model = ctx.model_copy(work)
        plant(ctx, model)

    def ours(ctx: Ctx, work: Path) -> Any:
        from tam_engine.inference.loading import load_model

        return load_model(work / "model", device="cpu")
    return _pair(kind, setup, control, [("load", ours)], expect)


def _pair(kind: str, setup: Callable[[Ctx, Path], None], control: Callable[[Ctx, Path], Any],
          ours: list[tuple[str, Callable[[Ctx, Path], Any]]], expect: str = "error"
          ) -> list[Case]:
    def fired(ctx: Ctx, value: Any) -> str | None:
        return None if _marker(ctx, kind).exists() else "the payload did not fire"

    def untouched(ctx: Ctx, value: Any) -> str | None:
        return "THE PAYLOAD RAN" if _marker(ctx, kind).exists() else None

    def guarded(run: Callable[[Ctx, Path], Any]) -> Callable[[Ctx, Path], Any]:
        def go(ctx: Ctx, work: Path) -> Any:
            _marker(ctx, kind).unlink(missing_ok=True)
            try:
                return run(ctx, work)
            finally:
                if _marker(ctx, kind).exists():
                    raise AssertionError(f"payload {kind} ran")  # a traceback: never fine
        return go

    def control_run(ctx: Ctx, work: Path) -> Any:
        _marker(ctx, kind).unlink(missing_ok=True)
        return control(ctx, work)

    out = [Case(f"payload/{kind}/control", "payload-control", control_run, setup=setup,
                expect="success", verify=fired, fast=False)]
    out += [Case(f"payload/{kind}/ours-{how}", "payload", guarded(run), setup=setup,
                 expect=expect, verify=untouched, fast=True) for how, run in ours]
    return out


def _plant_bin(kind: str, name: str, remove_safetensors: bool) -> Callable[[Ctx, Path], None]:
    def plant(ctx: Ctx, model: Path) -> None:
        if remove_safetensors:
            (model / "model.safetensors").unlink(missing_ok=True)
        (model / name).write_bytes(_torch_pickle(_marker(ctx, kind)))
    return plant


def _torch_control(name: str) -> Callable[[Ctx, Path], Any]:
    def control(ctx: Ctx, work: Path) -> Any:
        import torch

        return torch.load(work / "model" / name, weights_only=False)  # on purpose
    return control


def _plant_remote_config(ctx: Ctx, model: Path) -> None:
    marker = _marker(ctx, "remote-config")
    (model / "configuration_evil.py").write_text(_CONFIG_CODE.format(marker=str(marker)))
    cfg = json.loads((model / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig"}
    (model / "config.json").write_text(json.dumps(cfg))


def _remote_control(ctx: Ctx, work: Path) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(work / "model", trust_remote_code=True)  # on purpose


def _plant_remote_processor(ctx: Ctx, model: Path) -> None:
    marker = _marker(ctx, "remote-processor")
    (model / "processing_evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                              "from transformers import Qwen2VLProcessor as "
                                              "EvilProcessor\n")
    for name in ("processor_config.json", "tokenizer_config.json"):
        path = model / name
        cfg = json.loads(path.read_text()) if path.exists() else {}
        cfg["auto_map"] = {"AutoProcessor": "processing_evil.EvilProcessor"}
        path.write_text(json.dumps(cfg))


def _processor_control(ctx: Ctx, work: Path) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(work / "model", trust_remote_code=True)  # on purpose


def _plant_template(ctx: Ctx, model: Path) -> None:
    marker = repr(str(_marker(ctx, "template")))
    (model / "chat_template.jinja").write_text(_TEMPLATE.replace("MARKER", marker))


def _template_control(ctx: Ctx, work: Path) -> Any:
    import jinja2

    text = (work / "model" / "chat_template.jinja").read_text()
    return jinja2.Environment().from_string(text).render(messages=[])  # unsandboxed, on purpose


def _template_ours(ctx: Ctx, work: Path) -> Any:
    from tam_engine.inference.loading import load_model
    from tam_engine.inference.pipeline import run_and_explain
    from tam_engine.inference.settings import GenerationSettings
    from tam_engine.testing.synthetic import synthetic_explanation

    loaded = load_model(work / "model", device="cpu")
    media = synthetic_explanation("image").media
    return run_and_explain(loaded, media, "Describe.", GenerationSettings(max_new_tokens=2))


def _media_pickle(ctx: Ctx, work: Path) -> None:
    (work / "x.png").write_bytes(pickle.dumps(_Fire(_marker(ctx, "media-pickle"))))
    (work / "y.npy").write_bytes(_object_npy(_marker(ctx, "media-pickle")))


def cases() -> list[Case]:
    out: list[Case] = []
    out += _explanation_kind("npz-object-member", lambda ctx: _npz_with_object(
        ctx, "npz-object-member", "answer_maps.npy", True))
    out += _explanation_kind("npz-object-header", lambda ctx: _npz_with_object(
        ctx, "npz-object-header", "header.npy", True))
    out += _explanation_kind("npz-only-object", lambda ctx: _npz_with_object(
        ctx, "npz-only-object", "x.npy", False))
    out += _explanation_kind("npy-renamed", lambda ctx: _object_npy(
        _marker(ctx, "npy-renamed")))
    out += _explanation_kind("plain-pickle", lambda ctx: pickle.dumps(
        _Fire(_marker(ctx, "plain-pickle"))))
    out += _model_kind("torch-pytorch_model.bin", _plant_bin("torch-pytorch_model.bin", "pytorch_model.bin", True),
                       _torch_control("pytorch_model.bin"))
    out += _model_kind("torch-model.pt", _plant_bin("torch-model.pt", "model.pt", True),
                       _torch_control("model.pt"))
    out += _model_kind("torch-bin-beside-safetensors", _plant_bin("torch-bin-beside-safetensors",
                                                                  "pytorch_model.bin", False),
                       _torch_control("pytorch_model.bin"), expect="success")
    out += _model_kind("remote-config", _plant_remote_config, _remote_control, expect="either")
    out += _model_kind("remote-processor", _plant_remote_processor, _processor_control,
                       expect="either")
    template = _pair("template", lambda ctx, work: _plant_template(ctx, ctx.model_copy(work)),
                     _template_control, [("run", _template_ours)])
    for c in template:
        c.fast = False
    out += template

    def media_control(ctx: Ctx, work: Path) -> Any:
        return pickle.loads((work / "x.png").read_bytes())  # noqa: S301 - on purpose

    def media_ours(ctx: Ctx, work: Path) -> Any:
        from tam_engine.media.io import load_media

        try:
            return load_media([work / "x.png"])
        finally:
            shutil.copy(work / "y.npy", work / "y.png")
            load_media([work / "y.png"])
    out += _pair("media-pickle", _media_pickle, media_control, [("load", media_ours)])
    return out
