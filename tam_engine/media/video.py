"""Reading videos: frames sampled at a requested rate and capped to a maximum count spread evenly
over the whole clip, decoded with PyAV and, when PyAV cannot open a file, with OpenCV."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tam_engine.core.errors import MediaError
from tam_engine.core.media import MediaItem
from tam_engine.media.files import VIDEO_HINT, check_file, sniff_image


def sample_times(duration: float, fps: float, max_frames: int) -> np.ndarray:
    """Times (seconds from the clip's start) to sample: every ``1/fps`` s, or ``max_frames``
    evenly spread over the whole clip when that would be more."""
    if fps <= 0:
        raise ValueError("fps must be positive")
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    duration = max(float(duration), 0.0)
    n = max(1, math.floor(duration * fps + 1e-6))
    if n <= max_frames:
        return np.arange(n, dtype=np.float64) / fps
    return np.arange(max_frames, dtype=np.float64) * (duration / max_frames)


def load_video(path: str | os.PathLike, fps: float = 2.0, max_frames: int = 16) -> MediaItem:
    """Decode a video, sampling frames at ``fps`` (at most ``max_frames``, spread evenly).

    ``timestamps`` are the sampled frames' times in seconds from the clip's start; ``fps`` of
    the result is the effective sampling rate; ``frame_slot`` is ``arange(n)`` (a placeholder the
    model adapter replaces with the real temporal slots).
    """
    if fps <= 0 or max_frames < 1:
        raise ValueError("fps must be positive and max_frames at least 1")
    path = Path(path)
    head = check_file(path)
    if sniff_image(head) is not None:
        raise MediaError(f"{path.name}: this is an image ({sniff_image(head)}), not a video.",
                         "Open it as an image, or rename it with its real extension.")
    try:
        frames, times, duration = _decode_pyav(path, fps, max_frames)
    except MediaError as av_error:
        try:
            frames, times, duration = _decode_opencv(path, fps, max_frames)
        except MediaError:
            raise av_error from None
    n = len(frames)
    if n == 0:
        raise MediaError(f"{path.name}: the video has no decodable frames.", VIDEO_HINT)
    # The effective rate: the requested one, or lower when the cap spread the frames out.
    eff_fps = float(fps)
    if math.floor(duration * fps + 1e-6) > max_frames and duration > 0:
        eff_fps = max_frames / duration
    return MediaItem(kind="video", path=str(path), frames=np.stack(frames),
                     frame_slot=np.arange(n, dtype=np.int64),
                     timestamps=np.asarray(times, dtype=np.float64), fps=eff_fps)


def _select(frames: Iterable[tuple[float, object]], targets: np.ndarray,
            to_rgb) -> tuple[list[np.ndarray], list[float]]:
    """For each target time, keep the frame on screen at that time (the last one at or before
    it; the first frame for targets before it). ``frames`` yields ``(time, frame)``."""
    out: list[np.ndarray] = []
    times: list[float] = []
    ti = 0
    prev: tuple[float, object] | None = None
    for t, fr in frames:
        # A frame that starts after the target means the previous one was on screen then.
        while ti < targets.size and t > targets[ti] + 1e-6 and prev is not None:
            out.append(to_rgb(prev[1]))
            times.append(prev[0])
            ti += 1
        if ti >= targets.size:
            break
        prev = (t, fr)
    while ti < targets.size and prev is not None:
        out.append(to_rgb(prev[1]))
        times.append(prev[0])
        ti += 1
    # Drop duplicates (targets closer together than the source's frame interval).
    keep = [i for i in range(len(times)) if i == 0 or times[i] != times[i - 1]]
    return [out[i] for i in keep], [times[i] for i in keep]


def _decode_pyav(path: Path, fps: float, max_frames: int
                 ) -> tuple[list[np.ndarray], list[float], float]:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        kind = _sniff_container(path)
        if kind:
            raise MediaError(f"{path.name}: looks like {kind} video but is damaged or incomplete "
                             f"(for example an interrupted download or copy).",
                             "Get a complete copy of the file, or re-encode it if it plays "
                             "elsewhere.") from exc
        if isinstance(exc, av.error.InvalidDataError):
            raise MediaError(f"{path.name}: not a video file (its content is not a known "
                             f"container format).", VIDEO_HINT) from exc
        raise MediaError(f"{path.name}: cannot be opened as a video ({exc}).", VIDEO_HINT) from exc
    with container:
        if not container.streams.video:
            raise MediaError(f"{path.name}: the file has no video stream (audio only?).",
                             VIDEO_HINT)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = _stream_start(stream)
        duration = _stream_duration(container, stream)
        if duration is None:
            duration = _demux_duration(path, start)
        targets = sample_times(duration, fps, max_frames)
        frames, times = _pyav_select(container, stream, targets, path)
    return frames, [max(0.0, t) for t in times], float(duration)


# Decoding straight through a gap shorter than this is cheaper than seeking (a seek lands on a
# keyframe before the target and decodes forward from there anyway).
SEEK_GAP_S = 5.0


def _pyav_select(container, stream, targets: np.ndarray, path: Path
                 ) -> tuple[list[np.ndarray], list[float]]:
    """The frame on screen at each target time, seeking over long gaps so that sampling a
    long video does not decode all of it."""
    import av

    start = _stream_start(stream)
    rate = float(stream.average_rate or stream.guessed_rate or 25.0)
    tb = float(stream.time_base) if stream.time_base else None
    decoded = 0
    dec: Any = None
    prev: tuple[float, object] | None = None      # last frame at or before the target
    ahead: tuple[float, object] | None = None     # first frame after it (not yet used)
    out: list[np.ndarray] = []
    times: list[float] = []

    def next_frame() -> tuple[float, object] | None:
        nonlocal decoded
        try:
            frame = next(dec)
        except StopIteration:
            return None
        except av.error.FFmpegError as exc:
            if decoded == 0:
                raise MediaError(f"{path.name}: the video data is corrupt ({exc}).",
                                 VIDEO_HINT) from exc
            return None                           # a damaged tail: keep what we have
        decoded += 1
        t = frame.time
        return ((t - start) if t is not None else decoded / rate), frame

    for target in targets:
        known = ahead or prev
        far = target - (known[0] if known else 0.0) > SEEK_GAP_S
        if dec is None or far:
            if far and tb:
                try:
                    container.seek(int((target + start) / tb), stream=stream, backward=True)
                    dec, prev, ahead = None, None, None
                except av.error.FFmpegError:
                    pass                          # not seekable: decode through instead
            if dec is None:
                dec = container.decode(stream)
        chosen = None
        while True:
            item, ahead = (ahead, None) if ahead is not None else (next_frame(), None)
            if item is None:
                chosen = prev
                break
            if item[0] > target + 1e-6:
                ahead = item                      # the previous frame was on screen at target
                chosen = prev if prev is not None else item
                break
            prev = item
        if chosen is None:
            break
        if not times or chosen[0] != times[-1]:   # targets closer than the frame interval
            out.append(_pyav_rgb(chosen[1]))
            times.append(chosen[0])
    return out, times


def _sniff_container(path: Path) -> str | None:
    """The container a file's first bytes announce (to tell damaged videos from non-videos)."""
    with path.open("rb") as fh:
        head = fh.read(16)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        return "an MP4/MOV"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "an MKV/WebM"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "an AVI"
    return None


def _pyav_rgb(frame) -> np.ndarray:
    arr = frame.to_ndarray(format="rgb24")
    rot = getattr(frame, "rotation", 0) or 0
    # PyAV reports the display matrix as a counter-clockwise angle, as np.rot90 expects.
    k = int(round(rot / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(arr, k)) if k else arr


def _stream_start(stream) -> float:
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _stream_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        import av

        return float(container.duration / av.time_base)
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return None


def _demux_duration(path: Path, start: float) -> float:
    """Duration from the packets' timestamps, for containers that do not store one."""
    import av

    last = 0.0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for pkt in c.demux(s):
            if pkt.pts is not None and pkt.time_base is not None:
                end = float((pkt.pts + (pkt.duration or 0)) * pkt.time_base) - start
                last = max(last, end)
    return last


def _decode_opencv(path: Path, fps: float, max_frames: int
                   ) -> tuple[list[np.ndarray], list[float], float]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise MediaError(f"{path.name}: cannot be opened as a video.", VIDEO_HINT)
        rate = cap.get(cv2.CAP_PROP_FPS) or 25.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0
        duration = count / rate if count > 0 else 0.0
        targets = sample_times(duration, fps, max_frames)

        def timed() -> Iterator[tuple[float, object]]:
            i = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield i / rate, bgr
                i += 1

        frames, times = _select(timed(), targets,
                                lambda bgr: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return frames, times, duration


def iter_video_frames(path: str | os.PathLike) -> Iterator[tuple[float, np.ndarray]]:
    """Every frame of a video as ``(seconds from the clip's start, RGB array)``, in order
    (PyAV; for re-playing a source at its full rate, e.g. in video exports)."""
    import av

    path = Path(path)
    check_file(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path.name}: cannot be opened as a video ({exc}).", VIDEO_HINT) from exc
    with container:
        if not container.streams.video:
            raise MediaError(f"{path.name}: the file has no video stream.", VIDEO_HINT)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = _stream_start(stream)
        rate = float(stream.average_rate or stream.guessed_rate or 25.0)
        try:
            for i, frame in enumerate(container.decode(stream)):
                t = frame.time
                yield max(0.0, (t - start) if t is not None else i / rate), _pyav_rgb(frame)
        except av.error.FFmpegError:
            return                                   # a damaged tail: stop at the last good frame


def probe_video(path: str | os.PathLike) -> tuple[float, float]:
    """``(duration in seconds, frames per second)`` of a video file."""
    import av

    path = Path(path)
    check_file(path)
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise MediaError(f"{path.name}: the file has no video stream.", VIDEO_HINT)
            s = c.streams.video[0]
            rate = float(s.average_rate or s.guessed_rate or 25.0)
            duration = _stream_duration(c, s)
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path.name}: cannot be opened as a video ({exc}).", VIDEO_HINT) from exc
    if duration is None:
        duration = _demux_duration(path, 0.0)
    return float(duration), rate
