"""Decoding images the way the rest of the workbench expects them: RGB, 8 bits, alpha on white.

Real datasets hold PNGs with alpha, 16-bit scans, CMYK JPEGs, palette GIFs and grayscale
digits; the model wants RGB. Every failure (unreadable, corrupt, too large) becomes an
`ImageError` whose `kind` is the `Problem` kind the checks report, so a caller never sees a raw
PIL exception.
"""

from __future__ import annotations

import io
import os
import re
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageOps

from workbench.errors import UserError

# Our own decompression-bomb limit, checked from the header before any pixel is allocated.
# 64 megapixels holds every real photo a transfer dataset needs; a 20000x20000 image does not fit.
MAX_PIXELS = 64_000_000
# No image file a transfer dataset needs is larger (a 64-megapixel 16-bit TIFF is ~400 MB).
MAX_FILE_BYTES = 512 * 1024 * 1024
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# Pillow warns (on stderr, once per place) about images between its limit and twice it, before
# our own check can run. An image that large is refused anyway, so while we open or decode, its
# warning is an error that `_open` turns into a "too_large" problem: one listed problem, nothing
# printed. See `_bomb_warning_raises`.
_BOMB_FILTER = ("error", None, Image.DecompressionBombWarning, None, 0)
_bomb_filter_lock = threading.Lock()
_bomb_filter_users = 0


@contextmanager
def _bomb_warning_raises() -> Iterator[None]:
    """Make Pillow's decompression-bomb warning an error while the block runs, and only then.

    The filter is added by the first thread to enter and removed by the last to leave:
    `warnings.catch_warnings()` is not thread-safe, and the checks decode in several threads.
    Outside our calls, the user's process keeps its own warning filters.
    """
    global _bomb_filter_users
    with _bomb_filter_lock:
        if _bomb_filter_users == 0:
            warnings.filters.insert(0, _BOMB_FILTER)
        _bomb_filter_users += 1
    try:
        yield
    finally:
        with _bomb_filter_lock:
            _bomb_filter_users -= 1
            if _bomb_filter_users == 0 and _BOMB_FILTER in warnings.filters:
                warnings.filters.remove(_BOMB_FILTER)


class ImageError(UserError):
    """An image that cannot be used; `kind` is "unreadable", "corrupt" or "too_large"."""

    def __init__(self, name: str, reason: str, kind: str = "corrupt") -> None:
        super().__init__(f"{name}: {reason}")
        self.reason = reason  # the message without the file name, for problem lists
        self.kind = kind


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's content; an unreadable or missing file raises `ImageError("unreadable")`.

    Only a regular file is read, and at most MAX_FILE_BYTES of it: a FIFO would block forever
    and a link to /dev/zero would fill memory. Opening without blocking lets a FIFO be refused.
    """
    try:
        fh = open(path, "rb", opener=_open_nonblocking)  # noqa: SIM115 (closed below)
    except PermissionError as exc:
        raise ImageError(str(path), "permission denied", "unreadable") from exc
    except OSError as exc:  # missing, an I/O error: the image cannot be read
        reason = f"cannot be read ({exc.strerror or exc})"
        raise ImageError(str(path), reason, "unreadable") from exc
    with fh:
        return _read_regular(fh, str(path))


def _open_nonblocking(path: str, flags: int) -> int:
    """`os.open` that returns at once for a FIFO with no writer (O_NONBLOCK)."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _read_regular(fh: io.BufferedReader, name: str) -> bytes:
    """The bytes of an open regular file no larger than MAX_FILE_BYTES."""
    info = os.fstat(fh.fileno())
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(name, "not a regular file (a folder, pipe, device or socket)",
                         "unreadable")
    if info.st_size > MAX_FILE_BYTES:
        raise ImageError(name, f"{info.st_size:,} bytes is over the {MAX_FILE_BYTES:,}-byte "
                         "limit for an image file", "too_large")
    try:
        # read(n) allocates n bytes up front: ask for the size the file has (one more byte
        # shows whether it grew since), never for the cap
        data = fh.read(info.st_size + 1)
    except OSError as exc:
        raise ImageError(name, f"cannot be read ({exc.strerror or exc})", "unreadable") from exc
    if len(data) > info.st_size:
        raise ImageError(name, "the file changed while it was read", "unreadable")
    return data


