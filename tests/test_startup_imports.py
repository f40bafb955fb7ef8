"""The CLI answers `--help` and argument errors at once: its parser never imports torch.

Importing torchvision costs seconds and a gigabyte; only the commands that do the work may pay
it. Each check runs in a fresh interpreter, since this test process imports torch elsewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "sklearn", "tensorboard")


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)


def test_building_the_parser_imports_no_torch() -> None:
    code = (
        "import json, sys\n"
        "from workbench.cli import build_parser\n"
        "build_parser()\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    assert json.loads(_fresh_python(code).stdout) == []


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["backbones", "--help"]])
def test_help_exits_zero(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "workbench", *argv], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: workbench" in done.stdout


def test_an_argument_error_exits_2_without_importing_torch() -> None:
    code = (
        "import sys\n"
        "from workbench.cli import main\n"
        "try:\n"
        "    main(['train', '--epochs', '3'])\n"
        "except SystemExit as exc:\n"
        f"    print(exc.code, any(m in sys.modules for m in {HEAVY!r}))\n"
    )
    assert _fresh_python(code).stdout.split() == ["2", "False"]
