"""Label-imbalance handling, shown next to the numbers that call for it."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QSpinBox, QWidget

from workbench.data.stats import SHOT_BANDS
from workbench_ui.config_binder import ConfigBinder, choice_combo
from workbench_ui.state import AppState
from workbench_ui.vocabulary import LOSS_LABELS, LOSS_WEIGHTING_LABELS, SAMPLING_LABELS


def describe_imbalance(stats: Any) -> str:
    """One line: the imbalance ratio and how many classes fall in each shot band."""
    if stats is None:
        return "No dataset open"
    counts = ", ".join(f"{len(stats.bands.get(b, []))} {b}" for b in SHOT_BANDS)
    return f"Imbalance ratio {stats.imbalance_ratio:.1f} : 1  ({counts}-shot classes)"


class ImbalanceView(QGroupBox):
    """The imbalance ratio and shot bands, with loss weighting (and its beta) and sampling."""

    def __init__(self, state: AppState, binder: ConfigBinder,
                 parent: QWidget | None = None) -> None:
        super().__init__("Label imbalance", parent)
        self._state = state
        form = QFormLayout(self)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        weighting = choice_combo(LOSS_WEIGHTING_LABELS)
        self.loss_weighting = binder.bind("data", "loss_weighting", weighting)
        self.beta = binder.bind("data", "beta", _beta_spin())
        self.sampling = binder.bind("data", "sampling", choice_combo(SAMPLING_LABELS))
        self.loss_weighting.setToolTip("Weights the loss of each class by how rare it is")
        self.beta.setToolTip("Effective number (1 - beta^n) / (1 - beta), Cui et al. 2019; "
                             "0.9-0.9999, closer to 1 weights rare classes more")
        self.sampling.setToolTip("Draws batches so that rare classes are seen more often")
        form.addRow(self.summary)
        form.addRow("Loss weighting", self.loss_weighting)
        form.addRow("Beta", self.beta)
        form.addRow("Sampling", self.sampling)
        self._add_long_tail_rows(form, binder)
        self._enabled = True
        state.dataset_changed.connect(self.refresh)
        state.config_changed.connect(self._update_beta)
        self.refresh()

    def _add_long_tail_rows(self, form: QFormLayout, binder: ConfigBinder) -> None:
        """The long-tail loss, its tau, and classifier re-training (cRT) epochs."""
        self.loss = binder.bind("train", "loss", choice_combo(LOSS_LABELS))
        self.loss.setToolTip("Logit-adjusted: logits + tau * log prior while training; LDAM-DRW: "
                             "larger margins for rare classes, re-weighted late in the run")
        tau = QDoubleSpinBox()
        tau.setSingleStep(0.1)
        self.loss_tau = binder.bind("train", "loss_tau", tau)
        self.loss_tau.setToolTip("The logit-adjusted loss's weight of the log prior (1: Menon et "
                                 "al.'s choice)")
        self.crt_epochs = binder.bind("train", "crt_epochs", QSpinBox())
        self.crt_epochs.setToolTip("After training: re-train the classifier for this many "
                                   "epochs on the frozen features with class-balanced sampling "
                                   "(cRT, Kang et al. 2020); 0: off")
        form.addRow("Loss", self.loss)
        form.addRow("Loss tau", self.loss_tau)
        form.addRow("cRT epochs", self.crt_epochs)

    def refresh(self, *_: Any) -> None:
        """Show the open dataset's imbalance numbers."""
        try:
            self.summary.setText(describe_imbalance(self._state.stats))
        except Exception as exc:  # a broken listing must not take the panel down
            self.summary.setText(f"Imbalance unknown: {exc}")
        self._update_beta()

    def set_editable(self, enabled: bool) -> None:
        """Allow or forbid edits (forbidden while a run trains)."""
        self._enabled = enabled
        for widget in (self.loss_weighting, self.sampling, self.loss, self.loss_tau,
                       self.crt_epochs):
            widget.setEnabled(enabled)
        self._update_beta()

    def _update_beta(self) -> None:
        # beta only means something for the effective-number weighting
        effective = self._state.config.data.loss_weighting == "effective_number"
        self.beta.setEnabled(self._enabled and effective)
        adjusted = self._state.config.train.loss == "logit_adjusted"
        self.loss_tau.setEnabled(self._enabled and adjusted)


def _beta_spin() -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(6)  # the binder sets the config's range, up to 0.999999
    spin.setSingleStep(0.0005)
    return spin
