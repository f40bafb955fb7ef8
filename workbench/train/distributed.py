"""Training in several processes under torchrun: the process group, the samplers, the reductions.

torchrun starts one process per GPU (or several CPU processes) and tells each its place through
the environment (`devices.current_world`). Each process builds the same plan and model; PyTorch's
DistributedDataParallel averages the gradients (NCCL between GPUs, gloo between CPU processes).
Each process reads its own share of every epoch, the validation counts are summed over the
processes (so the metrics are those of one process on the same weights), and rank 0 alone writes
the run directory. Every wait on another process is bounded by `timeout_s()`: a process that died
or hangs ends the job with a readable line instead of an endless wait.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler

from workbench.data.index import DatasetIndex
from workbench.devices import World, current_world, gpu_count
from workbench.errors import UserError
from workbench.train.samplers import sample_weights

TIMEOUT_ENV = "WORKBENCH_DIST_TIMEOUT"  # seconds a process waits for the others
DEFAULT_TIMEOUT_S = 300.0
# Before training, the others wait for rank 0 to read the config, or to run the demo's advisor
# (minutes on a CPU): a separate group with a longer limit. torchrun still ends the job at once
# when a process dies.
SETUP_TIMEOUT_S = 3600.0
T = TypeVar("T")
_setup_group: Any = None


def timeout_s() -> float:
    """How long any process waits for the others before the job ends (WORKBENCH_DIST_TIMEOUT)."""
    try:
        return max(1.0, float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
    except ValueError:
        raise UserError(f"{TIMEOUT_ENV} must be a number of seconds") from None


def init_process_group(world: World | None = None) -> World:
    """Join torchrun's process group (once; a world of one joins nothing) and return the world.

    GPU processes talk over NCCL and keep gloo for CPU tensors; CPU processes use gloo alone.
    """
    world = world or current_world()
    if not world.active or dist.is_initialized():
        return world
    cuda = gpu_count() > 0
    if cuda:
        if not dist.is_nccl_available():
            raise UserError("several GPU processes need NCCL, and this PyTorch has none")
        torch.cuda.set_device(world.local_rank % gpu_count())
    backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
    global _setup_group
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s()))
        _setup_group = dist.new_group(backend="gloo", timeout=timedelta(
            seconds=max(SETUP_TIMEOUT_S, timeout_s())))
    except (RuntimeError, ValueError) as exc:
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        raise UserError(f"process {world.rank} could not join the other processes at {where}: "
                        f"{_first_line(exc)}") from None
    return world


def close_process_group() -> None:
    """Leave the process group (at the end of a command)."""
    global _setup_group
    _setup_group = None
    if dist.is_initialized():
        dist.destroy_process_group()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _collective(what: str, call: Callable[[], T]) -> T:
    """Run one exchange with the other processes, turning a timeout or a lost peer into one line."""
    try:
        return call()
    except (RuntimeError, dist.DistError) as exc:
        raise UserError(f"{what}: {lost_peer(exc) or _first_line(exc)}") from None


# what gloo and NCCL say when a peer died or stopped answering (inside DDP's own exchanges)
_LOST_PEER = ("connection reset", "connection closed", "broken pipe", "timed out", "timeout",
              "nccl", "gloo", "watchdog")


def lost_peer(exc: BaseException) -> str | None:
    """One readable line for a failed exchange between the processes (None for anything else)."""
    text = str(exc).lower()
    if not isinstance(exc, dist.DistError) and not any(word in text for word in _LOST_PEER):
        return None
    return (f"another process of the run ended or did not answer within {timeout_s():g} s "
            f"({_first_line(exc)[:160]}); the run stops, the last finished epoch's checkpoint "
            "is kept")


def from_main(make: Callable[[], T], what: str) -> T:
    """`make()` on rank 0 only, its result shared with every process (a UserError on rank 0
    ends every process with the same line). Outside a process group: just `make()`."""
    if not dist.is_initialized():
        return make()
    box: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            box[0] = ("ok", make())
        except UserError as exc:
            box[0] = ("error", str(exc))
            _collective(what, lambda: dist.broadcast_object_list(box, src=0, group=_setup_group))
            raise
    _collective(what, lambda: dist.broadcast_object_list(box, src=0, group=_setup_group))
    status, value = box[0]
    if status == "error":
        raise UserError(f"rank 0: {value}")
    return value


def check_same_dataset(index: DatasetIndex) -> None:
    """Refuse, before training, a dataset that differs between the processes (a path that holds
    other images on another machine): every process must read the same list."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    mine = (dataset_fingerprint(index), len(index.paths), str(index.root), socket.gethostname())
    everyone: list[Any] = [None] * dist.get_world_size()
    _collective("comparing the datasets",
                lambda: dist.all_gather_object(everyone, mine, group=_setup_group))
    for rank, theirs in enumerate(everyone):
        if theirs[0] != everyone[0][0]:
            raise UserError(f"the dataset differs between processes: rank {rank} on {theirs[3]} "
                            f"sees {theirs[1]} images in {theirs[2]}, rank 0 on {everyone[0][3]} "
                            f"sees {everyone[0][1]} in {everyone[0][2]}; every machine needs the "
                            "same dataset")


