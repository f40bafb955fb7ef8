"""The run configuration: typed dataclasses for data, model, advice and training.

The GUI edits a `RunConfig`, saves it as TOML, and the CLI trains from the same file. Loading
validates every value and raises `UserError` with one readable line naming the bad key.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, get_type_hints

import tomli_w

from workbench import paths
from workbench.errors import UserError

# -- the vocabulary: every choice a run config offers, one enumeration each --------------------
# The config stores plain strings (TOML has no enums); a StrEnum member equals its value, so
# `config.model.head == Head.LOGREG` holds, and the GUI keys its labels by these members.


class LossWeighting(StrEnum):
    """How the loss weighs classes against label imbalance."""

    NONE = "none"
    INVERSE = "inverse"  # 1 / n_c
    INVERSE_SQRT = "inverse_sqrt"  # 1 / sqrt(n_c)
    EFFECTIVE_NUMBER = "effective_number"  # class-balanced loss (Cui et al. 2019)


class Sampling(StrEnum):
    """How training batches are drawn."""

    NONE = "none"
    CLASS_BALANCED = "class_balanced"
    SQRT = "sqrt"


class Loss(StrEnum):
    """The training loss; the last two fight label imbalance through per-class margins."""

    CROSS_ENTROPY = "cross_entropy"
    LOGIT_ADJUSTED = "logit_adjusted"  # logits + tau * log prior (Menon et al. 2021)
    LDAM_DRW = "ldam_drw"  # label-distribution-aware margins, deferred re-weighting (Cao 2019)


class NormPolicy(StrEnum):
    """What happens to the backbone's normalization layers."""

    TRAIN_BN = "train_bn"
    FROZEN_BN = "frozen_bn"
    GROUP_NORM = "group_norm"
    SYNC_BN = "sync_bn"


class Head(StrEnum):
    """The classifier on the pooled features."""

    LINEAR = "linear"  # a torch Linear trained with the optimizer
    SVM = "svm"  # scikit-learn LinearSVC, fitted once on cached features
    LOGREG = "logreg"  # scikit-learn LogisticRegression, fitted once on cached features

    @property
    def fitted_once(self) -> bool:
        """True for the scikit-learn heads: fitted in one go on frozen, cached features."""
        return self is not Head.LINEAR


class Optimizer(StrEnum):
    """The optimizer of the trainable parameters."""

    SGD = "sgd"
    ADAMW = "adamw"


class Augment(StrEnum):
    """Per-image augmentation of the training images (workbench.models.transforms)."""

    NONE = "none"  # the evaluation pipeline: resize and center crop
    LIGHT = "light"  # random resized crop (scale 0.35-1) and horizontal flip
    STANDARD = "standard"  # random resized crop (0.08-1) and flip: what `augment = true` was
    STRONG = "strong"  # standard + TrivialAugmentWide + random erasing


class Schedule(StrEnum):
    """How the learning rate moves over a run (stepped every batch)."""

    WARMUP_COSINE = "warmup_cosine"  # linear warm-up over train.warmup_epochs, then cosine to 0
    ONE_CYCLE = "one_cycle"  # Smith's one-cycle (OneCycleLR): up over the warm-up, then down


class Device(StrEnum):
    """Where a run trains; "auto" picks CUDA, then MPS, then the CPU."""

    AUTO = "auto"
    CUDA = "cuda"
    MPS = "mps"
    CPU = "cpu"


LOSS_WEIGHTINGS = tuple(LossWeighting)
SAMPLINGS = tuple(Sampling)
LOSSES = tuple(Loss)
NORM_POLICIES = tuple(NormPolicy)
HEADS = tuple(Head)
SKLEARN_HEADS = tuple(h for h in Head if h.fitted_once)
OPTIMIZERS = tuple(Optimizer)
SCHEDULES = tuple(Schedule)
AUGMENTS = tuple(Augment)
DEVICES = tuple(Device)
MIN_INPUT_SIZE = 32  # below this, convolutional backbones downsample the image to nothing

