"""Builders for the bad and unusual image files the dataset tests need (no tests here).

Every file is tiny; the "20000x20000" image is a valid PNG header that claims that size, so the
bomb guard is exercised without allocating anything.
"""

from __future__ import annotations

import builtins
import io
import os
import struct
import zlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image


def save(img: Image.Image, path: Path, **kwargs: object) -> Path:
    """Save `img` at `path`, creating the parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kwargs)
    return path


def rgb_png(path: Path, color: tuple[int, int, int] = (200, 30, 30), size: int = 32) -> Path:
    """A plain RGB PNG."""
    return save(Image.new("RGB", (size, size), color), path)


def noise_png(path: Path, seed: int, size: int = 32) -> Path:
    """An RGB PNG with distinct content per seed (so it is no one's duplicate)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return save(Image.fromarray(pixels, "RGB"), path)


def jpeg_bytes(size: int = 64) -> bytes:
    """A real JPEG with some texture (so truncating it cuts image data)."""
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_bytes(path: Path, data: bytes) -> Path:
    """Write raw bytes, creating the parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def truncated_jpeg(path: Path) -> Path:
    """A JPEG cut in the middle of its image data."""
    data = jpeg_bytes()
    return write_bytes(path, data[: len(data) // 2])


def text_named_jpg(path: Path) -> Path:
    """A text file with a .jpg name."""
    return write_bytes(path, b"this is not an image, just text\n")


def alpha_png(path: Path) -> Path:
    """An RGBA PNG: left half opaque blue, right half fully transparent (red underneath)."""
    img = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (0, 0, 16, 32))
    return save(img, path)


def png16(path: Path, value: int = 65535) -> Path:
    """A 16-bit grayscale PNG filled with `value`."""
    return save(Image.fromarray(np.full((32, 32), value, dtype=np.uint16)), path)


def cmyk_jpeg(path: Path) -> Path:
    """A CMYK JPEG with no ink (white)."""
    return save(Image.new("CMYK", (32, 32), (0, 0, 0, 0)), path, format="JPEG")


def huge_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A PNG whose header claims width x height; the pixel data is a few bytes only."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return write_bytes(path, data + chunk(b"IEND", b""))


def make_unreadable(path: Path, module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `path` unreadable for `module`: chmod 000, or a simulated EACCES under root.

    Root reads a chmod-000 file anyway, so there the module's `open` is patched to refuse it.
    """
    if os.geteuid() != 0:
        os.chmod(path, 0)
        return
    real_open = builtins.open
    target = os.path.abspath(path)

    def refusing_open(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if isinstance(file, str | os.PathLike) and os.path.abspath(file) == target:
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(module, "open", refusing_open, raising=False)
