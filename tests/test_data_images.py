"""Loading every kind of image a real dataset holds as 8-bit RGB, or failing with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests import test_data_helpers as make
from workbench.data import images
from workbench.data.images import ImageError, load_image, load_thumbnail
from workbench.errors import UserError


def test_png_with_alpha_is_composited_on_white(tmp_path: Path) -> None:
    img = load_image(make.alpha_png(tmp_path / "a.png"))
    assert img.mode == "RGB"
    assert img.getpixel((4, 4)) == (0, 0, 255)  # opaque blue stays blue
    assert img.getpixel((28, 4)) == (255, 255, 255)  # transparent red becomes white


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    assert load_image(make.png16(tmp_path / "w.png", 65535)).getpixel((0, 0)) == (255, 255, 255)
    mid = load_image(make.png16(tmp_path / "m.png", 32896)).getpixel((0, 0))
    assert mid == (128, 128, 128)


def test_cmyk_jpeg_grayscale_and_palette_become_rgb(tmp_path: Path) -> None:
    white = load_image(make.cmyk_jpeg(tmp_path / "c.jpg"))
    assert white.mode == "RGB" and min(white.getpixel((5, 5))) > 240
    gray = make.save(Image.new("L", (32, 32), 77), tmp_path / "g.png")
    assert load_image(gray).getpixel((0, 0)) == (77, 77, 77)
    palette = Image.new("P", (32, 32), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    assert load_image(make.save(palette, tmp_path / "p.gif")).getpixel((0, 0)) == (10, 200, 30)


@pytest.mark.parametrize(
    ("builder", "kind"),
    [
        (make.truncated_jpeg, "corrupt"),
        (make.text_named_jpg, "corrupt"),
        (lambda p: make.write_bytes(p, b""), "corrupt"),
        (make.huge_png, "too_large"),  # PIL's own bomb error, 400 megapixels
        (lambda p: make.huge_png(p, 9000, 9000), "too_large"),  # our lower limit
    ],
    ids=["truncated", "text", "zero-byte", "20000x20000", "9000x9000"],
)
def test_bad_files_raise_one_line_image_error(tmp_path: Path, builder, kind: str) -> None:
    path = builder(tmp_path / "bad.jpg")
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert info.value.kind == kind
    assert isinstance(info.value, UserError)
    assert "\n" not in str(info.value) and "bad.jpg" in str(info.value)


def test_unreadable_and_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make.rgb_png(tmp_path / "locked.png")
    make.make_unreadable(path, images, monkeypatch)
    with pytest.raises(ImageError, match="permission denied") as info:
        load_image(path)
    assert info.value.kind == "unreadable"
    with pytest.raises(ImageError) as missing:
        load_image(tmp_path / "nope.png")
    assert missing.value.kind == "unreadable"


def test_thumbnail_fits_and_keeps_aspect(tmp_path: Path) -> None:
    wide = make.save(Image.new("RGB", (200, 100), (1, 2, 3)), tmp_path / "wide.jpg")
    thumb = load_thumbnail(wide, size=48)
    assert thumb.mode == "RGB" and thumb.size == (48, 24)
    unicode_name = make.rgb_png(tmp_path / "café au lait" / "猫 1.png")
    assert load_thumbnail(unicode_name, size=16).size == (16, 16)


def test_exif_rotated_photo_is_upright(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    photo = make.save(Image.new("RGB", (40, 20), (9, 9, 9)), tmp_path / "phone.jpg", exif=exif)
    assert load_image(photo).size == (20, 40)


def test_pillow_bomb_warning_is_a_problem_not_a_printed_warning(tmp_path: Path) -> None:
    """100 megapixels: over Pillow's warning limit, under its error limit. A user running the
    checks (no pytest filter) must get one "too_large" error and nothing printed by Pillow."""
    path = make.huge_png(tmp_path / "big.png", 10000, 10000)
    code = (
        "import sys\n"
        "from workbench.data.images import ImageError, load_image\n"
        "try:\n"
        "    load_image(sys.argv[1])\n"
        "except ImageError as exc:\n"
        "    print(exc.kind, exc.reason)\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60, cwd=root, check=True)
    assert done.stderr == ""
    assert done.stdout.startswith("too_large 100,000,000 pixels is over the 64,000,000")
