"""What file and folder names mean to a dataset: image extensions and split folder names.

Shared by the folder scanner (`scan.py`) and the CSV manifest reader (`manifest.py`), which
must agree on both; kept apart so neither imports the other.
"""

from __future__ import annotations

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
_IMAGE_SUFFIXES = tuple(IMAGE_EXTENSIONS)  # str.endswith takes a tuple: much faster than splitext

# folder (or CSV split column) name -> split
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}


def is_image_name(name: str) -> bool:
    """True when a file name has one of the image extensions the workbench reads."""
    return name.lower().endswith(_IMAGE_SUFFIXES)
