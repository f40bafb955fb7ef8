"""Background checks that decode every image once: corrupt, unreadable, too large, duplicates.

Listing (scan.py) never opens a file; these checks do, so they run as a generator of
`CheckProgress` events that a GUI worker or the CLI drives, and that stops between files when the
`stop` event is set. Files are read and decoded in a small thread pool: reading is I/O and PIL
releases the GIL while decoding, so even two cores overlap usefully.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from workbench.config import DataConfig
from workbench.data.images import ImageError, read_bytes, verify_image
from workbench.data.index import DatasetIndex, Problem
from workbench.data.scan import MAX_LISTED_PROBLEMS

CHECK_KINDS = frozenset({"corrupt", "unreadable", "too_large", "duplicate", "train_val_overlap",
                         "split_overlap"})
CHUNK = 32  # files per progress event: frequent enough for a progress bar, cheap to emit


@dataclass(frozen=True)
class CheckProgress:
    """`done` of `total` images checked; `problems` are the ones new since the last event.

    Each kind's list is capped (MAX_LISTED_PROBLEMS): `unlisted` counts, per kind, the problems
    found so far beyond it (a running total, not new since the last event).
    """

    done: int
    total: int
    problems: list[Problem] = field(default_factory=list)
    unlisted: dict[str, int] = field(default_factory=dict)


def _check_file(path: str, stop: threading.Event | None,
                halt: threading.Event | None = None) -> tuple[bytes | None, Problem | None]:
    """Read, hash and decode one file: (content digest or None, problem or None)."""
    if (stop is not None and stop.is_set()) or (halt is not None and halt.is_set()):
        return None, None
    try:
        data = read_bytes(path)
        verify_image(data, os.path.basename(path))
    except ImageError as exc:
        return None, Problem(exc.kind, path, exc.reason)
    return hashlib.blake2b(data, digest_size=16).digest(), None


class _Duplicates:
    """Finds exact copies as results arrive: the same split is a duplicate, another a leak."""

    def __init__(self, index: DatasetIndex) -> None:
        self.index = index
        self.groups: dict[bytes, list[int]] = {}

    def add(self, position: int, digest: bytes) -> Problem | None:
        """Record one file's digest; a problem when an earlier file had the same content."""
        earlier = self.groups.setdefault(digest, [])
        earlier.append(position)
        if len(earlier) == 1:
            return None
        splits, paths = self.index.splits, self.index.paths
        other = next((e for e in earlier[:-1] if splits[e] != splits[position]), None)
        if other is not None:
            detail = f"same image in {splits[other]} ({paths[other]}) and {splits[position]}"
            # training data leaking into evaluation, or two evaluation splits sharing an image
            leak = "train" in (splits[other], splits[position])
            return Problem("train_val_overlap" if leak else "split_overlap", paths[position],
                           detail)
        return Problem("duplicate", paths[position], f"same content as {paths[earlier[0]]}")


class _Cap:
    """At most MAX_LISTED_PROBLEMS problems of each kind are listed; the rest are counted.

    50,000 copies of one image would otherwise be 50,000 problems (8 MB of JSON, and memory
    growing with the dataset).
    """

    def __init__(self) -> None:
        self.listed: dict[str, int] = {}
        self.unlisted: dict[str, int] = {}

    def admit(self, kind: str) -> bool:
        """Whether a problem of `kind` goes on the list (else it is counted in `unlisted`)."""
        listed = self.listed.get(kind, 0)
        if listed < MAX_LISTED_PROBLEMS:
            self.listed[kind] = listed + 1
            return True
        self.unlisted[kind] = self.unlisted.get(kind, 0) + 1
        return False


def default_workers() -> int:
    """Threads for reading and decoding: a few per core, bounded."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def iter_checks(
    index: DatasetIndex, stop: threading.Event | None = None, workers: int | None = None
) -> Iterator[CheckProgress]:
    """Check every image of `index`, yielding progress with the problems found so far.

    Ends early (without raising) when `stop` is set; closing the generator also stops it.
    """
    total = len(index)
    yield CheckProgress(0, total)
    duplicates = _Duplicates(index)
    cap = _Cap()
    # set when the caller stops, closes the generator or is interrupted (Ctrl-C): workers
    # skip what is left, and nobody waits for a file read still under way
    halt = threading.Event()
    pool = ThreadPoolExecutor(max_workers=workers or default_workers(),
                              thread_name_prefix="workbench-check")
    interrupted = False
    try:
        for start in range(0, total, CHUNK):
            if stop is not None and stop.is_set():
                return
            positions = range(start, min(total, start + CHUNK))
            results = list(pool.map(lambda i: _check_file(index.paths[i], stop, halt),
                                    positions))
            problems = []
            for position, (digest, problem) in zip(positions, results, strict=True):
                found = problem or (duplicates.add(position, digest) if digest else None)
                if found is not None and cap.admit(found.kind):
                    problems.append(found)
            if stop is not None and stop.is_set():
                return  # this chunk was cut short: its results are incomplete
            yield CheckProgress(positions.stop, total, problems, dict(cap.unlisted))
    except (KeyboardInterrupt, SystemExit):
        interrupted = True  # Ctrl-C or SIGTERM: leave at once, a slow read is not waited for
        raise
    finally:
        halt.set()
        pool.shutdown(wait=not interrupted, cancel_futures=True)


def run_checks(
    index: DatasetIndex, stop: threading.Event | None = None,
    on_progress: Callable[[CheckProgress], None] | None = None,
) -> list[Problem]:
    """Run every check to the end and append the problems to `index.problems`.

    Problems from an earlier run of the checks are replaced, not repeated. `on_progress` sees
    each progress event (e.g. to drive a progress bar).
    """
    found: list[Problem] = []
    unlisted: dict[str, int] = {}
    for event in iter_checks(index, stop):
        if on_progress is not None:
            on_progress(event)
        found.extend(event.problems)
        unlisted = event.unlisted
    index.problems[:] = [p for p in index.problems if p.kind not in CHECK_KINDS] + found
    merge_unlisted(index, unlisted)
    return found


def merge_unlisted(index: DatasetIndex, unlisted: dict[str, int]) -> None:
    """Put the checks' unlisted counts into `index.unlisted_problems` (replacing an earlier
    run's); the listing's own counts are kept."""
    kept = {k: n for k, n in index.unlisted_problems.items() if k not in CHECK_KINDS}
    index.unlisted_problems.clear()
    index.unlisted_problems.update({**kept, **unlisted})


@dataclass(frozen=True)
class Listed:
    """The listing is done: the histogram can be drawn while the checks run."""

    index: DatasetIndex
    source: str


def iter_open_and_check(source: str, data: DataConfig,
                        stop: threading.Event | None = None) -> Iterator[Listed | CheckProgress]:
    """Open `source` (a folder, a CSV or "demo") with the `data` settings, yield `Listed`, then
    the checks' progress: what the Dataset tab runs in its worker."""
    from workbench.data.scan import open_configured

    index = open_configured(data, source)
    yield Listed(index, source)
    yield from iter_checks(index, stop=stop)
