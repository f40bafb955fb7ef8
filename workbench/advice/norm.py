"""What to say about the normalization policy: the batch size, and the dataset's distance.

Two facts decide it. BatchNorm statistics estimated from fewer than 16 images per device are
noisy (Wu & He 2018, Fig. 1), which is why frozen BN is the usual cure for small batches. But
frozen BN normalises with ImageNet's running statistics: when the measured BN divergence says the
dataset is far from ImageNet, fine-tuning through those frozen statistics can collapse (on the
digits demo, fine-tuning everything with frozen BN ends at chance, with trained BN at 89 % after
two epochs).
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.models.transfer import SMALL_BN_BATCH


@dataclass(frozen=True)
class NormHint:
    """A line for the user under the normalization policy; `warning` when it asks for a change."""

    text: str
    warning: bool = False


def norm_hint(norm_type: str, policy: str, batch_per_device: int, trains_backbone: bool,
              divergence: float | None = None, threshold: float | None = None) -> NormHint:
    """Advice on `policy` for this backbone, batch size and (when measured) BN divergence."""
    if norm_type != "batchnorm":
        name = {"layernorm": "LayerNorm", "none": "No-normalization"}.get(norm_type, norm_type)
        return NormHint(f"{name} backbone: no BatchNorm statistics to train or freeze.")
    far = divergence is not None and threshold is not None and divergence > threshold
    if policy == "frozen_bn" and trains_backbone and far:
        need = f" with a batch of {SMALL_BN_BATCH} or more" if batch_per_device < SMALL_BN_BATCH \
            else ""
        return NormHint(f"Frozen BN keeps ImageNet's statistics, and this dataset measures "
                        f"{divergence:.2f} from them (dissimilar above {threshold:.2f}): "
                        f"fine-tuning through them can collapse. Train BN{need}.", warning=True)
    if batch_per_device >= SMALL_BN_BATCH:
        return NormHint(f"Batch per device is {batch_per_device}: enough to train BN "
                        f"(freeze it below {SMALL_BN_BATCH}).")
    if policy == "frozen_bn":
        return NormHint(f"Batch per device is {batch_per_device} (< {SMALL_BN_BATCH}): "
                        "BN frozen, as it should be.")
    return NormHint(f"Batch per device is {batch_per_device} (< {SMALL_BN_BATCH}): freeze BN. "
                    "Its statistics would be too noisy to train.", warning=True)
