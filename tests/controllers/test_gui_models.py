"""The GUI's Qt-free half: events, playback state, token text, settings (no widgets)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tam_desktop.models import DisplayOptions, Event, FrameCursor, PlaybackState
from tam_desktop.models.text import candidates_line, token_tooltip
from tam_desktop.settings import AppSettings, load_settings, save_settings
from tam_engine.core.tokens import display_token
from tam_engine.inference.settings import GenerationSettings
from tam_engine.testing.synthetic import synthetic_explanation


def test_models_do_not_import_qt():
    code = ("import sys, tam_desktop.models, tam_desktop.models.text, tam_desktop.settings\n"
            "print([m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'pyqtgraph', 'superqt', 'shiboken6')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_event_connect_emit_block_disconnect():
    ev, got = Event("x"), []
    ev.connect(got.append)
    ev.connect(got.append)  # connecting twice is one connection
    ev.emit(1)
    with ev.blocked():
        ev.emit(2)
    ev.disconnect(got.append)
    ev.emit(3)
    assert got == [1]


def test_cursor_clamps_wraps_and_only_plays_videos():
    c, frames = FrameCursor(), []
    c.frame_changed.connect(frames.append)
    c.set_length(4, fps=2.0)
    c.set_frame(10)
    c.step(-1)
    c.advance()
    c.advance()
    assert frames == [3, 2, 3, 0]
    c.set_playing(True)
    assert c.playing
    c.set_length(1)
    assert not c.playing and c.frame == 0
    c.set_playing(True)
    assert not c.playing


def test_display_options_validate_and_notify():
    d, names = DisplayOptions(), []
    d.changed.connect(names.append)
    d.colormap = "viridis"
    d.colormap = "viridis"
    d.opacity = 2.0
    d.combine = "max"
    assert names == ["colormap", "opacity", "combine"] and d.opacity == 1.0
    with pytest.raises(ValueError):
        d.colormap = "rainbow"
    with pytest.raises(ValueError):
        d.combine = "sum"


def test_state_token_navigation_and_selection():
    ex = synthetic_explanation("image")
    st, tokens, selections = PlaybackState(), [], []
    st.token_changed.connect(lambda kind, k: tokens.append((kind, k)))
    st.selection_changed.connect(selections.append)
    st.set_content([], ex)
    assert st.media == ex.media and st.selection == (0,)
    st.step_token(1)
    st.step_token(-5)
    st.set_token(ex.n_answer + 3)
    assert tokens == [("answer", 1), ("answer", 0), ("answer", ex.n_answer - 1)]
    st.set_token(2)
    st.extend_selection(5)
    assert st.selection == (2, 3, 4, 5) and st.token == 5
    st.toggle_in_selection(3)
    assert st.selection == (2, 4, 5)
    st.set_token(1, "prompt")
    assert st.kind == "prompt" and st.selection == (1,)
    assert selections[-1] == (1,)


def test_state_maps_follow_token_phrase_and_frame():
    ex = synthetic_explanation("video", n_frames=6)
    st = PlaybackState()
    st.set_content(ex.media, ex)
    st.set_token(4)
    st.cursor.set_frame(3)
    assert np.array_equal(st.current_map(), ex.frame_map(4, 0, 3))
    st.extend_selection(6)
    st.display.combine = "max"
    want = ex.combined_grid_maps([4, 5, 6], "max")[0][ex.media[0].frame_slot[3]]
    assert np.array_equal(st.current_map(), want)
    strengths = st.frame_strengths()
    assert strengths.shape == (6,) and np.all((0 <= strengths) & (strengths <= 1))
    assert strengths[0] == strengths[1]  # two frames share one temporal slot


def test_two_states_share_one_cursor():
    cursor = FrameCursor()
    a, b = PlaybackState(cursor=cursor), PlaybackState(cursor=cursor)
    a.set_content([], synthetic_explanation("video", n_frames=6))
    b.set_content([], synthetic_explanation("video", n_frames=6, seed=1))
    a.cursor.set_frame(4)
    b.set_token(0)
    a.set_token(2)
    assert b.cursor.frame == 4 and b.token == 0
    assert np.array_equal(b.current_map(), b.explanation.frame_map(0, 0, 4))


def test_state_without_explanation_has_no_map():
    st = PlaybackState()
    assert st.current_map() is None and st.n_tokens() == 0
    st.set_token(3)  # nothing to select: ignored
    assert st.token == 0 and st.selection == ()


def test_token_text_helpers():
    assert display_token(" dog") == "dog"
    assert display_token(" ") == "␣" and display_token("\n") == "↵" and display_token("") == "∅"
    ex = synthetic_explanation("image")
    tip = token_tooltip(ex, 2)
    assert "top candidates" in tip and "%" in tip and "◀" in tip
    line = candidates_line(ex, 2)
    assert len(line) == 5 and line[0][2] and abs(sum(p for _, p, _ in line) - 0.9) < 1e-3


def test_settings_round_trip_and_tolerate_garbage(tmp_path):
    path = tmp_path / "s" / "settings.json"
    s = AppSettings(colormap="magma", opacity=0.25, last_model="m")
    s.generation = GenerationSettings(max_new_tokens=7, max_pixels=200_000, device="cpu")
    for f in ("a.png", "b.png", "a.png"):
        s.add_recent_file(f)
    save_settings(s, path)
    back = load_settings(path)
    assert back == s and back.recent_files == ["a.png", "b.png"]
    path.write_text(json.dumps({"opacity": "high", "colormap": 3, "generation": {
        "max_new_tokens": 12, "min_pixels": "x", "video_fps": 3}, "recent_files": [1]}))
    odd = load_settings(path)
    assert odd.opacity == 0.5 and odd.colormap == "jet" and odd.recent_files == []
    assert odd.generation.max_new_tokens == 12 and odd.generation.min_pixels is None
    assert odd.generation.video_fps == 3.0
    path.write_text("{not json")
    assert load_settings(path) == AppSettings()
    assert load_settings(tmp_path / "missing.json") == AppSettings()


def test_generation_settings_are_the_engines_and_keep_their_json_names(tmp_path):
    """The app stores the engine's own GenerationSettings; a settings.json written before (the
    same seven names) loads into it and is written back unchanged."""

    stored = {"max_new_tokens": 5, "video_fps": 1.5, "max_frames": 4, "min_pixels": None,
              "max_pixels": 200_704, "device": "cpu", "dtype": "float32"}
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, "colormap": "magma", "generation": stored}))
    loaded = load_settings(path)
    assert type(loaded.generation) is GenerationSettings
    assert loaded.generation == GenerationSettings(max_new_tokens=5, video_fps=1.5, max_frames=4,
                                                   max_pixels=200_704, device="cpu",
                                                   dtype="float32")
    save_settings(loaded, path)
    written = json.loads(path.read_text())
    assert written["generation"] == stored and written["colormap"] == "magma"
    assert load_settings(path) == loaded
    # top_k is not the app's to store; trust_remote_code is never taken from a file.
    path.write_text(json.dumps({"generation": {**stored, "top_k": 9, "trust_remote_code": True}}))
    gen = load_settings(path).generation
    assert gen.top_k == GenerationSettings().top_k and gen.trust_remote_code is False


def test_model_cache_keeps_one_model_per_key():
    from tam_desktop.worker import ModelCache

    loads = []

    def loader(name, device, dtype):
        loads.append((name, device, dtype))
        return object()

    cache = ModelCache(loader)
    a = cache.get("m", "cpu", "auto")
    assert cache.get("m", "cpu", "auto") is a and cache.holds("m", "cpu", "auto")
    b = cache.get("m", "cpu", "float32")  # another dtype is another model
    assert b is not a and not cache.holds("m", "cpu", "auto")
    assert loads == [("m", "cpu", "auto"), ("m", "cpu", "float32")]
    cache.clear()
    assert not cache.holds("m", "cpu", "float32")


def test_select_sets_a_phrase_in_one_step():
    ex = synthetic_explanation("image")
    st = PlaybackState()
    st.set_content(ex.media, ex)
    st.set_token(1, "prompt")
    tokens, selections = [], []
    st.token_changed.connect(lambda kind, k: tokens.append((kind, k, st.selection)))
    st.selection_changed.connect(selections.append)
    st.select([7, 6, 6], current=7, kind="answer")
    # One event each, and the state is complete when the first is heard.
    assert tokens == [("answer", 7, (6, 7))] and selections == [(6, 7)]
    assert (st.kind, st.token, st.selection) == ("answer", 7, (6, 7))
    st.select([6, 7], current=7)                       # nothing changes: nothing is heard
    assert len(tokens) == 1 and len(selections) == 1
    st.select([9, 3, 99])                              # current: the first; 99 is no token
    assert (st.token, st.selection) == (3, (3, 9)) and selections[-1] == (3, 9)
    st.extend_selection(5)                             # the anchor is the current token
    assert st.selection == (3, 4, 5)
    st.select([])
    st.select([-1, 10])
    assert st.selection == (3, 4, 5)


def test_media_cache_decodes_once_until_the_files_or_sampling_change(tmp_path, monkeypatch):
    import os

    import tam_engine.media.io as media_io
    from tam_desktop.worker import MediaCache
    from tam_engine.demo import synth

    image, video = tmp_path / "a.png", tmp_path / "b.mp4"
    image.write_bytes(synth.encode_png(synth.make_image_scene(3, size=64).image))
    video.write_bytes(synth.encode_mp4(synth.make_video_scene(4, size=64, n_frames=6).frames))
    calls = []
    real = media_io.load_media
    monkeypatch.setattr(media_io, "load_media",
                        lambda paths, **kw: calls.append(list(paths)) or real(paths, **kw))
    cache = MediaCache()
    assert cache.peek([str(image)], 2.0, 16) == [] and not calls     # peek never decodes
    first = cache.get([str(image)], 2.0, 16)
    assert cache.get([str(image)], 1.0, 4)[0] is first[0]          # images: any sampling
    assert cache.peek([str(image)], 2.0, 16)[0] is first[0] and len(calls) == 1
    both = [str(image), str(video)]
    cache.get(both, 2.0, 4)
    assert cache.peek(both, 2.0, 4) and len(calls) == 2
    assert cache.peek(both, 2.0, 3) == []                            # a video: sampling counts
    cache.get(both, 2.0, 3)
    assert len(calls) == 3
    st = os.stat(image)
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))    # the file changed
    assert cache.peek(both, 2.0, 3) == []
    cache.get(both, 2.0, 3)
    assert len(calls) == 4


def test_timings_are_shown_step_by_step():
    from tam_desktop.models.text import timings_text

    t = {"load_s": 5.24, "prepare_s": 0.1, "generate_s": 0.7, "explain_s": 0.06}
    assert timings_text(t) == "load 5.2 s \u00b7 generate 0.8 s \u00b7 explain 0.1 s"
    assert timings_text({**t, "load_s": 0.0}).startswith("model already loaded \u00b7 ")
    assert timings_text({"prepare_s": 0.1, "generate_s": 0.2, "explain_s": 0.3}) == (
        "generate 0.3 s \u00b7 explain 0.3 s")      # a file saved by the CLI: no load time
    assert timings_text({}) == ""
