"""Devices, threads and loader workers: where work runs, shared by training and the advisor.

torch is imported inside the functions, so the run plan (which names the device) stays cheap to
import for the CLI's parser and the GUI's first paint.
"""

from __future__ import annotations

import os
from typing import Any

from workbench.config import Device
from workbench.errors import UserError


def device_available(name: str) -> bool:
    """Whether `train.device = name` can be used on this machine ("auto" and "cpu" always can)."""
    import torch

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
        raise UserError(f"train.device = {name!r} but no {name.upper()} device is available here")
    return str(name)


def choose_device(name: str) -> Any:
    """`resolve_device` as a `torch.device`."""
    import torch

    return torch.device(resolve_device(name))


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