# The allowed range of every numeric field, "section.key" -> (low, high): `validate` checks
# them and the GUI's spin boxes take their ranges from here, so the two cannot disagree.
LIMITS: dict[str, tuple[float, float]] = {
    "data.val_fraction": (0.0, 0.9),
    "data.beta": (0.0, 0.999999),
    "data.input_size": (0, 1024),  # 0: the weights' own size; else at least MIN_INPUT_SIZE
    "data.min_class_count": (0, 10**6),
    "data.split_seed": (0, 2**32 - 1),  # NumPy's seed range
    "data.num_workers": (-1, 64),  # -1: chosen from the CPU count
    "data.mixup": (0.0, 10.0),  # Beta(alpha, alpha) of MixUp; 0: off
    "data.cutmix": (0.0, 10.0),  # Beta(alpha, alpha) of CutMix; 0: off
    "model.freeze_stages": (0, 64),
    "model.lr_decay": (0.0, 1.0),
    "model.feature_stage": (-64, 63),  # -1: the last; the plan checks the backbone's own count
    "advice.small_images_per_class": (1, 10**7),
    "advice.similarity_threshold": (0.0, 1e6),
    "advice.sample_size": (8, 100_000),
    "train.epochs": (1, 100_000),
    "train.batch_size": (1, 65_536),
    "train.lr": (1e-6, 10.0),  # the GUI shows 6 decimals
    "train.momentum": (0.0, 0.999),
    "train.weight_decay": (0.0, 1.0),
    "train.warmup_epochs": (0.0, 1000.0),
    "train.unfreeze_after_epochs": (0, 100_000),  # 0: the slider's stages train from the start
    "train.early_stopping_patience": (0, 100_000),  # 0: off
    "train.label_smoothing": (0.0, 0.5),
    "train.limit_train_batches": (0, 10**9),
    "train.loss_tau": (0.0, 10.0),
    "train.ldam_margin": (0.01, 5.0),
    "train.drw_start": (0.0, 1.0),
    "train.crt_epochs": (0, 10_000),
    "train.gpus": (0, 1024),
    "train.seed": (-1, 2**32 - 1),  # -1: not seeded
}
# ULMFiT's discriminative fine-tuning divides the LR by 2.6 per layer group (Howard & Ruder 2018).
DEFAULT_LR_DECAY = round(1 / 2.6, 4)


@dataclass
class DataConfig:
    """Which dataset, how it is split and fed to the model."""

    path: str = ""  # a class-per-folder tree or a CSV manifest; "demo" means the bundled demo
    val_fraction: float = 0.2  # used only when the dataset has no validation split
    split_seed: int = 0
    min_class_count: int = 5  # classes with fewer training images are reported as a problem
    input_size: int = 0  # 0: the weights' own size; lower it for small images
    augment: str = "none"  # a preset of `Augment`; old configs' true / false: standard / none
    mixup: float = 0.0  # MixUp's alpha on training batches (0: off; 0.2 is the usual)
    cutmix: float = 0.0  # CutMix's alpha (0: off; 1.0 is the usual); with mixup, one per batch
    loss_weighting: str = "none"
    beta: float = 0.999  # for "effective_number" (Cui et al. 2019)
    sampling: str = "none"
    num_workers: int = -1  # -1: chosen from the CPU count, leaving one core to the GUI
    corrections: str = ""  # a label-corrections CSV (path,action,label) applied when opening
    # a CSV's image-path and label columns, when its header is not one the workbench recognises
    path_column: str = ""
    label_column: str = ""

    def validate(self) -> None:
        """Raise `UserError` on a value that cannot work."""
        _check_limit("data.val_fraction", self.val_fraction)
        _check_choice("data.augment", self.augment, AUGMENTS)
        _check_limit("data.mixup", self.mixup)
        _check_limit("data.cutmix", self.cutmix)
        _check_choice("data.loss_weighting", self.loss_weighting, LOSS_WEIGHTINGS)
        _check_choice("data.sampling", self.sampling, SAMPLINGS)
        _check_limit("data.beta", self.beta)
        _check_limit("data.input_size", self.input_size)
        _check_limit("data.min_class_count", self.min_class_count)
        _check_limit("data.split_seed", self.split_seed)
        if not _within("data.num_workers", self.num_workers):
            raise UserError(f"data.num_workers = {self.num_workers} is out of range: -1 "
                            f"(chosen from the CPU count) or 0 to "
                            f"{LIMITS['data.num_workers'][1]} loader processes")


