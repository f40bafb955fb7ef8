"""Devices, threads and loader workers: where work runs, shared by training and the advisor.

torch is imported inside the functions, so the run plan (which names the device) stays cheap to
import for the CLI's parser and the GUI's first paint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from workbench.config import Device, gpu_number
from workbench.errors import UserError


def device_available(name: str) -> bool:
    """Whether `train.device = name` can be used on this machine ("auto" and "cpu" always can)."""
    import torch

    number = gpu_number(name)
    if number is not None:
        return number < gpu_count()
    if name == Device.CUDA:
        return torch.cuda.is_available()
    if name == Device.MPS:
        return torch.backends.mps.is_available()
    return True


def resolve_device(name: str) -> str:
    """The device a run will use: "auto" picks CUDA, then Apple's MPS, then the CPU; an
    unavailable explicit choice is a UserError."""
    if name == Device.AUTO:
        return next(d for d in (Device.CUDA, Device.MPS, Device.CPU) if device_available(d)).value
    if not device_available(name):
        if gpu_number(name) is not None and gpu_count():
            raise UserError(f"train.device = {name!r} but this machine has {gpu_count()} GPU(s): "
                            f"cuda:0 to cuda:{gpu_count() - 1}")
        kind = "CUDA" if gpu_number(name) is not None else name.upper()
        raise UserError(f"train.device = {name!r} but no {kind} device is available here")
    return str(name)


def gpu_count() -> int:
    """CUDA GPUs this process can see (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def gpu_names() -> list[str]:
    """The name of each visible CUDA GPU, in device order (what the GUI's device menu lists)."""
    import torch

    return [torch.cuda.get_device_name(i) for i in range(gpu_count())]


def choose_device(name: str) -> Any:
    """`resolve_device` as a `torch.device`."""
    import torch

    return torch.device(resolve_device(name))


@contextmanager
def cpu_threads(device: Any) -> Iterator[None]:
    """Leave one core free while work runs on the CPU, then restore the thread count (the
    GUI's process keeps its own setting once a run or a measurement ends)."""
    import torch

    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def configure_threads(device: Any) -> None:
    """On the CPU, use every core but one, so the GUI (or the shell) stays responsive."""
    import torch

    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))


def choose_num_workers(requested: int) -> int:
    """Loader worker processes; -1 leaves the main process one core and the GUI another."""
    if requested >= 0:
        return requested
    cores = os.cpu_count() or 1
    # on a small machine, decoding in the main process beats processes fighting for two cores
    return 0 if cores <= 2 else min(8, cores // 2)


@dataclass(frozen=True)
class World:
    """This process's place in a torchrun job (one process alone: the defaults)."""

    rank: int = 0  # 0..size-1 over every machine
    local_rank: int = 0  # 0..processes on this machine - 1: the GPU this process takes
    size: int = 1  # processes in the whole job

    @property
    def active(self) -> bool:
        """True when several processes train together."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """True for rank 0: the one process that writes the run directory."""
        return self.rank == 0


def current_world() -> World:
    """The job torchrun started this process in, read from its environment (RANK, LOCAL_RANK,
    WORLD_SIZE); a process started otherwise is a world of one."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise UserError("RANK, LOCAL_RANK and WORLD_SIZE must be whole numbers (as torchrun "
                        "sets them)") from None
    if size < 1 or not 0 <= rank < size:
        raise UserError(f"RANK={rank} and WORLD_SIZE={size} do not fit together")
    return World(rank, local, size)
