"""Writing export files safely: a temporary file in the destination folder, renamed into place.

A temporary file is named `.NAME.PID-TOKEN.tmp` (hidden, unique per process and per write), and
removed in a `finally` whatever happens in the write. A process killed mid-write (SIGKILL, power
loss) cannot clean up, so every later write into the same folder first removes the temporary
files of our naming whose process is gone (or that are more than a day old).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.errors import UserError

STALE_AFTER_S = 24 * 3600  # a temporary file this old is stale even if its PID was reused
_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")  # temporary_name's


def temporary_name(target: Path) -> Path:
    """A fresh temporary path beside `target`, in our naming."""
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def atomic_write(target: Path, write: Callable[[Path], Any]) -> None:
    """Call `write(tmp)` on a temporary file beside `target`, then rename it into place; the
    temporary file never outlives the call (OSError becomes a UserError naming `target`)."""
    remove_stale_temporaries(target.parent)
    tmp = temporary_name(target)
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files of our naming in `folder` left by processes that are gone;
    return them. Another live process's files (an export in progress) are left alone."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    now = time.time()
    for path in entries:
        match = _TEMPORARY.match(path.name)
        if match is None or not _is_stale(path, int(match.group("pid")), now):
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:  # gone meanwhile, or not ours to remove
            pass
    return removed


def _is_stale(path: Path, pid: int, now: float) -> bool:
    if pid != os.getpid() and not _process_alive(pid):
        return True
    try:
        return now - path.stat().st_mtime > STALE_AFTER_S
    except OSError:
        return False


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate it there: trust the file's age instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but belongs to another user
        return True
    return True
