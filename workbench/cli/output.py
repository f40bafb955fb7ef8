"""What the CLI says besides its results: `-q` / `-v` levels, logging, and progress bars that
only a terminal gets (a log file or a pipe gets one plain line per epoch instead of `\\r`
floods).

Levels: -1 (`-q`: errors and the result only), 0 (the default: progress, the plan, warnings),
1 (`-v`: the library's INFO log), 2 (`-vv`: DEBUG).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

QUIET, NORMAL, VERBOSE = -1, 0, 1
LEVELS = {QUIET: logging.ERROR, NORMAL: logging.WARNING, VERBOSE: logging.INFO}
LOGGER = "workbench"  # the core's modules log under workbench.*

_state = {"verbosity": NORMAL}
_handler: logging.Handler | None = None


class _Lines(logging.Formatter):
    """Warnings and errors as `workbench: warning: ...` (like the CLI's own error lines); INFO and
    DEBUG with the module that logged them."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            text += "\n" + self.formatException(record.exc_info)
        if record.levelno >= logging.WARNING:
            return f"workbench: {record.levelname.lower()}: {text}"
        return f"{record.name}: {text}"


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever `sys.stderr` is at the time of the message (a test's
    capture, a redirected stream), not the one it was made with."""

    @property
    def stream(self) -> Any:
        """The current `sys.stderr`."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # StreamHandler.__init__ assigns one; the property always answers sys.stderr


def configure(verbosity: int) -> None:
    """Set the workbench loggers' level and give them a stderr handler (like
    `logging.basicConfig`, but leaving the root logger and other libraries' handlers alone)."""
    global _handler
    _state["verbosity"] = verbosity
    logger = logging.getLogger(LOGGER)
    if _handler is None:
        _handler = _Stderr()
        _handler.setFormatter(_Lines())
        logger.addHandler(_handler)
    logger.setLevel(LEVELS.get(verbosity, logging.DEBUG))


def verbosity() -> int:
    """The level the current command runs at."""
    return _state["verbosity"]


def say(message: str) -> None:
    """A status line on stderr (the plan, the run folder), unless `-q`."""
    if verbosity() > QUIET:
        print(message, file=sys.stderr)


def progress_on() -> bool:
    """Progress bars only on an interactive terminal and not under `-q`."""
    return verbosity() > QUIET and sys.stderr.isatty()


def bar(**kwargs: Any) -> Any:
    """A tqdm bar on stderr, shown only where `progress_on` (otherwise a silent stand-in)."""
    from tqdm import tqdm

    return tqdm(file=sys.stderr, dynamic_ncols=True, disable=not progress_on(), **kwargs)


class Progress:
    """One tqdm bar at a time on an interactive terminal; nothing elsewhere (a log or a pipe gets
    the epoch lines only)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def show(self, desc: str, total: int, position: int, **postfix: str) -> None:
        """Move the bar named `desc` to `position` of `total` (a new bar when these change)."""
        if not progress_on():
            return
        if self.bar is None or self.bar.desc != desc or self.bar.total != total:
            self.close()
            self.bar = bar(total=total, desc=desc, leave=False)
        self.bar.update(position - self.bar.n)
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def write(self, line: str, stderr: bool = False) -> None:
        """A line above the bar: the epoch summary (stdout; stderr under --json), unless -q."""
        if verbosity() <= QUIET:
            return
        stream = sys.stderr if stderr else sys.stdout
        if self.bar is not None:
            self.bar.write(line, file=stream)
        else:
            print(line, file=stream, flush=True)

    def close(self) -> None:
        """Remove the bar, if any."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
