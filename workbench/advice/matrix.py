"""The 2x2 rule-of-thumb matrix: dataset size x similarity to ImageNet -> a transfer strategy.

The cells follow the CS231n transfer-learning notes: small + similar: linear classifier on top;
large + similar: fine-tune; small + dissimilar: a linear classifier on earlier features; large +
dissimilar: fine-tune everything. The two thresholds are heuristics (docs/advice-calibration.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from workbench.config import DEFAULT_LR_DECAY, AdviceConfig, ModelConfig
from workbench.errors import UserError

CELLS = ("similar-small", "similar-large", "dissimilar-small", "dissimilar-large")
LINEAR_HEADS = ("logreg", "svm")  # scikit-learn classifiers on frozen pooled features

_TITLES = {
    "similar-small": "Freeze the backbone, train a linear head",
    "similar-large": "Fine-tune everything, lower LR for lower stages",
    "dissimilar-small": "Linear classifier on earlier-stage features",
    "dissimilar-large": "Fine-tune everything from the pretrained weights",
}


@dataclass(frozen=True)
class Strategy:
    """What one cell of the matrix recommends, as run-config values plus a plain explanation."""

    cell: str
    title: str
    freeze_stages: int
    head: str
    feature_stage: int  # stage whose pooled features feed the head; -1: the last stage
    norm_policy: str
    lr_decay: float
    explanation: str

    def to_dict(self) -> dict[str, object]:
        """The JSON form used in the advice report."""
        return dataclasses.asdict(self)


def size_label(images_per_class_median: float, config: AdviceConfig) -> str:
    """"small" when the median training images per class is below the threshold, else "large"."""
    return "small" if images_per_class_median < config.small_images_per_class else "large"


def similarity_label(divergence: float, config: AdviceConfig) -> str:
    """"dissimilar" when the mean BN divergence is above the threshold, else "similar"."""
    return "dissimilar" if divergence > config.similarity_threshold else "similar"


def classify(images_per_class_median: float, similarity: float, config: AdviceConfig) -> str:
    """The matrix cell for a dataset, from its median images per class and its BN divergence."""
    sim = similarity_label(similarity, config)
    return f"{sim}-{size_label(images_per_class_median, config)}"


def default_feature_stage(num_stages: int) -> int:
    """About two thirds up the backbone: generic enough to transfer, specific enough to help."""
    return max(0, min(num_stages - 1, round(2 * (num_stages - 1) / 3)))


def strategy_for(
    cell: str, num_stages: int, probe: object | None = None, head: str = "logreg"
) -> Strategy:
    """The strategy of a cell for a backbone with `num_stages` stages.

    `probe` (a `probe.ProbeResult`, optional) picks the stage for the dissimilar-small cell;
    `head` chooses the scikit-learn classifier there ("logreg" or "svm").
    """
    _check_cell(cell)
    if num_stages < 1:
        raise UserError(f"a backbone needs at least one stage, not {num_stages}")
    if cell == "similar-small":
        return _similar_small(num_stages)
    if cell == "similar-large":
        return _similar_large()
    if cell == "dissimilar-small":
        return _dissimilar_small(num_stages, probe, head)
    return _dissimilar_large()


def _similar_small(num_stages: int) -> Strategy:
    return Strategy(
        cell="similar-small", title=_TITLES["similar-small"], freeze_stages=num_stages,
        head="linear", feature_stage=-1, norm_policy="frozen_bn", lr_decay=DEFAULT_LR_DECAY,
        explanation=(
            "Your images look like ImageNet and there are few per class: the pretrained features "
            "already fit, and fine-tuning millions of weights on so few images would overfit. "
            "Every stage is frozen (BatchNorm too) and only a new linear head is trained."
        ),
    )


def _similar_large() -> Strategy:
    return Strategy(
        cell="similar-large", title=_TITLES["similar-large"], freeze_stages=0, head="linear",
        feature_stage=-1, norm_policy="train_bn", lr_decay=DEFAULT_LR_DECAY,
        explanation=(
            "Your images look like ImageNet and there are many per class: enough data to adapt "
            "the whole network without overfitting. All stages train; each stage's learning rate "
            "is the one above it divided by 2.6 (ULMFiT), so generic low-level filters move least."
        ),
    )


def _dissimilar_small(num_stages: int, probe: object | None, head: str) -> Strategy:
    if head not in LINEAR_HEADS:
        raise UserError(f"head {head!r} is not one of {', '.join(LINEAR_HEADS)}")
    # training pools the chosen stage with a global average, so the GAP rows decide
    best = probe.best_for("gap") if hasattr(probe, "best_for") else getattr(probe, "best", None)
    stage = best.stage if best is not None else default_feature_stage(num_stages)
    source = ("where the linear probe on average-pooled features scored best"
              if best is not None else "about two thirds up")
    if stage < num_stages - 1:
        where = f"pooled features of stage {stage} ({source}), which are more generic"
    else:  # the probe found the top stage best after all: say so rather than call it earlier
        where = (f"pooled features of the last stage, {stage} ({source}: on this data the top "
                 "stage still separates the classes best)")
    return Strategy(
        cell="dissimilar-small", title=_TITLES["dissimilar-small"], freeze_stages=num_stages,
        head=head, feature_stage=stage, norm_policy="frozen_bn", lr_decay=DEFAULT_LR_DECAY,
        explanation=(
            "Your images differ from ImageNet and there are few per class: the top stages encode "
            "ImageNet-specific parts, and there is too little data to retrain them. A linear "
            f"classifier ({head}) is trained on {where}; the backbone stays frozen."
        ),
    )


def _dissimilar_large() -> Strategy:
    return Strategy(
        cell="dissimilar-large", title=_TITLES["dissimilar-large"], freeze_stages=0,
        head="linear", feature_stage=-1, norm_policy="train_bn", lr_decay=1.0,
        explanation=(
            "Your images differ from ImageNet and there are many per class: every stage has to "
            "change, and there is data enough to do it. All stages train at the same learning "
            "rate from the pretrained weights (which still converge faster than random ones); "
            "training from scratch, with GroupNorm, is the alternative."
        ),
    )


def apply_strategy(strategy: Strategy, model_config: ModelConfig) -> ModelConfig:
    """A copy of `model_config` with the strategy's freeze, head, stage, LR decay and norm set."""
    return dataclasses.replace(
        model_config,
        freeze_stages=strategy.freeze_stages,
        head=strategy.head,
        feature_stage=strategy.feature_stage,
        lr_decay=strategy.lr_decay,
        norm_policy=strategy.norm_policy,
    )


