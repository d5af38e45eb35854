"""Media decoding: images, videos, sampling, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tam_engine.core.errors import MediaError
from tam_engine.media.files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from tam_engine.media.images import load_image
from tam_engine.media.io import load_media, media_kind
from tam_engine.media.video import load_video, sample_times


def write_video(path: Path, n_frames: int, rate: int = 10, size: tuple[int, int] = (64, 48),
                codec: str = "libx264") -> Path:
    """A small clip whose frame i has red level 10*i (readable back after lossy coding)."""
    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n_frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = min(255, 10 * i)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def frame_index(frame: np.ndarray) -> int:
    return int(round(float(frame[..., 0].mean()) / 10.0))


# ------------------------------------------------------------------------------ images
@pytest.mark.parametrize("fmt,ext", [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"),
                                     ("BMP", ".bmp"), ("TIFF", ".tiff")])
def test_image_formats_load_as_rgb(tmp_path, fmt, ext):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    p = tmp_path / f"img{ext}"
    Image.fromarray(arr).save(p, format=fmt)
    item = load_image(p)
    assert item.kind == "image"
    assert item.frames.shape == (1, 20, 30, 3) and item.frames.dtype == np.uint8
    if fmt in ("PNG", "BMP", "TIFF"):
        np.testing.assert_array_equal(item.frames[0], arr)


def test_greyscale_and_alpha_become_rgb(tmp_path):
    Image.fromarray(np.full((5, 6), 77, np.uint8)).save(tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").frames.shape == (1, 5, 6, 3)
    rgba = np.zeros((5, 6, 4), np.uint8)  # fully transparent -> white background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert (load_image(tmp_path / "a.png").frames == 255).all()


def test_exif_rotation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)                        # left half red
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6                                 # "rotate 90 CW to display"
    p = tmp_path / "rot.jpg"
    img.save(p, format="JPEG", exif=exif.tobytes(), quality=95)
    item = load_image(p)
    assert item.frames.shape == (1, 40, 20, 3)       # now portrait
    top, bottom = item.frames[0, :15].mean(axis=(0, 1)), item.frames[0, -15:].mean(axis=(0, 1))
    assert top[0] > 200 and bottom[0] < 50            # the red half turned to the top


def test_truncated_jpeg_raises_media_error(tmp_path):
    rng = np.random.default_rng(1)
    p = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(p, format="JPEG")
    p.write_bytes(p.read_bytes()[:400])
    with pytest.raises(MediaError) as ei:
        load_image(p)
    assert "photo.jpg" in str(ei.value) and "truncated" in str(ei.value)
    assert ei.value.hint


def test_garbage_image_raises(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("hello, not an image")
    with pytest.raises(MediaError, match="notes.png"):
        load_media([p])


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(MediaError, match="nowhere.png.*not found"):
        load_media(tmp_path / "nowhere.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MediaError, match="empty.png.*empty"):
        load_image(tmp_path / "empty.png")


def test_unsupported_extension(tmp_path):
    p = tmp_path / "doc.xyz"
    p.write_text("some text")
    with pytest.raises(MediaError) as ei:
        load_media([p])
    assert "doc.xyz" in str(ei.value) and "unsupported" in str(ei.value)
    assert ".mp4" in ei.value.hint and ".png" in ei.value.hint


def test_content_wins_over_extension(tmp_path):
    p = tmp_path / "really_png.mp4"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(p, format="PNG")
    assert media_kind(p) == "image"
    assert load_media([p])[0].kind == "image"
    with pytest.raises(MediaError, match="really_png.mp4.*image"):
        load_video(p)


def test_extension_tuples():
    assert ".png" in IMAGE_EXTENSIONS and ".jpeg" in IMAGE_EXTENSIONS
    assert {".mp4", ".mov", ".avi", ".mkv", ".webm"} <= set(VIDEO_EXTENSIONS)


# ------------------------------------------------------------------------------ videos
def test_sample_times_rate_and_cap():
    np.testing.assert_allclose(sample_times(3.0, 2.0, 16), np.arange(6) / 2.0)
    capped = sample_times(10.0, 2.0, 4)
    np.testing.assert_allclose(capped, [0.0, 2.5, 5.0, 7.5])
    assert sample_times(0.05, 2.0, 16).tolist() == [0.0]


def test_video_sampling_counts_and_timestamps(tmp_path):
    p = write_video(tmp_path / "clip.mp4", n_frames=30, rate=10)   # 3 s
    item = load_video(p, fps=2.0, max_frames=16)
    assert item.kind == "video" and item.frames.shape == (6, 48, 64, 3)
    np.testing.assert_allclose(item.timestamps, np.arange(6) * 0.5, atol=1e-6)
    assert [frame_index(f) for f in item.frames] == [0, 5, 10, 15, 20, 25]
    np.testing.assert_array_equal(item.frame_slot, np.arange(6))
    assert item.fps == pytest.approx(2.0)


def test_video_cap_spreads_over_whole_clip(tmp_path):
    p = write_video(tmp_path / "clip.mkv", n_frames=30, rate=10)
    item = load_video(p, fps=10.0, max_frames=3)
    assert item.n_frames == 3
    np.testing.assert_allclose(item.timestamps, [0.0, 1.0, 2.0], atol=1e-6)
    assert [frame_index(f) for f in item.frames] == [0, 10, 20]
    assert item.fps == pytest.approx(1.0)


def test_video_rate_above_source_gives_each_frame_once(tmp_path):
    p = write_video(tmp_path / "short.mp4", n_frames=4, rate=4)      # 1 s at 4 fps
    item = load_video(p, fps=8.0, max_frames=16)
    assert [frame_index(f) for f in item.frames] == [0, 1, 2, 3]
    np.testing.assert_allclose(item.timestamps, [0.0, 0.25, 0.5, 0.75], atol=1e-6)


@pytest.mark.parametrize("ext,codec", [(".webm", "libvpx-vp9"), (".avi", "mpeg4"),
                                       (".mov", "libx264")])
def test_other_containers(tmp_path, ext, codec):
    p = write_video(tmp_path / f"clip{ext}", n_frames=10, rate=5, codec=codec)
    item = load_media([p], fps=1.0)[0]
    assert item.kind == "video" and item.n_frames == 2


def test_zero_byte_video(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(MediaError) as ei:
        load_media([p])
    assert "empty.mp4" in str(ei.value) and "empty" in ei.value.message
    assert ei.value.hint


def test_text_file_renamed_mp4(tmp_path):
    p = tmp_path / "fake.mp4"
    p.write_text("this is a text file, not a video\n" * 20)
    with pytest.raises(MediaError) as ei:
        load_video(p)
    assert "fake.mp4" in str(ei.value) and "not a video" in str(ei.value)
    assert "MP4" in ei.value.hint


def test_audio_only_file_has_no_video_stream(tmp_path):
    p = tmp_path / "sound.mkv"
    with av.open(str(p), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16",
                                           layout="mono")
        frame.sample_rate = 8000
        for pkt in s.encode(frame):
            c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    with pytest.raises(MediaError, match="sound.mkv.*no video stream"):
        load_video(p)


def test_truncated_video_keeps_decodable_frames_or_explains(tmp_path):
    p = write_video(tmp_path / "cut.mkv", n_frames=30, rate=10, size=(128, 96))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    try:
        item = load_video(p, fps=2.0)
    except MediaError as exc:                         # acceptable, but must be explained
        assert "cut.mkv" in str(exc)
    else:
        assert 1 <= item.n_frames <= 6


def test_mixed_list_keeps_order(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    v = write_video(tmp_path / "b.mp4", n_frames=10, rate=10)
    items = load_media([tmp_path / "a.png", v, str(tmp_path / "a.png")], fps=4.0)
    assert [i.kind for i in items] == ["image", "video", "image"]


def test_opencv_fallback_when_pyav_cannot_open(tmp_path, monkeypatch):
    import tam_engine.media.video as mio

    def refuse(path, fps, max_frames):
        raise MediaError(f"{path.name}: PyAV refused", "hint")

    monkeypatch.setattr(mio, "_decode_pyav", refuse)
    p = write_video(tmp_path / "clip.avi", n_frames=20, rate=10, codec="mpeg4")
    item = load_video(p, fps=2.0)
    assert [frame_index(f) for f in item.frames] == [0, 5, 10, 15]
    np.testing.assert_allclose(item.timestamps, [0.0, 0.5, 1.0, 1.5], atol=1e-6)
    text = tmp_path / "fake.avi"
    text.write_text("not a video")
    with pytest.raises(MediaError, match="PyAV refused"):   # the first decoder's reason wins
        load_video(text)


def test_iter_and_probe_video(tmp_path):
    from tam_engine.media.video import iter_video_frames, probe_video

    p = write_video(tmp_path / "clip.mp4", n_frames=12, rate=6)
    duration, rate = probe_video(p)
    assert duration == pytest.approx(2.0, abs=0.01) and rate == pytest.approx(6.0)
    frames = list(iter_video_frames(p))
    assert [frame_index(f) for _, f in frames] == list(range(12))
    np.testing.assert_allclose([t for t, _ in frames], np.arange(12) / 6, atol=1e-6)
    (tmp_path / "x.mp4").write_text("text")
    with pytest.raises(MediaError, match="x.mp4"):
        list(iter_video_frames(tmp_path / "x.mp4"))


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_truncated_video_header_says_damaged(tmp_path, ext):
    p = write_video(tmp_path / f"movie{ext}", n_frames=30, rate=10, size=(128, 96))
    p.write_bytes(p.read_bytes()[:100])
    try:
        item = load_video(p)
    except MediaError as exc:
        assert f"movie{ext}" in str(exc)
        assert "damaged or incomplete" in exc.message or "no decodable" in exc.message
    else:                                  # a demuxer may salvage the start; then it must decode
        assert item.n_frames >= 1


def test_truncated_png(tmp_path):
    p = tmp_path / "pic.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (50, 50, 3), dtype=np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[:2000])
    with pytest.raises(MediaError, match="pic.png.*truncated"):
        load_image(p)


def write_long_video(path: Path, n_frames: int, rate: int, gop: int = 8) -> Path:
    """Frame i has red 10 * (i % 25) and green 10 * (i // 25): indices up to 624 survive."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.codec_context.gop_size = gop
        for i in range(n_frames):
            img = np.zeros((32, 32, 3), np.uint8)
            img[..., 0], img[..., 1] = 10 * (i % 25), 10 * (i // 25)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def long_index(frame: np.ndarray) -> int:
    r, g = (int(round(float(frame[..., c].mean()) / 10.0)) for c in (0, 1))
    return r + 25 * g


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_long_video_seeks_to_the_same_frames(tmp_path, monkeypatch, ext):
    import tam_engine.media.video as mio

    p = write_long_video(tmp_path / f"long{ext}", n_frames=240, rate=4)       # 60 s
    seeking = load_video(p, fps=0.1, max_frames=4)                          # 0, 15, 30, 45 s
    assert [long_index(f) for f in seeking.frames] == [0, 60, 120, 180]
    np.testing.assert_allclose(seeking.timestamps, [0, 15, 30, 45], atol=1e-6)
    monkeypatch.setattr(mio, "SEEK_GAP_S", 1e9)                              # decode through
    straight = load_video(p, fps=0.1, max_frames=4)
    np.testing.assert_array_equal(seeking.timestamps, straight.timestamps)
    assert [long_index(f) for f in straight.frames] == [0, 60, 120, 180]


def test_16_bit_and_cmyk_images(tmp_path):
    deep = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    item = load_image(tmp_path / "deep.png")
    assert item.frames.shape == (1, 20, 30, 3)
    assert item.frames[0, 0, 0, 0] < item.frames[0, -1, -1, 0]     # scaled, not clipped to white
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    rgb = load_image(tmp_path / "cmyk.jpg").frames[0]
    assert rgb[..., 0].mean() > 200 and rgb[..., 1].mean() < 60     # red
