"""`SplitOptionsView`: how a dataset is split and judged, edited next to its histogram.

The validation fraction and seed apply only when the dataset has no validation split of its
own; "small class below" sets when a class is reported as too small to learn. Applying them
re-lists the dataset (cheap: nothing is decoded) with the new values. The spin boxes are bound
to the config through the one `ConfigBinder` (ranges from `config.LIMITS`, values shown as the
config changes); their edits are deferred until "Re-split", so the config never names a split
other than the one listed.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from workbench_ui.config_binder import ConfigBinder
from workbench_ui.state import AppState

_FRACTION_TIP = ("Share of each class's images drawn (stratified, seeded) for validation when "
                 "the dataset has no val split.")
_SEED_TIP = "Seed of that split: the same seed gives the same split."


class SplitOptionsView(QWidget):
    """Spin boxes for `data.val_fraction`, `data.split_seed`, `data.min_class_count`.

    Signals:
        applied(dict): the user asked to re-list with these `data` field values.
    """

    applied = Signal(dict)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.binder = ConfigBinder(state, self)
        self.val_fraction = QDoubleSpinBox(self)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setDecimals(2)
        self.val_fraction.setToolTip(_FRACTION_TIP)
        self.seed = QSpinBox(self)
        self.seed.setToolTip(_SEED_TIP)
        self.min_count = QSpinBox(self)
        self.min_count.setToolTip("Classes with fewer training images are listed as problems.")
        for key, box in (("val_fraction", self.val_fraction), ("split_seed", self.seed),
                         ("min_class_count", self.min_count)):
            self.binder.bind("data", key, box, deferred=True)
        self.apply_button = QPushButton("Re-split", self)
        self.apply_button.setToolTip("List the dataset again with these values")
        self.apply_button.clicked.connect(self._apply)
        for box in (self.val_fraction, self.seed, self.min_count):
            box.setMaximumWidth(90)
        self._lay_out()

    def _lay_out(self) -> None:
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for text, widget in (("Val fraction (when none given)", self.val_fraction),
                             ("seed", self.seed), ("small class below", self.min_count)):
            row.addWidget(QLabel(text, self))
            row.addWidget(widget)
        row.addWidget(self.apply_button)
        row.addStretch(1)

    def set_split_given(self, given: bool) -> None:
        """Grey out the split settings when the dataset brings its own validation split."""
        note = "Not used: this dataset has its own validation split."
        for box, tip in ((self.val_fraction, _FRACTION_TIP), (self.seed, _SEED_TIP)):
            box.setEnabled(not given)
            box.setToolTip(note if given else tip)

    def values(self) -> dict[str, float | int]:
        """The `data` fields as edited."""
        values = self.binder.pending("data")
        values["val_fraction"] = round(values["val_fraction"], 2)
        return values

    def _apply(self) -> None:
        self.applied.emit(self.values())
