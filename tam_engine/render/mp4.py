"""An H.264 MP4 writer that common players open, written atomically.

libx264 through PyAV, yuv420p with even dimensions, BT.601 limited range tagged in the stream
(the RGB->YUV conversion is OpenCV's, which uses those coefficients; tagging them keeps players
from guessing BT.709 for HD sizes and shifting colours). The file is encoded to a temporary
name in the destination folder and moved into place only when complete, so a cancelled or
failed export leaves nothing behind.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from tam_engine.core.atomic import temp_file
from tam_engine.render.overlay import even_size

# AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic SMPTE 170M, AVCOL_RANGE_MPEG.
_BT601 = 6
_RANGE_LIMITED = 1


#: libx264's speed presets, fastest first.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")


class H264Writer:
    """Write RGB frames to ``path`` as H.264; use as a context manager.

    Parameters
    ----------
    path
        Destination ``.mp4``.
    fps
        Frames per second of the output.
    crf, preset
        libx264 quality (lower = better; 18-28 sensible) and speed preset.
    threads
        Encoder threads; 0 lets x264 choose.

    All frames must have the size of the first (odd sizes are padded by one pixel).
    """

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 23,
                 preset: str = "veryfast", threads: int = 0) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.crf = int(crf)
        self.preset = preset
        self.threads = int(threads)
        self.frames_written = 0
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._tmp: str | None = None

    # -------------------------------------------------------------------- lifecycle
    def __enter__(self) -> H264Writer:
        self._tmp = temp_file(self.path, suffix=".part.mp4")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self._finish()
        else:
            self._discard()

    def _open(self, width: int, height: int) -> None:
        import av

        assert self._tmp is not None, "use H264Writer as a context manager"
        self._container = av.open(self._tmp, "w", format="mp4")
        s = self._container.add_stream("libx264", rate=self.fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        cc = s.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = _BT601
        cc.color_range = _RANGE_LIMITED
        cc.thread_count = self.threads
        s.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = s
        self._size = (width, height)

    # -------------------------------------------------------------------- writing
    def write(self, rgb: np.ndarray) -> None:
        """Encode one ``(H, W, 3)`` uint8 RGB frame."""
        import av
        import cv2

        rgb = even_size(np.ascontiguousarray(rgb, dtype=np.uint8))
        h, w = rgb.shape[:2]
        if self._stream is None:
            self._open(w, h)
        elif (w, h) != self._size:
            raise ValueError(f"frame size {w}x{h} differs from the first frame's {self._size}")
        yuv = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        for pkt in self._stream.encode(frame):
            self._container.mux(pkt)
        self.frames_written += 1

    def _finish(self) -> None:
        try:
            if self._stream is None:
                raise ValueError("no frames to write")
            for pkt in self._stream.encode():
                self._container.mux(pkt)
            self._container.close()
            self._container = None
            assert self._tmp is not None
            os.replace(self._tmp, self.path)
            self._tmp = None
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the partial file is deleted anyway
                pass
            self._container = None
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None
