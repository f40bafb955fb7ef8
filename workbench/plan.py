"""The run plan: what exactly a run will do, resolved once from a config and a dataset.

`plan_run(config, index)` turns a `RunConfig` (what the user asked for) and the open dataset into
an immutable `RunPlan` (what will happen): the resolved weights, the backbone's stages, the
effective freeze and feature stage, the checked input size, the head, whether the feature-cache
fast path applies, the device and processes, and the list of fixes and warnings. The GUI plans on
every change and shows the warnings where the user is looking; the engine, the CLI, the advisor
and `train --demo` consume the plan and never re-derive a setting.

One rule for what cannot run as asked: a setting the backbone cannot take (too many frozen
stages, a feature stage it does not have, GroupNorm on pretrained weights, an input size the
family refuses) becomes a `Fix`. `plan_run(..., fix=True)` applies the fixes and lists them (the
GUI shows them in a dialog and writes the fixed config back); `fix=False` refuses the first one
with a readable `UserError` naming the value to set (the CLI: a headless run must not quietly
train something else than its config says).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workbench.config import MIN_INPUT_SIZE, Augment, Head, NormPolicy, RunConfig
from workbench.data.index import DatasetIndex
from workbench.errors import UserError
from workbench.models.memory import memory_warning

# Small images gain nothing from being upscaled to 224 px: the plan suggests about twice their
# side (the stem downsamples by 2 at once), rounded up to a multiple of 32.
UPSCALE = 2
SIZE_STEP = 32
DIVERGING_LR = 1.0  # SGD above this on a pretrained network almost always diverges


@dataclass(frozen=True)
class Fix:
    """A setting the plan changed so that the run can work, and why (one line)."""

    key: str  # "section.field"
    old: Any
    new: Any
    reason: str

    def __str__(self) -> str:
        return f"{self.key} {self.old!r} -> {self.new!r}: {self.reason}"


@dataclass(frozen=True)
class RunPlan:
    """What a run will do. Build it with `plan_run`; never edit it (it is frozen)."""

    config: RunConfig  # the config as it will run: fixes applied (a private copy)
    backbone: str
    family: str
    norm_type: str  # "batchnorm", "layernorm", ...
    weights_spec: str  # what the config names: "DEFAULT", "IMAGENET1K_V1", "random", a file
    pretrained_weights: Any  # the torchvision WeightsEnum entry; None: random init or a file
    weights_file: str | None  # a .pth file to load (our safe loader); None otherwise
    stage_names: tuple[str, ...]
    freeze_stages: int  # 0..num_stages
    head: Head
    feature_stage: int  # 0-based stage whose pooled output feeds the head
    input_size: int  # the crop in pixels (never 0)
    native_input_size: int  # what the weights were trained at
    suggested_input_size: int | None  # from the images' own sizes; None: no suggestion
    fast_path: bool  # features computed once and cached; only the head trains
    class_names: tuple[str, ...] = ()
    train_images: int = 0
    val_images: int = 0
    batch_size: int = 32  # per optimisation step, capped at the training images
    device: str = "cpu"  # resolved: "cuda", "cuda:N", "mps" or "cpu" (this process's own)
    processes: int = 1  # training processes (torchrun's WORLD_SIZE, or train.gpus)
    fixes: tuple[Fix, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # facts worth knowing, not problems

    # -- derived facts -------------------------------------------------------------------------
    @property
    def size_to_apply(self) -> int | None:
        """The suggested input size when the user has not chosen one (what a matrix click, the
        "Use N px" button, the trials and the demo apply); None otherwise."""
        return None if self.config.data.input_size else self.suggested_input_size

    @property
    def num_stages(self) -> int:
        """Stages of the backbone (the slider's range is 0..num_stages)."""
        return len(self.stage_names)

    @property
    def num_classes(self) -> int:
        """Classes of the dataset (0 when planned without one)."""
        return len(self.class_names)

    @property
    def pretrained(self) -> bool:
        """True when the backbone starts from learned weights (torchvision's or a file)."""
        return self.pretrained_weights is not None or self.weights_file is not None

    @property
    def trains_backbone(self) -> bool:
        """True when at least one backbone stage gets gradients."""
        return not self.head.fitted_once and self.freeze_stages < self.num_stages

    @property
    def unfreeze_after_epochs(self) -> int:
        """Epochs the head trains alone before the slider's stages join it (0: they train from
        the start): `train.unfreeze_after_epochs` where it applies (a backbone that trains, one
        process)."""
        n = self.config.train.unfreeze_after_epochs
        return n if self.trains_backbone and self.processes == 1 else 0

    @property
    def process_batch_size(self) -> int:
        """Images each process takes per step: the batch shared out between the processes."""
        return math.ceil(self.batch_size / self.processes)

    @property
    def norm_policy(self) -> NormPolicy:
        """The policy the model is built with: SyncBatchNorm only where it can sync (several
        processes on GPUs); elsewhere it is, and is built as, ordinary BatchNorm."""
        policy = NormPolicy(self.config.model.norm_policy)
        if policy == NormPolicy.SYNC_BN and (self.processes == 1
                                            or not self.device.startswith("cuda")):
            return NormPolicy.TRAIN_BN
        return policy

    @property
    def augments(self) -> bool:
        """True when training images change from epoch to epoch (a preset, MixUp or CutMix):
        their features cannot be computed once and cached."""
        return augmenting(self.config)

    @property
    def preset(self) -> Any:
        """What the preprocessing follows: the weights' preset, else the backbone's default."""
        return self.pretrained_weights if self.pretrained_weights is not None else self.backbone

    # -- what the run builds from it -----------------------------------------------------------
    def transform(self, train: bool = False) -> Any:
        """The preprocessing at `input_size` (for training: the config's augmentation preset)."""
        from workbench.models.transforms import build_transform

        return build_transform(self.preset, self.input_size, train=train,
                               augment=self.config.data.augment)

    def build_model(self, num_classes: int | None = -1) -> Any:
        """The `TransferModel`: weights loaded, norm policy applied, stages frozen, a new head
        for the dataset's classes (`num_classes=None` keeps the ImageNet head)."""
        from workbench.models.transfer import build_model

        classes = self.num_classes if num_classes == -1 else num_classes
        weights = self.weights_file or (self.pretrained_weights.name
                                        if self.pretrained_weights is not None else "random")
        model = build_model(self.backbone, weights=weights, num_classes=classes or None,
                            norm_policy=self.norm_policy,
                            input_size=self._build_size())
        model.freeze(self.freeze_stages)
        return model

    def _build_size(self) -> int:
        # only ViT's position embedding is built for a size; the native size needs no argument
        return 0 if self.input_size == self.native_input_size else self.input_size

    def summary(self) -> list[str]:
        """The plan in a few lines, for the CLI and the GUI's tooltip."""
        frozen = ("the whole backbone frozen" if self.freeze_stages >= self.num_stages else
                  f"{self.freeze_stages} of {self.num_stages} stages frozen")
        head = {Head.LINEAR: "a linear head", Head.LOGREG: "logistic regression",
                Head.SVM: "a linear SVM"}[self.head]
        where = (f" on {self.stage_names[self.feature_stage]}'s pooled features"
                 if self.head.fitted_once else "")
        lines = [f"{self.backbone} ({self._weights_words()}), {frozen}, {head}{where}, "
                 f"{self.input_size} px, {self.device}"
                 + (f" x {self.processes} processes" if self.processes > 1 else "")
                 + (", cached features" if self.fast_path else "")]
        lines += [f"adjusted: {f}" for f in self.fixes]
        lines += [f"warning: {w}" for w in self.warnings]
        return lines

    def _weights_words(self) -> str:
        if self.weights_file:
            return f"weights from {Path(self.weights_file).name}"
        if self.pretrained_weights is not None:
            return self.pretrained_weights.name
        return "random init"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (what `advise --json` and the run directory record)."""
        return {
            "backbone": self.backbone, "weights": self._weights_words(),
            "num_stages": self.num_stages, "freeze_stages": self.freeze_stages,
            "head": str(self.head), "feature_stage": self.feature_stage,
            "input_size": self.input_size, "native_input_size": self.native_input_size,
            "suggested_input_size": self.suggested_input_size, "fast_path": self.fast_path,
            "num_classes": self.num_classes, "train_images": self.train_images,
            "val_images": self.val_images, "batch_size": self.batch_size,
            "device": self.device, "processes": self.processes,
            "fixes": [str(f) for f in self.fixes], "warnings": list(self.warnings),
        }


def augmenting(config: RunConfig) -> bool:
    """Whether `config` augments its training images (a preset, MixUp or CutMix)."""
    d = config.data
    return d.augment != Augment.NONE or d.mixup > 0 or d.cutmix > 0


_STAGES: dict[str, tuple[str, ...]] = {}  # backbone -> stage names (they never change)


def backbone_stages(backbone: str) -> tuple[str, ...]:
    """The backbone's stage names, from a weightless skeleton (built once per backbone)."""
    if backbone not in _STAGES:
        from workbench.models.transfer import build_skeleton

        _STAGES[backbone] = tuple(build_skeleton(backbone).stage_names)
    return _STAGES[backbone]


def known_stages(backbone: str) -> tuple[str, ...] | None:
    """The stage names when a skeleton was already built, else None (nothing is built)."""
    return _STAGES.get(backbone)


def remember_stages(backbone: str, stage_names: Sequence[str]) -> None:
    """Record a backbone's stage names from a skeleton built elsewhere (the GUI's worker)."""
    _STAGES[backbone] = tuple(stage_names)


def plan_run(
    config: RunConfig,
    index: DatasetIndex | None = None,
    *,
    fix: bool = False,
    stages: Sequence[str] | None = None,
    image_side: int | None = None,
    check_device: bool = True,
) -> RunPlan:
    """Resolve `config` (and the dataset, when given) into the plan of a run.

    `fix`: apply what the backbone cannot take and list it (True), or refuse it (False).
    `stages`: the backbone's stage names when the caller has them (the GUI builds its skeleton
    in a worker); otherwise they are read from a cached skeleton. `image_side`: the images'
    typical shorter side (`data.stats.typical_image_side`), measured here when None and a dataset
    is given. `check_device`: whether an unavailable device is an error (the GUI shows it).
    Raises `UserError` with one readable line for what cannot be planned.
    """
    from workbench.models.registry import backbone_info

    config = copy.deepcopy(config).validate()
    info = backbone_info(config.model.backbone)  # UserError on an unknown name
    names = tuple(stages) if stages is not None else backbone_stages(info.name)
    weights, weights_file = _resolve_weights(config)
    fixes = _fixes(config, len(names), pretrained=bool(weights or weights_file))
    if fixes and not fix:
        first = fixes[0]
        raise UserError(f"{first.key} = {first.old!r}: {first.reason}; set it to {first.new!r}")
    for f in fixes:
        section, key = f.key.split(".")
        setattr(getattr(config, section), key, f.new)
    plan = _plan(config, index, info, names, weights, weights_file, tuple(fixes),
                 image_side, check_device)
    # measured once per backbone, on meta tensors; a caller that brings its own stages (the
    # GUI, on its event loop) gets the warning once the backbone has been measured elsewhere
    memory = memory_warning(plan, build=stages is None) if check_device else None
    return replace(plan, warnings=(*plan.warnings, memory)) if memory else plan


def _plan(config: RunConfig, index: DatasetIndex | None, info: Any, names: tuple[str, ...],
          weights: Any, weights_file: str | None, fixes: tuple[Fix, ...],
          image_side: int | None, check_device: bool) -> RunPlan:
    from workbench.devices import resolve_device

    m = config.model
    head = Head(m.head)
    native = _native_size(weights if weights is not None else info.name)
    input_size = config.data.input_size or native
    feature_stage = (m.feature_stage % len(names)) if head.fitted_once else len(names) - 1
    fast = head.fitted_once or (m.freeze_stages >= len(names) and not augmenting(config))
    device = resolve_device(config.train.device) if check_device else str(config.train.device)
    processes, device, spread = _processes(config, device, one_process=fast, check=check_device)
    counts = _dataset_counts(index)
    if index is not None and image_side is None:
        from workbench.data.stats import typical_image_side

        image_side = typical_image_side(index)
    suggested = suggest_input_size(image_side, native, info.name,
                                   pretrained=weights is not None or weights_file is not None)
    plan = RunPlan(
        config=config, backbone=info.name, family=info.family, norm_type=info.norm_type,
        weights_spec=m.weights, pretrained_weights=weights, weights_file=weights_file,
        stage_names=names, freeze_stages=m.freeze_stages, head=head,
        feature_stage=feature_stage, input_size=input_size, native_input_size=native,
        suggested_input_size=suggested, fast_path=fast,
        class_names=tuple(index.class_names) if index is not None else (),
        train_images=counts[0], val_images=counts[1],
        batch_size=min(config.train.batch_size, counts[0]) if counts[0] else
        config.train.batch_size, device=device, processes=processes, fixes=fixes,
    )
    plan = _with_warnings(plan, image_side)
    return replace(plan, warnings=plan.warnings + spread[0], notes=plan.notes + spread[1])


def _processes(config: RunConfig, device: str, one_process: bool, check: bool
               ) -> tuple[int, str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """(processes, this process's device, (warnings, notes)) for a run under torchrun (its
    WORLD_SIZE) or asking for `train.gpus`; UserError for what cannot be given."""
    from workbench.devices import current_world, gpu_count

    world, gpus = current_world(), config.train.gpus
    asked = world.size if world.active else max(1, gpus)
    if asked == 1:
        return 1, device, ((), ())
    if one_process:
        what = ("a scikit-learn head" if Head(config.model.head).fitted_once else
                "the feature-cache fast path (frozen backbone, no augmentation)")
        return 1, device, ((f"{what} trains in one process: {asked} asked, 1 used",), ())
    if not world.active and check and not device.startswith("cuda"):
        raise UserError(f"train.gpus = {gpus} needs CUDA GPUs; this run is on {device} (for "
                        "several CPU processes start torchrun yourself: docs/distributed.md)")
    if not world.active and check and gpus > gpu_count():
        raise UserError(f"train.gpus = {gpus} but this machine has {gpu_count()} GPU(s)")
    if world.active and device.startswith("cuda"):
        device = _rank_gpu(config.train.device, world.local_rank, gpu_count() if check else None)
    share = math.ceil(config.train.batch_size / asked)
    return asked, device, ((), (f"{asked} processes: each takes {share} of the batch's "
                                f"{config.train.batch_size} images per step",))


def _rank_gpu(configured: str, local_rank: int, gpus: int | None) -> str:
    """The GPU of the process with this local rank (one GPU per process)."""
    if configured.startswith("cuda:"):
        raise UserError(f"train.device = {configured!r} names one GPU but torchrun started "
                        "several processes: set train.device = \"cuda\" (each process takes "
                        "its own GPU)")
    if gpus is not None and local_rank >= gpus:
        raise UserError(f"torchrun started more processes on this machine than its {gpus} "
                        f"GPU(s): use --nproc-per-node {gpus} or fewer")
    return f"cuda:{local_rank}"


def _resolve_weights(config: RunConfig) -> tuple[Any, str | None]:
    """(torchvision weights entry or None, weights file or None), each resolved once."""
    from workbench.models import weights as wt

    spec = config.model.weights
    if wt.is_weights_file(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise UserError(f"model.weights: no such weights file: {spec}")
        return None, str(path)
    return wt.resolve_weights(config.model.backbone, spec), None


def _native_size(preset: Any) -> int:
    from workbench.models.transforms import preset_values

    return int(preset_values(preset)["crop"])


def _fixes(config: RunConfig, num_stages: int, pretrained: bool) -> list[Fix]:
    """What the backbone cannot take as configured, with the nearest value it can."""
    m, fixes = config.model, []
    if m.freeze_stages > num_stages:
        fixes.append(Fix("model.freeze_stages", m.freeze_stages, num_stages,
                         f"{m.backbone} has {num_stages} stages (0 to {num_stages} can be "
                         "frozen)"))
    if not -num_stages <= m.feature_stage < num_stages:
        fixes.append(Fix("model.feature_stage", m.feature_stage, -1,
                         f"{m.backbone} has stages 0 to {num_stages - 1} (-1: the last)"))
    if m.norm_policy == NormPolicy.GROUP_NORM and pretrained:
        fixes.append(Fix("model.norm_policy", m.norm_policy, str(NormPolicy.TRAIN_BN),
                         "GroupNorm needs random initialization (pretrained BatchNorm weights "
                         "do not map onto GroupNorm)"))
    fixes += _size_fixes(config, pretrained)
    return fixes


def _size_fixes(config: RunConfig, pretrained: bool) -> list[Fix]:
    from workbench.models.transfer import input_size_fix

    size = config.data.input_size
    found = input_size_fix(config.model.backbone, size, pretrained)
    return [] if found is None else [Fix("data.input_size", size, found[0], found[1])]


def suggest_input_size(image_side: int | None, native: int, backbone: str,
                       pretrained: bool) -> int | None:
    """An input size for images whose shorter side is `image_side`: about twice it, rounded up
    to a multiple of 32, as the backbone allows, never above the weights' own size (None: the
    weights' own size is what fits)."""
    from workbench.models.transfer import input_size_fix

    if not image_side:
        return None
    size = max(MIN_INPUT_SIZE, SIZE_STEP * math.ceil(UPSCALE * image_side / SIZE_STEP))
    fixed = input_size_fix(backbone, size, pretrained)
    if fixed is not None:
        size = fixed[0]
    return size if 0 < size < native else None


def _dataset_counts(index: DatasetIndex | None) -> tuple[int, int]:
    """(training images, validation images); a dataset that cannot train is refused here."""
    if index is None:
        return 0, 0
    from workbench.data.stats import unusable_reason

    reason = unusable_reason(index)
    if reason:
        raise UserError(reason)
    training = index.training_split()
    val = len(index.indices("val")) if training == "train" else 0
    return len(index.indices(training)), val


def _with_warnings(plan: RunPlan, image_side: int | None) -> RunPlan:
    c, warnings, notes = plan.config, [], []
    if plan.train_images and c.train.batch_size > plan.train_images:
        warnings.append(f"batch size {c.train.batch_size} is more than the {plan.train_images} "
                        f"training images: each step uses all {plan.train_images}")
    if plan.class_names and not plan.val_images:
        warnings.append("no validation images: accuracy cannot be measured and best.pt is the "
                        "last epoch")
    if plan.size_to_apply:
        speedup = (plan.input_size / plan.suggested_input_size) ** 2
        notes.append(f"the images are about {image_side} px: {plan.suggested_input_size} px "
                     f"input would train about {speedup:.0f}x faster than {plan.input_size} px "
                     "with no detail lost")
    if plan.head.fitted_once and plan.augments:
        warnings.append(f"{plan.head} is fitted once on cached features: augmentation is not used")
    elif plan.augments and plan.freeze_stages >= plan.num_stages:
        notes.append("augmentation turns off the cached-features fast path: the frozen backbone "
                     "runs on every augmented image, every epoch")
    if plan.head.fitted_once and c.data.sampling != "none":
        warnings.append(f"{plan.head} is fitted on every training image: sampling is not used "
                        "(loss weighting is)")
    if c.model.norm_policy == NormPolicy.SYNC_BN and plan.processes == 1:
        notes.append("SyncBatchNorm in one process is ordinary BatchNorm")
    elif c.model.norm_policy == NormPolicy.SYNC_BN and not plan.device.startswith("cuda"):
        notes.append("SyncBatchNorm syncs across GPUs only: on the CPU each process normalizes "
                     "its own images (ordinary BatchNorm)")
    if c.train.optimizer == "sgd" and c.train.lr > DIVERGING_LR and not plan.head.fitted_once:
        warnings.append(f"learning rate {c.train.lr:g} is very high for SGD: training is likely "
                        "to diverge (try 0.01)")
    if not plan.pretrained and plan.freeze_stages:
        warnings.append("frozen stages of a randomly initialized backbone stay random: "
                        "freeze only pretrained weights")
    warnings += _long_tail_warnings(plan)
    schedule = _schedule_lines(plan)
    return replace(plan, warnings=tuple(warnings + schedule[0]),
                   notes=tuple(notes + schedule[1]))


def _schedule_lines(plan: RunPlan) -> tuple[list[str], list[str]]:
    """(warnings, notes) about the schedule options: unfreezing, one-cycle, early stopping."""
    t, warnings, notes = plan.config.train, [], []
    if t.unfreeze_after_epochs and not plan.unfreeze_after_epochs:
        why = ("the backbone is frozen (the slider): there is nothing to unfreeze"
               if plan.processes == 1 else "it needs one process")
        warnings.append(f"train.unfreeze_after_epochs is not used: {why}")
    elif plan.unfreeze_after_epochs >= t.epochs:
        warnings.append(f"train.unfreeze_after_epochs = {t.unfreeze_after_epochs} is not less "
                        f"than train.epochs = {t.epochs}: only the head trains")
    elif plan.unfreeze_after_epochs:
        notes.append(f"the head trains alone for {t.unfreeze_after_epochs} epoch(s), then "
                     f"stages {plan.freeze_stages}-{plan.num_stages - 1} join at their own "
                     "learning rates (one schedule over the whole run)")
    if t.schedule == "one_cycle" and not plan.head.fitted_once:
        notes.append(f"one-cycle: the learning rate rises to train.lr over "
                     f"{t.warmup_epochs:g} epoch(s), then anneals to near 0")
    if t.early_stopping_patience and (plan.head.fitted_once or
                                      (plan.class_names and not plan.val_images)):
        warnings.append("early stopping is not used: it needs validation images and a head "
                        "trained over several epochs")
    elif t.early_stopping_patience:
        notes.append(f"early stopping: the run ends when validation balanced accuracy has not "
                     f"improved for {t.early_stopping_patience} epoch(s)")
    return warnings, notes


def _long_tail_warnings(plan: RunPlan) -> list[str]:
    """Long-tail options that do not apply to this run, or that correct the imbalance twice."""
    c, out = plan.config, []
    if c.train.crt_epochs and plan.processes > 1 and not plan.head.fitted_once:
        out.append("cRT re-trains the classifier in one process: train.crt_epochs is not used "
                   "with several processes")
    if plan.head.fitted_once and (c.train.loss != "cross_entropy" or c.train.crt_epochs):
        out.append(f"{plan.head} is fitted by scikit-learn: train.loss and cRT are not used")
    elif c.train.loss == "ldam_drw" and c.data.loss_weighting != "none":
        out.append("LDAM-DRW re-weights the classes itself: data.loss_weighting is not used")
    elif c.train.loss == "logit_adjusted" and (c.data.loss_weighting != "none"
                                               or c.data.sampling != "none"):
        out.append("the logit-adjusted loss balances the classes already: with loss weighting "
                   "or sampling too, the tail is favoured twice")
    return out