@dataclass
class ModelConfig:
    """The backbone, its weights, and how much of it is frozen or fine-tuned."""

    backbone: str = "mobilenet_v2"
    # a torchvision weights name ("IMAGENET1K_V1", "DEFAULT"), "random", or a path to a .pth file
    weights: str = "DEFAULT"
    freeze_stages: int = 0  # the bottom k stages get no gradient and are not in the optimizer
    lr_decay: float = DEFAULT_LR_DECAY  # stage LR = base LR * lr_decay ** (distance from head)
    norm_policy: str = "train_bn"
    head: str = "linear"  # "svm" / "logreg": scikit-learn classifier on frozen pooled features
    feature_stage: int = -1  # stage whose pooled features feed an svm/logreg head; -1: the last

    def validate(self) -> None:
        """Raise `UserError` on a value that cannot work (the backbone is checked when built)."""
        if not self.backbone:
            raise UserError("model.backbone is empty: name a torchvision classification model")
        _check_limit("model.freeze_stages", self.freeze_stages)
        _check_limit("model.lr_decay", self.lr_decay)
        _check_choice("model.norm_policy", self.norm_policy, NORM_POLICIES)
        _check_choice("model.head", self.head, HEADS)
        # the backbone's own stage count is checked by the run plan; this bounds any backbone
        _check_limit("model.feature_stage", self.feature_stage)


@dataclass
class AdviceConfig:
    """Heuristic thresholds of the rule-of-thumb matrix; no paper fixes them, so they are editable.

    The defaults and how they were chosen: docs/advice-calibration.md.
    """

    small_images_per_class: int = 100  # median training images per class below this: "small"
    similarity_threshold: float = 0.12  # mean BN KL divergence above this: "dissimilar"
    sample_size: int = 256  # training images used to measure similarity

    def validate(self) -> None:
        """Raise `UserError` on a value that cannot work."""
        _check_limit("advice.small_images_per_class", self.small_images_per_class)
        _check_limit("advice.similarity_threshold", self.similarity_threshold)
        _check_limit("advice.sample_size", self.sample_size)


