"""The training options that live on the Train tab (the Model tab holds backbone and freezing)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QSpinBox,
    QWidget,
)

from workbench.devices import device_available, gpu_names
from workbench_ui.config_binder import ConfigBinder, choice_combo
from workbench_ui.state import AppState
from workbench_ui.vocabulary import (
    AUGMENT_LABELS,
    DEVICE_LABELS,
    OPTIMIZER_LABELS,
    SCHEDULE_LABELS,
)

ALL_GPUS = "all-gpus"  # the device menu's "All N GPUs": train.device "cuda", train.gpus N


def _spin(*, special: str = "") -> QSpinBox:
    """A spin box; the binder gives it the config's range."""
    spin = QSpinBox()
    spin.setRange(-1, 2**31 - 1)  # for fields without a limit of their own (the seed)
    if special:
        spin.setSpecialValueText(special)  # shown at the minimum, e.g. "not seeded" for -1
    return spin


def _float_spin(step: float, decimals: int) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)  # before the range, which Qt rounds to these decimals
    spin.setSingleStep(step)
    return spin


class TrainOptionsView(QGroupBox):
    """Epochs, batch size, optimizer, learning rate, schedule (warm-up, one-cycle, head-first
    epochs, early stopping), device, augmentation (preset, MixUp, CutMix, label smoothing) and
    seed."""

    def __init__(self, state: AppState, binder: ConfigBinder,
                 parent: QWidget | None = None) -> None:
        super().__init__("Training", parent)
        form = QFormLayout(self)
        self.epochs = binder.bind("train", "epochs", _spin())
        self.batch_size = binder.bind("train", "batch_size", _spin())
        self.optimizer = binder.bind("train", "optimizer", choice_combo(OPTIMIZER_LABELS))
        self.lr = binder.bind("train", "lr", _float_spin(0.001, 6))
        self.warmup = binder.bind("train", "warmup_epochs", _float_spin(0.5, 1))
        self.schedule = binder.bind("train", "schedule", choice_combo(SCHEDULE_LABELS))
        self.unfreeze_after = binder.bind("train", "unfreeze_after_epochs",
                                          _spin(special="off"))
        self.patience = binder.bind("train", "early_stopping_patience", _spin(special="off"))
        self.device = self._device_menu(state, binder, gpu_names())
        self.augment = binder.bind("data", "augment", choice_combo(AUGMENT_LABELS))
        self.mixup = binder.bind("data", "mixup", _float_spin(0.1, 2))
        self.cutmix = binder.bind("data", "cutmix", _float_spin(0.1, 2))
        self.label_smoothing = binder.bind("train", "label_smoothing", _float_spin(0.05, 2))
        self.seed = binder.bind("train", "seed", _spin(special="not seeded"))
        self.epochs.setToolTip("Passes over the training split")
        self.lr.setToolTip("The head's learning rate; lower stages get less (Model tab)")
        self.warmup.setToolTip("Epochs of linear warm-up before the cosine schedule (one-cycle: "
                               "the epochs of its rise)")
        self.schedule.setToolTip("How the learning rate moves over the run, every batch: a "
                                 "linear warm-up then a cosine decay, or Smith's one-cycle")
        self.unfreeze_after.setToolTip("Train only the new head for this many epochs, then the "
                                       "stages the Model tab's slider leaves trainable join at "
                                       "their own learning rates (fastai's fine_tune, LP-FT)")
        self.patience.setToolTip("End the run when validation balanced accuracy has not "
                                 "improved for this many epochs (best.pt keeps the best)")
        self.augment.setToolTip("Random crops and flips of the training images (strong adds "
                                "TrivialAugment and erasing); any augmentation turns off the "
                                "frozen-feature cache")
        self.mixup.setToolTip("MixUp's alpha: blend pairs of training images and their labels "
                              "(0: off; 0.2 is usual)")
        self.cutmix.setToolTip("CutMix's alpha: paste a patch of another image, labels shared "
                               "by area (0: off; 1.0 is usual); with MixUp, one per batch")
        self.label_smoothing.setToolTip("Share of the target spread over all classes (0: off; "
                                        "0.1 is usual)")
        for label, widget in (("Epochs", self.epochs), ("Batch size", self.batch_size),
                              ("Optimizer", self.optimizer), ("Learning rate", self.lr),
                              ("Warm-up epochs", self.warmup), ("LR schedule", self.schedule),
                              ("Head-only epochs", self.unfreeze_after),
                              ("Early-stop patience", self.patience), ("Device", self.device),
                              ("Augmentation", self.augment), ("MixUp", self.mixup),
                              ("CutMix", self.cutmix), ("Label smoothing", self.label_smoothing),
                              ("Seed", self.seed)):
            form.addRow(label, widget)

    @classmethod
    def _device_menu(cls, state: AppState, binder: ConfigBinder, gpus: list[str]) -> QComboBox:
        """The devices, each GPU found, and "All N GPUs" (a torchrun subprocess, one process per
        GPU); bound to train.device and train.gpus together."""
        combo = cls._device_combo()
        at = combo.findData("cuda") + 1
        for number, name in enumerate(gpus):
            combo.insertItem(at + number, f"GPU {number}: {name}", f"cuda:{number}")
        if len(gpus) > 1:
            combo.insertItem(at + len(gpus), f"All {len(gpus)} GPUs", ALL_GPUS)
            combo.setItemData(at + len(gpus), "One process per GPU, started through torchrun; "
                              "cached features and scikit-learn heads train in one process",
                              Qt.ItemDataRole.ToolTipRole)

        def choose(row: int) -> None:  # connected before the binder's own commit: one update
            data = combo.itemData(row)
            gpus_wanted = len(gpus) if data == ALL_GPUS else 0
            device = "cuda" if data == ALL_GPUS else data
            train = state.config.train
            if (train.device, train.gpus) != (device, gpus_wanted):
                state.update_config(train={"device": device, "gpus": gpus_wanted})

        combo.currentIndexChanged.connect(choose)
        return binder.bind(
            "train", "device", combo,
            to_widget=lambda device: ALL_GPUS if state.config.train.gpus > 1 else device,
            from_widget=lambda data: "cuda" if data == ALL_GPUS else data)

    @staticmethod
    def _device_combo() -> QComboBox:
        combo = choice_combo(DEVICE_LABELS)
        model = combo.model()
        for row in range(combo.count()):
            if not device_available(combo.itemData(row)):
                # listed but greyed out, so the user sees why the GPU is not used
                model.item(row).setEnabled(False)
                combo.setItemText(row, combo.itemText(row) + " (not available)")
        return combo
