"""Where a folder walk's symbolic links lead: loops, folders reached twice, links leaving the root.

Folders are remembered by their identity, `(st_dev, st_ino)`, so a link back to an ancestor (a
loop) or to a folder listed elsewhere is skipped instead of walked again. Real paths are built
as the walk goes down (a folder's real path is its parent's plus its name) and resolved with
`os.path.realpath` only at a link: resolving every folder costs one `lstat` per path component,
which made a 2,000-deep tree take minutes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

ProblemSink = Callable[[str, str, str], None]  # kind, path, detail


def is_within(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or below it (both as given: no resolving)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def is_dir(entry: os.DirEntry[str]) -> bool:
    """`entry.is_dir()`, False for a dangling or looping link (its stat fails)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def is_file(entry: os.DirEntry[str]) -> bool:
    """`entry.is_file()` (a regular file, through links), False when its stat fails."""
    try:
        return entry.is_file()
    except OSError:
        return False


def _identity(path: str | os.DirEntry[str]) -> tuple[int, int]:
    """The folder's `(st_dev, st_ino)`, through links (a DirEntry caches its stat)."""
    st = path.stat() if isinstance(path, os.DirEntry) else os.stat(path)
    return st.st_dev, st.st_ino


class Links:
    """The folders walked so far and the linked files met, for one listing."""

    def __init__(self, root: Path | None, follow_outside: bool) -> None:
        self.root = os.path.realpath(root) if root is not None else ""
        self.follow_outside = follow_outside
        self.folders: dict[tuple[int, int], str] = {}  # identity -> path first listed under
        self.real: dict[str, str] = {}  # folder path -> its real path
        self.files: dict[str, str] = {}  # linked file path -> its real path

    def claim_root(self, root: str) -> None:
        """Remember the root folder (listed under its own name, real path known)."""
        self.folders.setdefault(_identity(root), root)
        self.real[root] = self.root or os.path.realpath(root)

    def claim(self, entry: os.DirEntry[str], parent: str) -> None:
        """Remember a folder before walking anything (a class or split folder), so that a link
        into it found earlier in the walk is a duplicate, not the original."""
        self.folders.setdefault(_identity(entry), entry.path)
        self._note_real(entry, parent)

    def enter(self, entry: os.DirEntry[str], parent: str, problem: ProblemSink) -> bool:
        """Whether to walk the folder `entry` (False, with a problem, when listed already)."""
        first = self.folders.setdefault(_identity(entry), entry.path)
        if first != entry.path:
            kind = "symlink_loop" if is_within(entry.path, first) else "duplicate_link"
            problem(kind, entry.path, f"a link to {first}, listed already; skipped")
            return False
        self._note_real(entry, parent)
        return True

    def _note_real(self, entry: os.DirEntry[str], parent: str) -> None:
        if entry.path in self.real:
            return
        if entry.is_symlink() or parent not in self.real:
            self.real[entry.path] = os.path.realpath(entry.path)
        else:
            self.real[entry.path] = os.path.join(self.real[parent], entry.name)

    def allowed(self, entry: os.DirEntry[str], problem: ProblemSink) -> bool:
        """False (with a problem) for a link leaving the root, unless following is allowed."""
        if not self.root or not entry.is_symlink():
            return True
        real = os.path.realpath(entry.path)
        if not is_within(real, self.root):
            followed = "followed" if self.follow_outside else "skipped"
            problem("outside_root", entry.path,
                    f"a link to {real}, outside the dataset; {followed}")
            if not self.follow_outside:
                return False
        if is_file(entry):
            self.files[entry.path] = real
        return True

    def real_file(self, path: str) -> str:
        """The real path of a listed image (its folder's real path, known from the walk)."""
        if path in self.files:
            return self.files[path]
        folder, name = os.path.split(path)
        real = self.real.get(folder)
        if real is None:
            real = self.real[folder] = os.path.realpath(folder)
        return os.path.join(real, name)

    def duplicates(self, paths: list[str]) -> dict[int, str]:
        """Positions in `paths` of files reached before (position -> the first path), when a
        linked file was met; none otherwise (without links no file is reached twice)."""
        if not self.files:
            return {}
        seen: dict[str, str] = {}
        again = {}
        for i, path in enumerate(paths):
            first = seen.setdefault(self.real_file(path), path)
            if first != path:
                again[i] = first
        return again
