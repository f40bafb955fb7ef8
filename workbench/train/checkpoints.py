"""Checkpoints: written atomically, read back with `torch.load(weights_only=True)`.

A checkpoint holds only tensors and plain containers (no pickled objects), so loading one never
runs code. It is written to a temporary file in the same folder and renamed over the old one, so
a crash or kill while writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import UserError
from workbench.models.weights import safe_torch_load


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write `state` to `path` atomically (temp file, fsync, rename) and return the path.

    A full disk raises `UserError` ("no space left on <mount point>") and leaves the previous
    checkpoint in place: torch's own message is `[enforce fail at inline_container.cc]`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed writer
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        if not _is_write_failure(exc):
            raise
        kept = "; the previous checkpoint is kept" if path.exists() else ""
        raise UserError(f"no space left on {mount_point(path)} (or it failed to write): "
                        f"{path.name} was not saved{kept}") from None
    finally:
        if tmp.exists():  # the rename did not happen: drop the partial file
            tmp.unlink()
    return path


def _is_write_failure(exc: BaseException) -> bool:
    """A full disk (or quota), as an OSError or as torch's C++ writer reports it."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(exc)
    return "file write failed" in text or "inline_container" in text


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding `path` (the "device" a user can free)."""
    current = Path(os.path.abspath(path))
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def rng_state(generator: torch.Generator | None) -> dict[str, torch.Tensor]:
    """Every random state a training epoch draws from, as tensors (loadable weights-only).

    The loaders' generator decides the sampler's order (shuffle or weighted draws) and the
    loader workers' seeds; the global torch, CUDA, NumPy and Python states drive augmentation,
    dropout and evaluation loaders. Restored on resume, the next epoch is the one an
    uninterrupted run would have trained.
    """
    np_state = np.random.get_state()
    py_version, py_keys, _ = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_meta": torch.tensor([np_state[2], np_state[3]], dtype=torch.int64),
        "numpy_gauss": torch.tensor([np_state[4]], dtype=torch.float64),
        "python": torch.tensor([py_version, *py_keys], dtype=torch.int64),
    }
    if generator is not None:
        state["loader"] = generator.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def restore_rng(state: dict[str, torch.Tensor] | None, generator: torch.Generator | None) -> None:
    """Put back the random states `rng_state` saved (a checkpoint without them: no change)."""
    if not state:
        return
    torch.set_rng_state(state["torch"].cpu())
    meta = state["numpy_meta"].tolist()
    np.random.set_state(("MT19937", state["numpy_keys"].cpu().numpy().astype(np.uint32),
                         meta[0], meta[1], float(state["numpy_gauss"][0])))
    python = state["python"].tolist()
    random.setstate((python[0], tuple(python[1:]), None))
    if generator is not None and "loader" in state:
        generator.set_state(state["loader"].cpu())
    if "cuda" in state and torch.cuda.is_available():  # as many GPUs as both runs have
        saved = list(state["cuda"].cpu())[: torch.cuda.device_count()]
        for device, device_state in enumerate(saved):
            torch.cuda.set_rng_state(device_state, device)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; `UserError` with one line when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    state = safe_torch_load(path, map_location, what="checkpoint")
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"checkpoint {path} is not a workbench checkpoint")
    return state
