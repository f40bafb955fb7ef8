"""Command-line entry point: `workbench [COMMAND] ...`.

With no command the GUI opens. Each module of this package (the CLI layer, on top of the core)
registers the commands of one part (a `register` function), so this file stays a dispatcher.
Exit codes (docs/cli.md): 0 success, 2 bad input (one readable `workbench: ...` line on
stderr, argument errors included), 1 unexpected failure, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn

from workbench.cli import output
from workbench.errors import UserError

# Modules that contribute sub-commands, in the order `--help` lists them.
COMMAND_MODULES = (
    "workbench.cli.data",
    "workbench.cli.models",
    "workbench.cli.advice",
    "workbench.cli.train",
    "workbench.cli.lr_find",
    "workbench.cli.deploy",
    "workbench.cli.results",
)


def _has_display() -> bool:
    """False on a Linux server with no X or Wayland display, where Qt would abort the process."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _run_gui(args: argparse.Namespace) -> int:
    """Open the main window, optionally on a dataset path."""
    if not _has_display():
        raise UserError("no display to open the window on; the CLI works headless "
                        "(workbench --help)")
    try:
        from workbench_ui.app import run_app
    except ImportError as exc:  # a headless install without PySide6
        raise UserError(f"the GUI is not available here ({exc}); use the CLI commands") from exc
    return run_app(args.path)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one `workbench: ...` line on stderr and exit 2 (not a
    usage dump: scripts and logs read the last line)."""

    def error(self, message: str) -> NoReturn:
        """Print the one line, with the command's `--help` hint, and exit 2."""
        command = self.prog.removeprefix("workbench").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"workbench: {where}{message} (see: {self.prog} --help)\n")


def _version() -> str:
    try:
        return metadata.version("transfer-workbench")
    except metadata.PackageNotFoundError:  # a checkout used without installing it
        from workbench import __version__

        return __version__


def _add_verbosity(parser: argparse.ArgumentParser, default: Any) -> None:
    # on the main parser and on each command, so `workbench -v train` and `workbench train -v`
    # both work; a command's copy defaults to SUPPRESS, or it would reset the main one's count
    parser.add_argument("-v", "--verbose", action="count", default=default,
                        help="say more: -v the library's log, -vv debug")
    parser.add_argument("-q", "--quiet", action="count", default=default,
                        help="only errors and the result (no progress, no plan)")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    parser = OneLineParser(
        prog="workbench", description="Transfer Workbench: explore, configure and train. "
        "Exit codes: 0 success, 2 bad input (one line on stderr), 1 unexpected failure."
    )
    parser.add_argument("--version", action="version", version=f"workbench {_version()}")
    _add_verbosity(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    gui = sub.add_parser("gui", help="open the workbench window (the default)")
    gui.add_argument("path", nargs="?", default=None, help="a dataset folder or CSV to open")
    gui.set_defaults(func=_run_gui)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside the module
                raise
            continue
        module.register(sub)
    for command in set(sub.choices.values()):
        _add_verbosity(command, argparse.SUPPRESS)
    return parser


def _tolerant_streams() -> None:
    """File names that are not valid UTF-8 (undecodable bytes kept as surrogates) print as
    escapes instead of ending the command with a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the command, and map errors to exit codes."""
    _tolerant_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui", *(argv or [])])
    problem = args.check(args) if hasattr(args, "check") else None
    if problem:  # a combination argparse cannot express: the same one line, exit 2
        parser.exit(2, f"workbench: {args.command}: {problem} (see: workbench "
                       f"{args.command} --help)\n")
    output.configure(args.verbose - args.quiet)
    previous = _terminate_like_ctrl_c() if args.command != "gui" else None
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    except Exception:  # an unexpected failure: show the traceback, exit 1
        traceback.print_exc()
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate_like_ctrl_c() -> Any:
    """Make SIGTERM (`kill`, a job scheduler's stop) end a command the way Ctrl-C does: a run
    records "stopped" and keeps its last checkpoint instead of vanishing without a word.
    Returns the previous handler (None when signals cannot be set from here)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)
