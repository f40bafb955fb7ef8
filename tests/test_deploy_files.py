"""Export files are written through unique temporary files that never outlive the write: an
exception mid-write removes them, and a process killed mid-export (which cannot clean up) has its
temporary file removed by the next export into the same folder; a live export's is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_runs import DeployRuns, trained_runs
from workbench.cli import main
from workbench.deploy.files import atomic_write, remove_stale_temporaries, temporary_name
from workbench.errors import UserError

# An export whose check never ends: it says when the temporary file is written, then waits to
# be killed (as a user's kill -9, or a crash, would stop it).
STUCK_EXPORT = r'''
import sys, time, torch
from workbench.cli import main

def stuck(*args, **kwargs):
    print("written", flush=True)
    time.sleep(600)

torch.jit.load = stuck
sys.exit(main(["export", sys.argv[1], "--format", "torchscript", "--out", sys.argv[2]]))
'''


@pytest.fixture(scope="session")
def runs(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> DeployRuns:
    return trained_runs(demo_root, tmp_path_factory.mktemp("deploy"))


def test_an_exception_mid_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("the exporter failed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "model.onnx", half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_a_write_error_is_a_readable_error_and_leaves_nothing(tmp_path: Path) -> None:
    def disk_full(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(UserError, match="cannot write .*model.onnx: No space left on device"):
        atomic_write(tmp_path / "model.onnx", disk_full)
    assert list(tmp_path.iterdir()) == []


def test_temporary_names_are_unique_and_hidden_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    first, second = temporary_name(target), temporary_name(target)
    assert first != second and first.parent == tmp_path
    assert first.name.startswith(f".model.onnx.{os.getpid()}-") and first.suffix == ".tmp"


def test_a_live_process_keeps_its_temporary_file(tmp_path: Path) -> None:
    mine = temporary_name(tmp_path / "model.onnx")  # this process: an export in progress
    mine.write_bytes(b"being written")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            theirs = tmp_path / f".model.pth.{other.pid}-0123abcd.tmp"
            theirs.write_bytes(b"being written")
            assert remove_stale_temporaries(tmp_path) == []
        finally:
            other.kill()
    assert remove_stale_temporaries(tmp_path) == [theirs]  # its process is gone now
    assert mine.exists()


def test_a_killed_export_leaves_a_temporary_file_the_next_export_removes(
        capsys, runs: DeployRuns, tmp_path: Path) -> None:
    out = tmp_path / "export"
    with subprocess.Popen([sys.executable, "-c", STUCK_EXPORT, str(runs.linear), str(out)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          cwd=Path(__file__).resolve().parents[1]) as process:
        try:
            assert process.stdout.readline().strip() == "written"
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    left = [p.name for p in out.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".model.torchscript.pt.{process.pid}-")
    assert main(["export", str(runs.linear), "--format", "torchscript", "--out", str(out)]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD-model.torchscript.pt.md",
                                                     "model.torchscript.pt"]