@dataclass
class TrainConfig:
    """Optimisation and the run itself."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.01  # the head's learning rate; stages get less (see ModelConfig.lr_decay)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    schedule: str = "warmup_cosine"  # or "one_cycle"
    # > 0: only the head trains for that many epochs, then the stages the slider leaves
    # trainable join at their own LRs (fastai's fine_tune, LP-FT)
    unfreeze_after_epochs: int = 0
    # > 0: end the run when validation balanced accuracy has not improved for that many epochs
    early_stopping_patience: int = 0
    label_smoothing: float = 0.0
    device: str = "auto"
    amp: bool = True  # mixed precision, CUDA only
    channels_last: bool = True  # CUDA only
    seed: int = 0  # -1: not seeded
    deterministic: bool = False
    limit_train_batches: int = 0  # 0: all; a cap for quick trials and tests
    out_dir: str = ""  # parent folder of the run directory; "" uses the default runs folder
    loss: str = "cross_entropy"
    loss_tau: float = 1.0  # "logit_adjusted": the weight of the log prior
    ldam_margin: float = 0.5  # "ldam_drw": the largest class margin (the rarest class's)
    drw_start: float = 0.8  # "ldam_drw": fraction of the epochs before re-weighting starts
    crt_epochs: int = 0  # > 0: re-train the classifier on frozen features, class-balanced (cRT)
    gpus: int = 0  # > 1: train on that many GPUs, one process each (torchrun); 0 or 1: one process

    def validate(self) -> None:
        """Raise `UserError` on a value that cannot work."""
        _check_limit("train.epochs", self.epochs)
        _check_limit("train.batch_size", self.batch_size)
        _check_choice("train.optimizer", self.optimizer, OPTIMIZERS)
        _check_limit("train.lr", self.lr)
        _check_limit("train.momentum", self.momentum)
        _check_limit("train.weight_decay", self.weight_decay)
        _check_limit("train.warmup_epochs", self.warmup_epochs)
        _check_choice("train.schedule", self.schedule, SCHEDULES)
        _check_limit("train.unfreeze_after_epochs", self.unfreeze_after_epochs)
        _check_limit("train.early_stopping_patience", self.early_stopping_patience)
        _check_limit("train.label_smoothing", self.label_smoothing)
        check_device(self.device)
        _check_limit("train.limit_train_batches", self.limit_train_batches)
        _check_choice("train.loss", self.loss, LOSSES)
        for key in ("loss_tau", "ldam_margin", "drw_start", "crt_epochs", "gpus"):
            _check_limit(f"train.{key}", getattr(self, key))
        if not _within("train.seed", self.seed):
            raise UserError(f"train.seed = {self.seed} is out of range: -1 (not seeded) or 0 "
                            f"to {LIMITS['train.seed'][1]}")


SECTIONS = ("data", "model", "advice", "train")
# Settings chosen for one dataset's images, imbalance and size: reset when another is opened.
DATASET_SETTINGS = ("data.input_size", "data.loss_weighting", "data.beta", "data.sampling",
                    "data.val_fraction", "data.split_seed", "data.min_class_count",
                    "data.corrections", "train.epochs")


@dataclass
class RunConfig:
    """Everything needed to repeat a run: saved by the GUI, read by `workbench train`."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    advice: AdviceConfig = field(default_factory=AdviceConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> RunConfig:
        """Validate every section; returns self so calls can chain."""
        for section in (self.data, self.model, self.advice, self.train):
            section.validate()
        return self

    def for_dataset(self, path: str) -> RunConfig:
        """This config for another dataset: the settings chosen for the previous one's images,
        imbalance and size (`DATASET_SETTINGS`) go back to their defaults, the rest is kept.

        Opening a dataset of photos after 28 px digits must not train at 64 px, nor with the
        epochs or loss weights a config saved for the digits asked for.
        """
        fresh = RunConfig()
        sections = {name: dataclasses.replace(getattr(self, name)) for name in SECTIONS}
        for key in DATASET_SETTINGS:
            section, name = key.split(".")
            setattr(sections[section], name, getattr(getattr(fresh, section), name))
        sections["data"].path = path
        return RunConfig(**sections)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict, as written to TOML."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """Build and validate; unknown sections or keys are errors (typos must not pass)."""
        sections = {f.name: f for f in fields(cls)}
        unknown = set(raw) - set(sections)
        if unknown:
            raise UserError(f"unknown config section [{_shown(sorted(unknown)[0])}]")
        hints = get_type_hints(cls)
        parts = {
            name: _section_from_dict(name, hints[name], raw.get(name, {})) for name in sections
        }
        return cls(**parts).validate()


def _section_from_dict(name: str, section_cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise UserError(f"config section [{name}] must be a table")
    hints = get_type_hints(section_cls)
    values = {}
    for key, value in raw.items():
        if key not in hints:
            raise UserError(f"unknown config key {name}.{_shown(key)}")
        value = LEGACY_VALUES.get(f"{name}.{key}", {}).get(_legacy_key(value), value)
        values[key] = _coerce(f"{name}.{key}", hints[key], value)
    return section_cls(**values)


# Values older configs wrote that now have a name: `data.augment` was an on/off switch for a
# random resized crop and flip, which is the "standard" preset.
LEGACY_VALUES: dict[str, dict[Any, Any]] = {
    "data.augment": {(bool, True): Augment.STANDARD.value, (bool, False): Augment.NONE.value},
}


def _legacy_key(value: Any) -> Any:
    # keyed with the type: True == 1 in Python, and a 1 must not pass for `true`
    return (type(value), value) if isinstance(value, bool) else None


def _shown(name: str) -> str:
    """A key as typed, or quoted with escapes when it holds line breaks or other controls (the
    error must stay one line)."""
    return name if name.isprintable() else repr(name)


def _coerce(key: str, expected: type, value: Any) -> Any:
    # TOML has no int/float distinction problem except 1 vs 1.0; accept ints for floats.
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is bool and not isinstance(value, bool):
        raise UserError(f"{key} must be true or false, not {_short_repr(value)}")
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise UserError(f"{key} must be a whole number, not {_short_repr(value)}")
    if not isinstance(value, expected):
        raise UserError(f"{key} must be a {expected.__name__}, not {_short_repr(value)}")
    return value


def _short_repr(value: Any, limit: int = 60) -> str:
    """A value as typed, cut short: a deeply nested array must not become a huge message (or a
    RecursionError inside repr)."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"a deeply nested {type(value).__name__}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_limit(key: str, value: float) -> None:
    low, high = LIMITS[key]
    _check_range(key, value, low, high)
    if key == "data.input_size" and 0 < value < MIN_INPUT_SIZE:
        raise UserError(f"{key} = {value} is too small: 0 (the weights' own size) or at least "
                        f"{MIN_INPUT_SIZE}")


