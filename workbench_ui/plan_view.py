"""What the next run will do: the run plan's summary, its fixes, warnings and suggestions.

The plan is the core's (`AppState.plan`, from `workbench.plan.plan_run`); this view only shows
it, on the Model tab under the transfer settings and on the Train tab above Start, so the user
sees what will actually run where they are looking. A suggested input size comes with a button
that applies it.
"""

from __future__ import annotations

import html

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from workbench.errors import UserError
from workbench_ui.state import AppState

WARNING_COLOUR = "#a15c00"
ERROR_COLOUR = "#b3261e"


class PlanView(QWidget):
    """The plan of the next run, redrawn whenever the config, the dataset or the stages change.

    `refresh()` is public: the Model tab calls it once a backbone's skeleton is built.
    """

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setObjectName("plan")
        self.use_size = QPushButton(self)
        self.use_size.hide()
        self.use_size.clicked.connect(self._apply_suggested_size)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.use_size)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addLayout(row)
        state.config_changed.connect(self.refresh)
        state.dataset_changed.connect(self.refresh)
        state.running_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Show the state's current plan (or why there is none)."""
        plan = self._state.plan
        if plan is None:
            error = self._state.plan_error
            self.label.setText(f"<span style='color:{ERROR_COLOUR}'>{html.escape(error)}</span>"
                               if error else "<i>Planning the run…</i>")
            self.use_size.hide()
            return
        lines = [f"<b>Next run:</b> {html.escape(plan.summary()[0])}"]
        if self._state.plan_error:
            lines.append(f"<span style='color:{ERROR_COLOUR}'>"
                         f"{html.escape(self._state.plan_error)}</span>")
        lines += [f"<span style='color:{WARNING_COLOUR}'>⚠ {html.escape(w)}</span>"
                  for w in plan.warnings]
        lines += [f"<span style='color:#555'>ℹ {html.escape(n)}</span>" for n in plan.notes]
        self.label.setText("<br>".join(lines))
        size = plan.size_to_apply
        offer = bool(size) and not self._state.running
        self.use_size.setVisible(offer)
        if offer:
            self.use_size.setText(f"Use {size} px")

    def _apply_suggested_size(self) -> None:
        plan = self._state.plan
        if plan is None or not plan.size_to_apply:
            return
        try:
            self._state.update_config(data={"input_size": plan.size_to_apply})
        except UserError as exc:
            self._state.message.emit(str(exc))