def _open(data: bytes, name: str) -> Image.Image:
    """Open (header only) and apply the size guard before any pixel is decoded."""
    if not data:
        raise ImageError(name, "empty file (0 bytes)", "corrupt")
    try:
        with _bomb_warning_raises():
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(name, _bomb_reason(exc), "too_large") from exc
    except Image.UnidentifiedImageError as exc:  # PIL's message names a BytesIO object
        raise ImageError(name, "not a recognised image format", "corrupt") from exc
    except Exception as exc:  # noqa: BLE001  a corrupt header raises many exception types
        raise ImageError(name, f"not a readable image ({_short(exc)})", "corrupt") from exc
    width, height = img.size
    if width * height > MAX_PIXELS:
        img.close()
        raise ImageError(
            name, f"{width}x{height} pixels is over the {MAX_PIXELS:,}-pixel limit", "too_large"
        )
    return img


def _bomb_reason(exc: BaseException) -> str:
    """Pillow's decompression-bomb message, in our words (it names the image's pixel count)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)):,} pixels" if found else "the image"
    return f"{size} is over the {MAX_PIXELS:,}-pixel limit (a possible decompression bomb)"


def _short(exc: BaseException) -> str:
    """One line naming an exception, for messages."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _decode(img: Image.Image, name: str) -> None:
    """Decode every pixel, so that truncated or corrupt data is found now."""
    try:
        with _bomb_warning_raises():  # a GIF or TIFF frame can be a bomb too
            img.load()
    except Exception as exc:  # noqa: BLE001  truncated / corrupt data raises many types
        raise ImageError(name, f"corrupt image data ({_short(exc)})", "corrupt") from exc


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparency is composited onto white."""
    if img.mode in _SIXTEEN_BIT_MODES or img.mode in ("I", "F"):
        img = _wide_to_l(img)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def _wide_to_l(img: Image.Image) -> Image.Image:
    """Scale a 16-bit or 32-bit single-channel image to 8 bits (PIL's convert would clip)."""
    arr = np.asarray(img).astype(np.float64)
    # 16-bit PNGs often arrive as mode "I"; their values go up to 65535, not 255
    sixteen_bit = img.mode in _SIXTEEN_BIT_MODES or (img.mode == "I" and arr.max(initial=0) > 255)
    if sixteen_bit:
        arr = arr / 257.0
    elif img.mode == "F" and arr.size and arr.max() <= 1.0:
        arr = arr * 255.0  # float images in [0, 1]
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def decode_image(data: bytes, name: str = "image", draft: int | None = None) -> Image.Image:
    """Decode bytes into an RGB image; `draft` lets JPEG decode at a reduced scale."""
    img = _open(data, name)
    try:
        if draft and img.format == "JPEG":
            img.draft("RGB", (draft, draft))
        _decode(img, name)
        # phone photos store rotation in EXIF; the model should see them upright
        ImageOps.exif_transpose(img, in_place=True)
        rgb = to_rgb(img)
        return img.copy() if rgb is img else rgb  # the original is closed below
    finally:
        img.close()


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Load one image as 8-bit RGB, raising `ImageError` (a `UserError`) when it cannot be used."""
    return decode_image(read_bytes(path), str(path))


def load_thumbnail(path: str | os.PathLike[str], size: int = 96) -> Image.Image:
    """A small RGB preview that fits in `size` x `size`, keeping the aspect ratio."""
    img = decode_image(read_bytes(path), str(path), draft=size)
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    return img


def verify_image(data: bytes, name: str) -> tuple[int, int]:
    """Decode every pixel without converting (the checks' fast path); returns the size."""
    img = _open(data, name)
    try:
        _decode(img, name)
        return img.size
    finally:
        img.close()
