"""Transfer settings: input size, the freeze / fine-tune slider, LRs, head and norm policy.

Every control is bound to its config field by the one `ConfigBinder` (ranges from the config's
own limits); the panel tells the view the backbone's stages, and the view holds no rule beyond
what is shown: which choices are allowed comes from the backbone and the weights.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.advice.norm import norm_hint
from workbench.config import DEFAULT_LR_DECAY, LIMITS, MIN_INPUT_SIZE, Head, ModelConfig, NormPolicy
from workbench.models.weights import RANDOM_SPECS
from workbench_ui.config_binder import ConfigBinder, choice_combo
from workbench_ui.vocabulary import HEAD_LABELS, NORM_POLICY_LABELS


def _hint(text: str, tooltip: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName("hint")  # grey, from the stylesheet
    label.setToolTip(tooltip)
    return label


class ModelSettingsView(QWidget):
    """Input size, slider (0..S), LR decay, base LR, head, feature stage and norm policy."""

    def __init__(self, binder: ConfigBinder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._binder = binder
        self._default_size = 224
        self._num_stages = 1
        # the dataset's measured BN divergence (None until measured): frozen BN is a poor fit
        # for fine-tuning on data far from ImageNet, and the hint says so
        self.measured_divergence: float | None = None
        self._build()
        self._connect()

    # -- building -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.input_size = QSpinBox(self)
        self.input_size.setSingleStep(16)
        self.input_size.setSuffix(" px")
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setPageStep(1)
        self.slider_label = QLabel(self)
        self.lr_decay = QDoubleSpinBox(self)
        self.lr_decay.setDecimals(4)
        self.lr_decay.setSingleStep(0.05)
        self.lr_decay.setToolTip("Stage LR = base LR x factor^(stages below the head). "
                                 f"Default 1/2.6 = {DEFAULT_LR_DECAY} (ULMFiT); 1 = uniform.")
        self.base_lr = QDoubleSpinBox(self)
        self.base_lr.setDecimals(6)  # as the Train tab's box: both take the config's range
        self.base_lr.setSingleStep(0.001)
        self.base_lr.setToolTip("The head's learning rate; stages below get less.")
        self.head = choice_combo(HEAD_LABELS, self)
        self.feature_stage = QComboBox(self)  # "last stage", then "3 · block3", ...
        self.feature_stage.setToolTip("The stage whose pooled features feed a logistic "
                                      "regression / SVM head.")
        self.norm = choice_combo(NORM_POLICY_LABELS, self)
        for combo in (self.head, self.feature_stage, self.norm):
            # a long choice must not set the column's width: the window fits 1024 px
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        self.stage_notice = QLabel(self)  # unfrozen stages that the head never trains
        self.stage_notice.setWordWrap(True)
        self.stage_notice.setStyleSheet("color: #b35c00;")
        self.stage_notice.hide()
        self.norm_hint = QLabel(self)
        self.norm_hint.setWordWrap(True)
        self._lay_out()

    def _lay_out(self) -> None:
        # the slider gets the whole width: its end labels no longer fight the form's label column
        ends = QHBoxLayout()
        ends.setContentsMargins(0, 0, 0, 0)
        ends.addWidget(_hint("◂ fine-tune all", "0: every stage trains", self))
        ends.addStretch(1)
        ends.addWidget(_hint("linear probe ▸", "all stages frozen: only the head trains", self))
        slider_box = QVBoxLayout()
        slider_box.setSpacing(0)
        slider_box.addWidget(self.slider)
        slider_box.addLayout(ends)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Input size", self.input_size)
        form.addRow("Freeze stages", self.slider_label)
        form.addRow(slider_box)
        form.addRow(self.stage_notice)
        form.addRow("Per-stage LR factor", self.lr_decay)
        form.addRow("Base LR (head)", self.base_lr)
        form.addRow("Head", self.head)
        form.addRow("Feature stage", self.feature_stage)
        form.addRow("Normalization", self.norm)
        form.addRow(self.norm_hint)

    def _connect(self) -> None:
        bind = self._binder.bind
        # the weights' own size is stored as 0, so a saved config follows the weights
        bind("data", "input_size", self.input_size, to_widget=lambda v: v or self._default_size,
             from_widget=lambda v: 0 if v == self._default_size else v)
        self.input_size.setRange(MIN_INPUT_SIZE, int(LIMITS["data.input_size"][1]))
        bind("model", "freeze_stages", self.slider)
        bind("model", "lr_decay", self.lr_decay, from_widget=lambda v: round(float(v), 4))
        bind("train", "lr", self.base_lr)
        bind("model", "head", self.head)
        bind("model", "feature_stage", self.feature_stage)
        bind("model", "norm_policy", self.norm)

    # -- showing ------------------------------------------------------------------------------
    def show_config(self, config: Any, backbone: Any, num_stages: int,
                    stage_names: list[str] | None = None) -> None:
        """Show a `RunConfig` for a backbone (`BackboneInfo`) with `num_stages` stages
        (named `stage_names`, bottom to top, when known)."""
        widgets = (self.slider, self.feature_stage)
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            self._show(config, backbone, num_stages)
            self._show_feature_stage(config.model, num_stages, stage_names or [])
            self._show_stage_notice(config.model, num_stages, stage_names or [])
        finally:
            for widget, was in zip(widgets, blocked, strict=True):
                widget.blockSignals(was)
        self._binder.refresh()  # the slider's range and the stage list changed: values again

    def _show(self, config: Any, backbone: Any, num_stages: int) -> None:
        model: ModelConfig = config.model
        self._num_stages = num_stages
        self._default_size = int(getattr(backbone, "input_size", 0) or 224)
        self.input_size.setToolTip(f"The weights were trained at {self._default_size} px; "
                                   "lower it for small images (faster, same accuracy).")
        self.slider.setRange(0, num_stages)
        # the run plan has fitted the config to the backbone before it is shown
        self.slider_label.setText(f"{model.freeze_stages} of {num_stages} stages frozen")
        self._show_norm(config, backbone)

    def _show_feature_stage(self, model: ModelConfig, num_stages: int,
                            names: list[str]) -> None:
        self.feature_stage.clear()
        self.feature_stage.addItem("last stage", -1)
        for index in range(num_stages):
            name = names[index] if index < len(names) else ""
            self.feature_stage.addItem(f"{index} · {name}" if name else str(index), index)
        self.feature_stage.setEnabled(Head(model.head).fitted_once)

    def _show_stage_notice(self, model: ModelConfig, num_stages: int,
                           names: list[str]) -> None:
        """Say so when the slider unfreezes stages that a fitted-once head never trains (a
        probe trial applied, then the slider moved)."""
        head = Head(model.head)
        if not head.fitted_once or model.freeze_stages >= num_stages or not num_stages:
            self.stage_notice.hide()
            return
        stage = model.feature_stage % num_stages
        name = names[stage] if stage < len(names) else f"stage {stage}"
        unused = (f"; the stages after {name} are not used" if stage < num_stages - 1 else "")
        self.stage_notice.setText(
            f"⚠ The {HEAD_LABELS[head]} head is fitted once on {name}'s pooled features: the "
            f"backbone does not train, so the {num_stages - model.freeze_stages} unfrozen "
            f"stage(s) change nothing{unused}. Pick the linear layer head to fine-tune them.")
        self.stage_notice.show()

    def _show_norm(self, config: Any, backbone: Any) -> None:
        model: ModelConfig = config.model
        norm_type = str(getattr(backbone, "norm_type", "batchnorm"))
        has_bn = "batch" in norm_type.lower()
        items = self.norm.model()
        assert isinstance(items, QStandardItemModel)
        random_init = model.weights.lower() in RANDOM_SPECS
        for row, value in enumerate(NORM_POLICY_LABELS):
            allowed = has_bn and (value != NormPolicy.GROUP_NORM or random_init)
            items.item(row).setEnabled(allowed)
        self.norm.setEnabled(has_bn)
        hint = norm_hint(norm_type, model.norm_policy, config.train.batch_size,
                         trains_backbone=model.freeze_stages < self._num_stages,
                         divergence=self.measured_divergence,
                         threshold=config.advice.similarity_threshold)
        text = html.escape(hint.text)
        self.norm_hint.setText(f"<b>{text}</b>" if hint.warning else text)
        self.norm_hint.setToolTip("GroupNorm only from random init: pretrained BatchNorm weights "
                                  "do not map onto it. SyncBatchNorm syncs across GPUs in a run "
                                  "over several of them; in one process it is ordinary "
                                  "BatchNorm." if has_bn else "")
