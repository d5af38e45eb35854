"""Corpus: out-of-range command-line values, hostile output places, broken settings files."""

from __future__ import annotations

import errno
import json
import signal
import sys
from pathlib import Path
from typing import Any

from fuzz_corpus import Case, Ctx, cli, failing_writes, leftover_parts


# ---------------------------------------------------------------------- values
def _export_value(*args: str) -> Any:
    def run(ctx: Ctx, work: Path) -> Any:
        what = "sweep" if "--frames-per-token" in args else "png"
        return cli("export", ctx.explanation("video" if "--frame" in args else "image"), what,
                   "--out", work / f"out.{'mp4' if what == 'sweep' else 'png'}", *args)
    return run


def _explain_value(*args: str) -> Any:
    def run(ctx: Ctx, work: Path) -> Any:  # refused before any model is loaded
        return cli("explain", ctx.image(), "--out", work / "out", "--device", "cpu", *args)
    return run


EXPORT_VALUES = {
    "width-negative": ("--width", "-10"), "width-1": ("--width", "1"), "width-2": ("--width", "2"),
    "width-30000": ("--width", "30000"), "opacity-negative": ("--opacity", "-0.1"),
    "opacity-1.5": ("--opacity", "1.5"), "opacity-nan": ("--opacity", "nan"),
    "fps-negative": ("--fps", "-1"), "fps-nan": ("--fps", "nan"), "fps-inf": ("--fps", "inf"),
    "fps-1e308": ("--fps", "1e308"), "crf-negative": ("--crf", "-5"), "crf-99": ("--crf", "99"),
    "preset-bogus": ("--preset", "bogus"), "frame-0": ("--frame", "0"),
    "frame-negative": ("--frame", "-1"), "frame-99": ("--frame", "99"),
    "token-0": ("--token", "0"), "token-negative": ("--token", "-1"),
    "token-999": ("--token", "999"), "media-0": ("--media", "0"), "media-5": ("--media", "5"),
    "frames-per-token-0": ("--frames-per-token", "0"),
    "frames-per-token-1e6": ("--frames-per-token", "1000000"),
    "layer-bogus": ("--layer", "bogus"), "width-text": ("--width", "wide"),
}
EXPLAIN_VALUES = {
    "fps-nan": ("--fps", "nan"), "fps-inf": ("--fps", "inf"), "fps-1e308": ("--fps", "1e308"),
    "fps-0": ("--fps", "0"), "fps-1e9": ("--fps", "1e9", "--max-frames", "100000"),
    "max-frames-0": ("--max-frames", "0"), "max-frames-1e10": ("--max-frames", "10000000000"),
    "min-pixels-0": ("--min-pixels", "0"), "min-pixels-1e8": ("--min-pixels", "100000000"),
    "min-pixels-1e10": ("--min-pixels", "1e10"), "max-new-tokens-0": ("--max-new-tokens", "0"),
    "max-new-tokens-1e12": ("--max-new-tokens", "1000000000000"),
    "top-k-0": ("--top-k", "0"), "prompt-100k": ("--prompt", "describe " * 12_500),
    "prompt-surrogate": ("--prompt", "bad \udcff bytes"),
    "export-width-30000": ("--export", "png", "--export-width", "30000"),
    "export-bogus": ("--export", "gif"),
}


def _value_cases() -> list[Case]:
    out = [Case(f"cli/export/{n}", "cli-values", _export_value(*a)) for n, a in
           EXPORT_VALUES.items()]
    out += [Case(f"cli/explain/{n}", "cli-values", _explain_value(*a)) for n, a in
            EXPLAIN_VALUES.items()]
    for name, args in {"size-100000": ("--size", "100000"), "images-negative": ("--images", "-1"),
                       "frames-0": ("--frames", "0"), "images-1e9": ("--images", "10**9")}.items():
        out.append(Case(f"cli/synth/{name}", "cli-values",
                        lambda ctx, work, a=args: cli("synth", work / "ds", *a)))
    return out