def _within(key: str, value: float) -> bool:
    low, high = LIMITS[key]
    return low <= value <= high


def _check_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise UserError(f"{key} = {value} is out of range [{low}, {high}]")


def gpu_number(device: str) -> int | None:
    """N for a device named "cuda:N" (one GPU of several), else None."""
    match = re.fullmatch(r"cuda:(\d{1,4})", device)
    return int(match.group(1)) if match else None


def check_device(device: str) -> None:
    """`train.device`: one of `DEVICES`, or "cuda:N" naming one GPU."""
    if device not in DEVICES and gpu_number(device) is None:
        raise UserError(f"train.device = {device!r} is not one of {', '.join(DEVICES)} or "
                        "cuda:N (the GPU numbered N)")


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{key} = {value!r} is not one of {', '.join(choices)}")


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run config; `UserError` with one line when it is unusable."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config {path} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise UserError(f"config {path} nests arrays or tables too deeply to read") from None
    return absolute_paths(RunConfig.from_dict(raw), path.parent)


def save_config(config: RunConfig, path: str | Path) -> Path:
    """Write the config as TOML (atomically: a temp file, then a rename); paths inside the
    file's folder are written relative to it (`PATH_KEYS`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    portable = _map_paths(absolute_paths(config), lambda v: paths.relative_inside(path.parent, v))
    tmp.write_text(tomli_w.dumps(portable.to_dict()), encoding="utf-8")
    tmp.replace(path)
    return path


# Settings that name a file or folder. A saved config writes them relative to its own folder when
# they lie inside it (a project folder moves as one) and absolute otherwise (a config copied
# elsewhere alone still finds its dataset); loading resolves relative ones against the file's
# folder, so a run never depends on the working directory it was started from.
PATH_KEYS = ("data.path", "data.corrections", "model.weights", "train.out_dir")


def is_weights_file(spec: str) -> bool:
    """Whether a `model.weights` spec names a file rather than a torchvision weights entry."""
    return spec.endswith((".pth", ".pt", ".bin", ".ckpt")) or os.sep in spec or "/" in spec


def _is_path(key: str, value: str) -> bool:
    if not value or value.startswith("~"):  # "~" stays as typed: it means the same everywhere
        return False
    if key == "data.path":
        return value != "demo"
    return key != "model.weights" or is_weights_file(value)


def _map_paths(config: RunConfig, convert: Callable[[str], str]) -> RunConfig:
    """A copy of `config` with `convert` applied to each setting that names a path."""
    out = copy.deepcopy(config)
    for key in PATH_KEYS:
        section, name = key.split(".")
        part = getattr(out, section)
        if _is_path(key, getattr(part, name)):
            setattr(part, name, convert(getattr(part, name)))
    return out


def absolute_paths(config: RunConfig, base: str | Path | None = None) -> RunConfig:
    """A copy of `config` whose relative paths are made absolute against `base` (default: the
    working directory, which is what a relative path in memory means)."""
    return _map_paths(config, lambda value: paths.absolute_from(base, value))
