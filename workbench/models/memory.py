"""Will a training step fit in memory? An estimate of the activations a step keeps for the backward
pass, made before any memory is spent, so the plan can warn instead of the run dying (a CUDA
out-of-memory error, or a CPU machine swapping to a halt) at its first batch.

The activations per image are measured once per backbone by a forward pass on the meta device
(shapes only: nothing is allocated or computed) at the weights' own size, and scaled with the
input's area: a 1024 px input keeps about 21x what 224 px keeps.
"""

from __future__ import annotations

import os
from typing import Any

GIB = 1 << 30
GPU_SHARE = 0.8  # the rest: weights, gradients, optimizer state, the CUDA context, fragmentation
RAM_SHARE = 0.5  # the rest: the OS, the loader processes, the GUI, everything else running

_PER_IMAGE: dict[str, int] = {}  # backbone -> activation elements per image at its native size


def activation_elements(backbone: str, build: bool = True) -> int | None:
    """Elements of the outputs of every layer for one image at the backbone's native size
    (measured once; None when not measured yet and `build` is False, or not measurable)."""
    if backbone not in _PER_IMAGE and build:
        from workbench.models.transfer import build_skeleton
        from workbench.models.transforms import preset_values

        size = int(preset_values(backbone)["crop"])
        try:
            _PER_IMAGE[backbone] = _measure(build_skeleton(backbone), size)
        except Exception:  # noqa: BLE001 - an architecture meta tensors cannot run: no estimate
            return None
    return _PER_IMAGE.get(backbone)


def _measure(model: Any, size: int) -> int:
    import torch

    total = [0]

    def count(_module: Any, _inputs: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            total[0] += out.numel()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        model = model.to("meta")
        with torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]


def step_bytes(per_image: int, native: int, input_size: int, batch: int, half: bool) -> int:
    """Activation bytes of one training step: the measured elements scaled by the input's area,
    times the batch, at 2 bytes an element under mixed precision, else 4."""
    return int(per_image * (input_size / native) ** 2 * batch * (2 if half else 4))


def available_bytes(device: str) -> tuple[int, str] | None:
    """(bytes a step may use, the words for it) on `device`; None when unknown."""
    if device.startswith("cuda"):
        import torch

        index = int(device.partition(":")[2] or torch.cuda.current_device())
        total = torch.cuda.get_device_properties(index).total_memory
        return int(total * GPU_SHARE), f"{GPU_SHARE:.0%} of the GPU's {total / GIB:.0f} GiB"
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None
    return int(total * RAM_SHARE), f"{RAM_SHARE:.0%} of this machine's {total / GIB:.0f} GiB RAM"


def memory_warning(plan: Any, build: bool = True) -> str | None:
    """A warning line when the plan's training step would keep more activations than its
    device can hold (None when it fits, when the backbone does not train, or when unknown)."""
    if not plan.trains_backbone:  # a frozen backbone keeps no activations for a backward pass
        return None
    per_image = activation_elements(plan.backbone, build)
    budget = available_bytes(plan.device) if per_image else None
    if not per_image or budget is None:
        return None
    half = plan.config.train.amp and plan.device.startswith("cuda")
    batch = plan.process_batch_size
    need = step_bytes(per_image, plan.native_input_size, plan.input_size, batch, half)
    if need <= budget[0]:
        return None
    fits = max(1, int(batch * budget[0] / need))
    return (f"{plan.input_size} px with batch {batch} keeps about {need / GIB:.0f} GiB of "
            f"activations per step, more than {budget[1]}: lower train.batch_size (about "
            f"{fits} fits) or data.input_size")
