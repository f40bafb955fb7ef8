"""Two-way binding between form widgets and fields of `AppState.config`.

A `ConfigBinder` writes a widget's value into the config when the user edits it, and puts the
config's values back into the widgets when the config changes elsewhere (a config file opened, the
Model tab, a strategy applied), with the widgets' signals blocked so no edit loops back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QAbstractSlider,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QSpinBox,
    QWidget,
)

from workbench.config import LIMITS
from workbench.errors import UserError
from workbench_ui.state import AppState


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Binding:
    """One widget bound to `config.<section>.<key>`."""

    section: str
    key: str
    widget: QWidget
    to_widget: Callable[[Any], Any] = _same  # config value -> what the widget shows
    from_widget: Callable[[Any], Any] = _same  # what the widget holds -> config value
    deferred: bool = False  # written by the caller through `pending` (e.g. one "Apply")


def read_widget(widget: QWidget) -> Any:
    """The value a form widget holds, typed as the config expects it."""
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QSpinBox | QDoubleSpinBox | QAbstractSlider):
        return widget.value()
    raise TypeError(f"cannot bind a {type(widget).__name__}")


def write_widget(widget: QWidget, value: Any) -> None:
    """Show `value` in a form widget (signals must be blocked by the caller)."""
    if isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QComboBox):
        position = widget.findData(value)
        if position >= 0:
            widget.setCurrentIndex(position)
    elif isinstance(widget, QSpinBox | QDoubleSpinBox | QAbstractSlider):
        widget.setValue(value)


def apply_limits(widget: QWidget, key: str) -> QWidget:
    """Give a spin box the range the config allows for `key` ("section.field"), so a widget can
    never offer a value that validation refuses."""
    if key in LIMITS and isinstance(widget, QSpinBox | QDoubleSpinBox):
        low, high = LIMITS[key]
        if isinstance(widget, QSpinBox):
            widget.setRange(int(max(low, -(2**31))), int(min(high, 2**31 - 1)))
        else:
            widget.setRange(low, high)
    return widget


def choice_combo(labels: Mapping[str, str], parent: QWidget | None = None) -> QComboBox:
    """A combo box whose items show `labels` values and carry their keys (the config's plain
    strings, e.g. an enum member's value) as data."""
    combo = QComboBox(parent)
    for value, label in labels.items():
        combo.addItem(label, str(value))
    return combo


def _changed_signal(widget: QWidget) -> Any:
    if isinstance(widget, QCheckBox):
        return widget.toggled
    if isinstance(widget, QComboBox):
        return widget.currentIndexChanged
    return widget.valueChanged  # spin boxes and sliders


class ConfigBinder(QObject):
    """Keeps a set of widgets and the state's config in step.

    Signals:
        rejected(str): an edit failed validation; the widgets show the config's value again.
    """

    rejected = Signal(str)

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._bindings: list[Binding] = []
        state.config_changed.connect(self.refresh)

    def bind(self, section: str, key: str, widget: QWidget, *,
             to_widget: Callable[[Any], Any] = _same,
             from_widget: Callable[[Any], Any] = _same, deferred: bool = False) -> QWidget:
        """Bind `widget` to `config.<section>.<key>`; returns the widget for inline use.

        A spin box gets the range the config allows (`workbench.config.LIMITS`); `to_widget` and
        `from_widget` convert when the widget shows a value differently (e.g. 0 px meaning "the
        weights' own size" shown as that size). A `deferred` widget shows the config's value
        but an edit is not written at once: the caller applies `pending()` when the user
        confirms (settings that take effect together, like the split and a re-listing).
        """
        apply_limits(widget, f"{section}.{key}")
        binding = Binding(section, key, widget, to_widget, from_widget, deferred)
        self._bindings.append(binding)
        self._show(binding)
        if not deferred:
            _changed_signal(widget).connect(lambda *_: self._commit(binding))
        return widget

    def pending(self, section: str) -> dict[str, Any]:
        """The values the deferred widgets of `section` hold, by config key."""
        return {b.key: b.from_widget(read_widget(b.widget)) for b in self._bindings
                if b.deferred and b.section == section}

    def _commit(self, binding: Binding) -> None:
        value = binding.from_widget(read_widget(binding.widget))
        if getattr(getattr(self._state.config, binding.section), binding.key) == value:
            return
        try:
            self._state.update_config(**{binding.section: {binding.key: value}})
        except UserError as exc:
            self.refresh()
            self.rejected.emit(str(exc))

    def refresh(self) -> None:
        """Show the config's current values in every bound widget."""
        for binding in self._bindings:
            self._show(binding)

    def _show(self, binding: Binding) -> None:
        value = getattr(getattr(self._state.config, binding.section), binding.key)
        blocked = binding.widget.blockSignals(True)
        try:
            write_widget(binding.widget, binding.to_widget(value))
        finally:
            binding.widget.blockSignals(blocked)

    def set_enabled(self, enabled: bool) -> None:
        """Enable or disable every bound widget (options are fixed while a run trains)."""
        for binding in self._bindings:
            binding.widget.setEnabled(enabled)
