"""What file and folder names mean to a dataset: image extensions, split folder names, and the
folders and files that operating systems, network storage and tools leave beside the data.

Shared by the folder scanner (`scan.py`), the CSV manifest reader (`manifest.py`) and `predict`,
which must agree on all three; kept apart so none imports the others.
"""

from __future__ import annotations

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
_IMAGE_SUFFIXES = tuple(IMAGE_EXTENSIONS)  # str.endswith takes a tuple: much faster than splitext

# folder (or CSV split column) name -> split
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}

# Never a class or an image, compared case-insensitively (Windows and most NAS shares ignore
# case). Names starting with "." are junk too: .git, .DS_Store, .AppleDouble, .Trashes,
# QNAP's .@__thumb, and the AppleDouble forks "._photo.jpg" that macOS writes beside each file.
JUNK_NAMES = frozenset({
    # tools
    "__MACOSX", "__pycache__", "CVS", "node_modules",
    # Windows
    "$RECYCLE.BIN", "RECYCLER", "System Volume Information", "Thumbs.db", "ehthumbs.db",
    "desktop.ini",
    # Linux
    "lost+found",
    # Synology DSM: per-folder thumbnails and metadata, recycle bin, snapshots
    "@eaDir", "#recycle", "#snapshot", "@tmp", "@sharebin",
    # QNAP QTS: thumbnails, recycle bin, snapshots
    "@__thumb", "@Recycle", "@Recently-Snapshot",
})
_JUNK_FOLDED = frozenset(name.casefold() for name in JUNK_NAMES)


def is_image_name(name: str) -> bool:
    """True when a file name has one of the image extensions the workbench reads."""
    return name.lower().endswith(_IMAGE_SUFFIXES)


def is_junk_name(name: str) -> bool:
    """True for hidden names and the folders and files that systems and tools leave beside data
    (never a class, never an image)."""
    return name.startswith(".") or name.casefold() in _JUNK_FOLDED
