"""What the GUI calls each choice of the run config: labels keyed by the core's enumerations.

The core (`workbench.config`) owns the vocabulary; the GUI only names its members, and
tests/ui/test_vocabulary.py checks that every member has a label and no label names a
member that does not exist.
"""

from __future__ import annotations

from enum import StrEnum

from workbench.config import (
    Augment,
    Device,
    Head,
    Loss,
    LossWeighting,
    NormPolicy,
    Optimizer,
    Sampling,
    Schedule,
)

HEAD_LABELS: dict[Head, str] = {
    Head.LINEAR: "linear layer",
    Head.LOGREG: "logistic regression",
    Head.SVM: "linear SVM",
}
NORM_POLICY_LABELS: dict[NormPolicy, str] = {
    NormPolicy.TRAIN_BN: "train BN",
    NormPolicy.FROZEN_BN: "frozen BN",
    NormPolicy.GROUP_NORM: "GroupNorm (random init)",
    NormPolicy.SYNC_BN: "SyncBatchNorm (multi-GPU)",
}
LOSS_WEIGHTING_LABELS: dict[LossWeighting, str] = {
    LossWeighting.NONE: "None",
    LossWeighting.INVERSE: "Inverse frequency",
    LossWeighting.INVERSE_SQRT: "Inverse square root",
    LossWeighting.EFFECTIVE_NUMBER: "Class-balanced (effective number)",
}
SAMPLING_LABELS: dict[Sampling, str] = {
    Sampling.NONE: "None (shuffle)",
    Sampling.CLASS_BALANCED: "Class-balanced",
    Sampling.SQRT: "Square-root frequency",
}
LOSS_LABELS: dict[Loss, str] = {
    Loss.CROSS_ENTROPY: "Cross-entropy",
    Loss.LOGIT_ADJUSTED: "Logit-adjusted (Menon 2021)",
    Loss.LDAM_DRW: "LDAM-DRW (Cao 2019)",
}
OPTIMIZER_LABELS: dict[Optimizer, str] = {
    Optimizer.SGD: "SGD with momentum",
    Optimizer.ADAMW: "AdamW",
}
DEVICE_LABELS: dict[Device, str] = {
    Device.AUTO: "Automatic",
    Device.CUDA: "CUDA GPU",
    Device.MPS: "Apple GPU (MPS)",
    Device.CPU: "CPU",
}
AUGMENT_LABELS: dict[Augment, str] = {
    Augment.NONE: "None",
    Augment.LIGHT: "Light (crops, flips)",
    Augment.STANDARD: "Standard (wide crops, flips)",
    Augment.STRONG: "Strong (+ TrivialAugment, erasing)",
}
SCHEDULE_LABELS: dict[Schedule, str] = {
    Schedule.WARMUP_COSINE: "Warm-up, then cosine",
    Schedule.ONE_CYCLE: "One-cycle",
}
# Each vocabulary of the core with the GUI's labels for it (what the test walks).
VOCABULARIES: dict[type[StrEnum], dict] = {
    Head: HEAD_LABELS,
    NormPolicy: NORM_POLICY_LABELS,
    LossWeighting: LOSS_WEIGHTING_LABELS,
    Sampling: SAMPLING_LABELS,
    Loss: LOSS_LABELS,
    Optimizer: OPTIMIZER_LABELS,
    Device: DEVICE_LABELS,
    Augment: AUGMENT_LABELS,
    Schedule: SCHEDULE_LABELS,
}