def cell_for_slider(
    freeze_stages: int, head: str, num_stages: int, lr_decay: float = DEFAULT_LR_DECAY
) -> str | None:
    """The cell a slider position corresponds to, or None for a position between cells.

    Fully frozen with a linear head is similar-small, with an SVM / logistic-regression head
    dissimilar-small; nothing frozen is similar-large with decaying LRs, dissimilar-large with
    uniform ones (lr_decay 1).
    """
    if freeze_stages >= num_stages:
        return "dissimilar-small" if head in LINEAR_HEADS else "similar-small"
    if freeze_stages == 0 and head not in LINEAR_HEADS:
        return "dissimilar-large" if lr_decay >= 1.0 else "similar-large"
    return None


def cell_for_config(model_config: ModelConfig, num_stages: int) -> str | None:
    """The cell the user's current model settings correspond to, if any."""
    return cell_for_slider(
        model_config.freeze_stages, model_config.head, num_stages, model_config.lr_decay
    )


def _check_cell(cell: str) -> None:
    if cell not in CELLS:
        raise UserError(f"unknown matrix cell {cell!r}: one of {', '.join(CELLS)}")


def is_borderline(value: float, threshold: float, margin: float = 0.1) -> bool:
    """True when `value` lies within `margin` (a fraction of the threshold) of `threshold`.

    The thresholds are heuristics and a measurement on a sample is noisy: 0.1245 against 0.12
    falls on a side by chance, so it is reported as borderline rather than as a verdict.
    """
    return abs(value - threshold) <= margin * abs(threshold)


def similarity_verdict(divergence: float | None, threshold: float, arrow: str = " → ") -> str:
    """"→ dissimilar", or "→ dissimilar, borderline (within 10% of 0.12)" near the threshold;
    "" when nothing was measured."""
    if divergence is None:
        return ""
    side = "dissimilar" if divergence > threshold else "similar"
    if is_borderline(divergence, threshold):
        side += f", borderline (within 10% of {threshold:g})"
    return f"{arrow}{side}"