# ---------------------------------------------------------------------- disks
def _disk_cases() -> list[Case]:
    def export_to(out: str, what: str = "png", code: int = 0) -> Any:
        def run(ctx: Ctx, work: Path) -> Any:
            target, src = work / out, ctx.explanation()  # the input exists before the fault
            if code:
                with failing_writes(code):
                    return cli("export", src, what, "--out", target)
            return cli("export", src, what, "--out", target)
        return run

    def files(*names: str, dirs: tuple[str, ...] = ()) -> Any:
        def setup(ctx: Ctx, work: Path) -> None:
            for d in dirs:
                (work / d).mkdir(parents=True, exist_ok=True)
            for n in names:
                (work / n).parent.mkdir(parents=True, exist_ok=True)
                (work / n).write_bytes(b"precious " + n.encode())
        return setup

    cases = [
        Case("disk/export-out-is-a-folder", "disk", export_to("dir"), setup=files(dirs=("dir",)),
             mention=("folder",)),
        Case("disk/export-parent-is-a-file", "disk", export_to("file/out.png"),
             setup=files("file"), mention=("file",)),
        Case("disk/export-full-disk", "disk", export_to("old.png", code=errno.ENOSPC),
             setup=files("old.png"), mention=("full",)),
        Case("disk/export-read-only", "disk", export_to("old.png", code=errno.EROFS),
             setup=files("old.png"), mention=("read-only",)),
        Case("disk/export-permission", "disk", export_to("old.png", code=errno.EACCES),
             setup=files("old.png"), mention=("permission",)),
        Case("disk/export-json-full-disk", "disk", export_to("old.json", "json", errno.ENOSPC),
             setup=files("old.json"), mention=("full",)),
        Case("disk/sequence-out-is-a-file", "disk", export_to("seq", "sequence"),
             setup=files("seq"), mention=("file",)),
        Case("disk/synth-out-is-a-file", "disk",
             lambda ctx, work: cli("synth", work / "ds", "--images", "1", "--videos", "0"),
             setup=files("ds"), mention=("ds",)),
        Case("disk/synth-full-disk", "disk", _synth_failing(errno.ENOSPC), mention=("full",)),
    ]

    def onto_input(ctx: Ctx, work: Path) -> Any:
        return cli("export", work / "e.tam.npz", "npz", "--out", work / "e.tam.npz")

    def copy_expl(ctx: Ctx, work: Path) -> None:
        (work / "e.tam.npz").write_bytes(ctx.explanation().read_bytes())
    cases.append(Case("disk/export-onto-its-input", "disk", onto_input, setup=copy_expl,
                      mention=("replace",)))

    def stale_sequence(ctx: Ctx, work: Path) -> None:
        for k in range(1, 40):
            (work / "seq" / f"token_{k:04d}.png").parent.mkdir(exist_ok=True)
            (work / "seq" / f"token_{k:04d}.png").write_bytes(b"old")
        (work / "seq" / "notes.txt").write_text("mine")

    def verify_sequence(ctx: Ctx, value: Any) -> str | None:
        seq = ctx.case_dir("disk/sequence-over-a-longer-one") / "seq"
        pngs = sorted(p.name for p in seq.glob("token_*.png"))
        if len(pngs) != 10 or not (seq / "notes.txt").exists():
            return f"{len(pngs)} token PNGs (expected 10) or notes.txt gone"
        return None
    cases.append(Case("disk/sequence-over-a-longer-one", "disk", export_to("seq", "sequence"),
                      setup=stale_sequence, expect="success", verify=verify_sequence,
                      may_change=tuple(f"seq/token_{k:04d}.png" for k in range(1, 40))))

    def stale_parts(ctx: Ctx, work: Path) -> None:
        (work / ".out.png.tam999999-abcd1234.part").write_bytes(b"left by a killed tam")
        (work / ".someone-elses.part").write_bytes(b"not ours")

    def verify_parts(ctx: Ctx, value: Any) -> str | None:
        left = leftover_parts(ctx.case_dir("disk/stale-parts-swept"))
        return None if left == [".someone-elses.part"] else f"left: {left}"
    cases.append(Case("disk/stale-parts-swept", "disk", export_to("out.png"), setup=stale_parts,
                      expect="success", verify=verify_parts,
                      may_change=(".out.png.tam999999-abcd1234.part",)))

    def sigterm(ctx: Ctx, work: Path) -> Any:
        # A real `tam export` process gets SIGTERM while it writes its MP4: handled like
        # Ctrl+C (temporary file removed), exit status 143.
        import subprocess
        import time

        src = ctx.explanation("video")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tam_engine.cli", "export", str(src), "sweep", "--out",
             str(work / "s.mp4"), "--frames-per-token", "3000", "--fps", "1"],
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while not leftover_parts(work) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        left = leftover_parts(work) + [p.name for p in work.glob("s.mp4")]
        if proc.returncode != 143 or left:
            raise AssertionError(f"exit {proc.returncode}, left {left}: {err[-300:]}")
        return ("cli", proc.returncode, err)
    cases.append(Case("disk/sigterm-during-export", "disk", sigterm, mention=("interrupt",),
                      fast=False))
    return cases


