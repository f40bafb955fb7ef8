"""Starting a run on several GPUs: `workbench train --gpus N` and the GUI both hand the command to
PyTorch's own launcher, torchrun, which starts it again once per GPU (no launcher of our own).

`TorchrunJob` is what the GUI runs: torchrun as a subprocess, followed through the run's
`metrics.jsonl`, with the engine's interface (`run()` yields events; pause, resume, stop).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from workbench.config import save_config
from workbench.errors import UserError
from workbench.train.control import CONTROL_ENV, PAUSE, RUN, STOP, write_control
from workbench.train.rundir import claim_run_folder
from workbench.train.runpaths import RunPaths

POLL_S = 0.2  # how often metrics.jsonl is read
END_WAIT_S = 30.0  # a stopped run's last checkpoint and predictions get this long


def torchrun_command(argv: Sequence[str], processes: int, *,
                     python: str | None = None) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc-per-node N -m workbench ARGV...`:
    one machine, a free port chosen by torchrun's rendezvous."""
    return [python or sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={processes}", "-m", "workbench", *argv]


def check_gpus(processes: int) -> None:
    """Refuse, before anything starts, more GPUs than this machine has, or GPUs without NCCL."""
    import torch.distributed as dist

    from workbench.devices import gpu_count

    found = gpu_count()
    if found == 0:
        raise UserError(f"{processes} GPUs asked, but no CUDA GPU is available here")
    if processes > found:
        raise UserError(f"{processes} GPUs asked, but this machine has {found}")
    if not dist.is_nccl_available():
        raise UserError("training on several GPUs needs NCCL, and this PyTorch build has none")


def run_torchrun(argv: Sequence[str], processes: int) -> int:
    """Run `workbench ARGV` on `processes` GPUs through torchrun; its exit code."""
    check_gpus(processes)
    print(f"workbench: starting {processes} processes through torchrun", file=sys.stderr)
    return subprocess.call(torchrun_command(argv, processes))


class TorchrunJob:
    """A run on several processes, started as a torchrun subprocess and followed through its
    `metrics.jsonl`: `run()` yields the same typed events as `engine.Trainer.run()`, and
    `pause()`, `resume()` and `stop()` reach rank 0 through a control file (a stop is graceful:
    the run records Stopped and keeps its last checkpoint).

    `processes` defaults to `train.gpus`; on the CPU (tests, a laptop) torchrun's processes talk
    over gloo. `resume_dir` continues that run instead of starting a new one.
    """

    def __init__(self, config: Any, index: Any = None, resume_dir: str | Path | None = None,
                 processes: int | None = None, python: str | None = None) -> None:
        self.config = config
        self.processes = processes or config.train.gpus
        self.resume_dir = Path(resume_dir) if resume_dir else None
        self.run_dir: Path | None = None
        self._python = python
        self._work = Path(tempfile.mkdtemp(prefix="workbench-torchrun-"))
        self._control = self._work / "control"
        write_control(self._control, RUN)  # a stop asked before the start then still counts
        self._process: subprocess.Popen | None = None

    def pause(self) -> None:
        """Rank 0 pauses between batches (and the others with it)."""
        self._tell(PAUSE)

    def resume(self) -> None:
        """Continue a paused run."""
        self._tell(RUN)

    def stop(self) -> None:
        """End the run after the current batch; the last finished epoch's checkpoint is kept."""
        self._tell(STOP)

    def _tell(self, word: str) -> None:
        with contextlib.suppress(OSError):  # the job has ended and its folder is gone
            write_control(self._control, word)

    def command(self) -> list[str]:
        """The torchrun command line this job runs."""
        config_file = save_config(self.config, RunPaths(self._work).config)
        if self.resume_dir is not None:
            argv = ["train", "--resume", str(self.resume_dir),
                    "--epochs", str(self.config.train.epochs)]
        else:
            argv = ["train", "--config", str(config_file), "--run-dir", str(self.run_dir)]
        return torchrun_command(argv, self.processes, python=self._python)

    def run(self) -> Iterator[Any]:
        """Start torchrun and yield the run's events as rank 0 records them."""
        from workbench.train.events import Failed

        try:
            self.run_dir = self.resume_dir or claim_run_folder(self.config)
            log = open(self._work / "torchrun.log", "wb")  # noqa: SIM115 (closed below)
            with log:
                self._process = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, CONTROL_ENV: str(self._control)},
                    start_new_session=True)  # its own group: ended as one on the way out
                ended = yield from self._follow()
            if not ended:
                yield self._failure()
        except UserError as exc:
            yield Failed(str(exc), user_error=True)
        finally:
            self._end()

    def _follow(self) -> Iterator[Any]:
        """Relay the events recorded after the start; True once the run recorded its end."""
        from workbench.train.events import Failed, Finished, RunStarted, Stopped, event_from_dict

        assert self.run_dir is not None and self._process is not None
        tail, started, begun = _Tail(RunPaths(self.run_dir).metrics), time.time(), False
        while True:
            alive = self._process.poll() is None
            for record in tail.read():
                event = event_from_dict(record)
                # a resumed run's file holds the earlier events: relay from this start on
                begun = begun or (isinstance(event, RunStarted) and event.time >= started - 1)
                if event is None or not begun:
                    continue
                yield event
                if isinstance(event, Finished | Stopped | Failed):
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._process.wait(timeout=END_WAIT_S)  # then `_end` ends it
                    return True
            if not alive:
                return False
            time.sleep(POLL_S)

    def _failure(self) -> Any:
        """The `Failed` event that says why torchrun ended without a recorded end: the
        command's own line when it wrote one (bad input, as the CLI says it), else torchrun's."""
        from workbench.train.events import Failed

        text = (self._work / "torchrun.log").read_text(encoding="utf-8", errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        ours = [line.removeprefix("workbench:").strip() for line in lines
                if line.startswith("workbench:")]
        if ours:
            return Failed(ours[-1], user_error=not ours[-1].startswith("training failed"))
        code = self._process.returncode if self._process else None
        last = lines[-1] if lines else "no output"
        return Failed(f"torchrun ended (exit code {code}) without finishing the run: {last}")

    def _end(self) -> None:
        """Make sure no process is left: ask for a stop, then terminate, then kill the group."""
        process = self._process
        if process is not None and process.poll() is None:
            self.stop()
            for sig, wait in ((None, END_WAIT_S), (signal.SIGTERM, END_WAIT_S),
                              (signal.SIGKILL, None)):
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, sig)
                try:
                    process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        shutil.rmtree(self._work, ignore_errors=True)
        if self.resume_dir is None and self.run_dir is not None:
            with contextlib.suppress(OSError):  # refused before it started: no empty folder left
                self.run_dir.rmdir()


class _Tail:
    """The complete lines appended to a file since the last read (restarting when the file is
    rewritten shorter, as a resume truncates metrics.jsonl)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = path, 0, b""

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size < self.offset:
                    self.offset, self.partial = 0, b""
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        records = []
        for line in lines:
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
        return records
