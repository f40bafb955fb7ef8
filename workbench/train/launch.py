"""Starting a run on several GPUs: `workbench train --gpus N` and the GUI both hand the command to
PyTorch's own launcher, torchrun, which starts it again once per GPU (no launcher of our own)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from workbench.errors import UserError


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
