"""What a media file is before it is decoded: the accepted extensions, the image formats known by
their magic numbers, the hints shown on failure, and the early checks every reader makes."""

from __future__ import annotations

from pathlib import Path

from tam_engine.core.errors import MediaError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")

IMAGE_HINT = "Open a PNG, JPEG, WebP, BMP or TIFF image, or re-save this one in an image editor."
VIDEO_HINT = ("Open an MP4, MOV, AVI, MKV or WebM video, or re-encode this one "
               "(for example: ffmpeg -i input -c:v libx264 output.mp4).")

# Magic numbers of the image formats we accept: content wins over a wrong extension.
IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def sniff_image(head: bytes) -> str | None:
    for magic, name in IMAGE_MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def check_file(path: Path) -> bytes:
    """Fail early, with a clear message, on a missing, unreadable or empty file."""
    if not path.exists():
        raise MediaError(f"{path.name}: file not found ({path}).",
                         "Check the path; the file may have been moved or deleted.")
    if not path.is_file():
        raise MediaError(f"{path.name}: not a file ({path}).",
                         "Choose an image or video file, not a folder.")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise MediaError(f"{path.name}: cannot be read ({exc.strerror or exc}).",
                         "Check the file's permissions, or copy it somewhere readable.") from exc
    if size == 0:
        raise MediaError(f"{path.name}: the file is empty (0 bytes).",
                         "The file was probably not fully downloaded or copied; get it again.")
    return head
