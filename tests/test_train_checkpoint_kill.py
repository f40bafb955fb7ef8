"""A process killed while writing a checkpoint leaves the previous one loadable (a real SIGKILL)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.train.checkpoints import load_checkpoint, save_checkpoint

WRITER = r"""
import sys, torch
from workbench.train.checkpoints import save_checkpoint
path = sys.argv[1]
save_checkpoint({"model": {"w": torch.zeros(4)}, "epoch": 1}, path)
print("saved", flush=True)
big = {"model": {"w": torch.randn(16_000_000)}, "epoch": 2}  # 64 MB: slow enough to interrupt
while True:
    save_checkpoint(big, path)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_during_checkpoint_write_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "saved"
        deadline = time.monotonic() + 30
        while not list(path.parent.glob(".*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.001)  # wait until a big write is under way, then kill it
        proc.send_signal(signal.SIGKILL)
        temps = list(path.parent.glob(".*.tmp"))
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    state = load_checkpoint(path)
    assert state["epoch"] in (1, 2)
    assert state["model"]["w"].numel() in (4, 16_000_000)
    assert temps, "the kill should land while a temporary file was being written"
    save_checkpoint(state, path)  # the next save clears the killed writer's temporary file
    assert not list(path.parent.glob(".*.tmp"))