def dataset_fingerprint(index: DatasetIndex) -> str:
    """A digest of what a run reads: class names, and each image's path below the root, label
    and split (the root itself may differ between machines)."""
    digest = hashlib.sha256("\n".join(index.class_names).encode())
    root = index.root if index.root.is_dir() else index.root.parent
    for path, label, split in zip(index.paths, index.labels, index.splits, strict=False):
        rel = os.path.relpath(path, root)
        digest.update(f"{rel}\t{label}\t{split}\n".encode())
    return digest.hexdigest()


# -- samplers ----------------------------------------------------------------------------------

class DistributedWeightedSampler(Sampler[int]):
    """Weighted draws with replacement (class-balanced, square-root) shared out between processes.

    Every process makes the same draw for the epoch (seeded by `seed` and the epoch) and keeps
    every `num_replicas`-th element from its rank on: together the processes read exactly one
    one-process draw, nothing duplicated and nothing dropped, so the class distribution is that
    of one process. The draw is rounded up to a multiple of the processes so each reads as many
    images (a draw with replacement: a few more draws, not repeated ones).
    """

    def __init__(self, weights: torch.Tensor, num_replicas: int, rank: int, seed: int = 0) -> None:
        self.weights = weights
        self.num_replicas, self.rank, self.seed = num_replicas, rank, seed
        self.num_samples = math.ceil(len(weights) / num_replicas)  # per process
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's sample (call before iterating, as for `DistributedSampler`)."""
        self.epoch = epoch

    def global_draw(self) -> torch.Tensor:
        """The epoch's draw over all processes (what one process would read)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        total = self.num_samples * self.num_replicas
        return torch.multinomial(self.weights, total, replacement=True, generator=generator)

    def __iter__(self) -> Iterator[int]:
        return iter(self.global_draw()[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


class ShardSampler(Sampler[int]):
    """Every `num_replicas`-th index from `rank` on, in order: the processes share out an
    evaluation set without padding, so summed counts equal one pass over it."""

    def __init__(self, size: int, num_replicas: int, rank: int) -> None:
        self.size, self.num_replicas, self.rank = size, num_replicas, rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.size, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.num_replicas))


def train_sampler(dataset: Any, labels: Sequence[int], mode: str, world: World,
                  seed: int) -> Sampler[int]:
    """This process's share of each training epoch: `DistributedSampler` for plain shuffling,
    `DistributedWeightedSampler` for the class-balanced and square-root draws."""
    weights = sample_weights(labels, mode)
    if weights is None:
        return DistributedSampler(dataset, num_replicas=world.size, rank=world.rank,
                                  shuffle=True, seed=seed)
    return DistributedWeightedSampler(weights, world.size, world.rank, seed)


def set_epoch(loader: Any, epoch: int) -> None:
    """Give the loader's sampler the epoch: a new shuffle or draw per epoch, equal on each rank."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def shared_seed(seed: int) -> int:
    """The samplers' seed, equal on every process (rank 0's random one when not seeded)."""
    if seed >= 0:
        return seed
    return from_main(lambda: int(torch.randint(0, 2**31 - 1, (1,)).item()), "agreeing a seed")


# -- the model and the exchanges during training -----------------------------------------------

def wrap_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around `model` (its gradients averaged over the processes)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return _collective("starting DistributedDataParallel",
                       lambda: DistributedDataParallel(model, device_ids=ids))


def sync_buffers(model: torch.nn.Module) -> None:
    """Give every process rank 0's buffers (BatchNorm's running statistics): each process's last
    training step updated them from its own images, and rank 0's are the ones it saves, so the
    processes evaluate exactly the checkpoint's weights."""
    def send() -> None:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)

    _collective("sharing the BatchNorm statistics", send)


def average(value: float, device: torch.device) -> float:
    """The mean of `value` over the processes (each process's batch loss -> the step's loss)."""
    tensor = torch.tensor([value], dtype=torch.float64, device=_comm_device(device))
    _collective("averaging the loss", lambda: dist.all_reduce(tensor))
    return float(tensor.item()) / dist.get_world_size()


def sum_counts(values: np.ndarray, device: torch.device) -> np.ndarray:
    """Element-wise sum over the processes (validation loss sums and confusion counts)."""
    tensor = torch.as_tensor(values, dtype=torch.float64, device=_comm_device(device))
    _collective("summing the validation counts", lambda: dist.all_reduce(tensor))
    return tensor.cpu().numpy()


def main_flags(stop: bool, paused: bool, device: torch.device) -> tuple[bool, bool]:
    """Rank 0's (stop, paused), so every process stops or pauses at the same batch."""
    tensor = torch.tensor([float(stop), float(paused)], device=_comm_device(device))
    _collective("following rank 0", lambda: dist.broadcast(tensor, src=0))
    return bool(tensor[0]), bool(tensor[1])


def share_run_path(path: Path | None) -> Path:
    """The run folder rank 0 created, known to every process."""
    return Path(from_main(lambda: str(path), "sharing the run folder"))


def _comm_device(device: torch.device) -> torch.device:
    # NCCL moves CUDA tensors; gloo (CPU processes, and the CPU side of a GPU job) CPU ones
    return device if device.type == "cuda" else torch.device("cpu")


class FollowerRecord:
    """What a process other than rank 0 has instead of the run directory: its path, no writes."""

    writes = False

    def __init__(self, path: Path) -> None:
        from workbench.train.runpaths import RunPaths

        self.path = path
        self.paths = RunPaths(path)

    def record(self, event: Any) -> None:
        """Rank 0 records every event; the others record nothing."""

    def close(self) -> None:
        """Nothing was opened."""