def _synth_failing(code: int) -> Any:
    def run(ctx: Ctx, work: Path) -> Any:
        with failing_writes(code):
            return cli("synth", work / "ds", "--images", "1", "--videos", "0", "--size", "32")
    return run


# ---------------------------------------------------------------------- settings
SETTINGS = {
    "colormap-unknown": {"colormap": "rainbow-unicorn"},
    "combine-unknown": {"combine": "median"},
    "opacity-nan": {"opacity": float("nan")},
    "opacity-huge": {"opacity": 1e300},
    "layer-unknown": {"layer": "sideways"},
    "max-new-tokens-1e12": {"generation": {"max_new_tokens": 10**12}},
    "fps-negative": {"generation": {"video_fps": -3}},
    "pixels-negative": {"generation": {"min_pixels": -1}},
    "dtype-unknown": {"generation": {"dtype": "int3"}},
    "generation-a-list": {"generation": [1, 2]},
    "recent-files-not-texts": {"recent_files": [1, None, {}]},
    "top-level-list": [1, 2, 3],
}


def _settings_cases() -> list[Case]:
    from tam_desktop.settings import AppSettings

    default = AppSettings().to_dict()

    def case(name: str, text: str, broken: bool = True) -> Case:
        def setup(ctx: Ctx, work: Path) -> None:
            (work / "settings.json").write_text(text, encoding="utf-8", errors="surrogateescape")

        def run(ctx: Ctx, work: Path) -> Any:
            from tam_desktop.settings import load_settings

            return load_settings(work / "settings.json")

        def verify(ctx: Ctx, s: Any) -> str | None:
            d = s.to_dict()
            bad = [k for k in ("colormap", "combine", "opacity", "layer")
                   if d[k] != default[k]]
            if bad or s.generation.check() is None:
                return f"kept invalid values: {bad}"
            if broken and not s.problems:
                return "the user is not told that settings were reset"
            return None
        return Case(f"settings/{name}", "settings", run, setup=setup, expect="success",
                    verify=verify)

    out = [case(n, json.dumps(v)) for n, v in SETTINGS.items()]
    out.append(case("deep-nesting", "[" * 100_000 + "]" * 100_000))
    out.append(case("not-utf8", "{\"prompt\": \"\udcff\"}"))
    out.append(case("empty-file", ""))
    out.append(case("valid", json.dumps(default), broken=False))
    return out


def cases() -> list[Case]:
    return _value_cases() + _disk_cases() + _settings_cases()
