"""The Model tab: backbone, weights, freeze / fine-tune settings, stage diagram and the matrix.

Every control writes into `state.config` (model, data.input_size, train.lr, advice thresholds)
through `AppState.update_config`, and every view is redrawn from the config on `config_changed`,
so the slider, the stage diagram, the matrix and a saved config can never disagree. The numbers
come from the core: the registry, `TransferModel.stage_summary` and `workbench.advice`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.advice.matrix import CELLS, apply_strategy, cell_for_config, strategy_for
from workbench.config import ModelConfig
from workbench.errors import UserError
from workbench.models.memory import activation_elements
from workbench.models.registry import backbone_info, list_backbones
from workbench.models.transfer import build_skeleton
from workbench.models.weights import RANDOM_SPECS, imagenet_weights, preferred_weights
from workbench.plan import remember_stages
from workbench_ui.backbone_view import BackboneView
from workbench_ui.config_binder import ConfigBinder
from workbench_ui.model_advice_view import AdviceView
from workbench_ui.model_settings_view import ModelSettingsView
from workbench_ui.plan_view import PlanView
from workbench_ui.stage_view import StageView
from workbench_ui.state import AppState
from workbench_ui.weights_view import WeightsView
from workbench_ui.workers import GeneratorWorker


def build_skeleton_events(backbone: str) -> Iterator[Any]:
    """The worker's generator: the weightless model, for the stage diagram. The backbone's
    activation size is measured first (once, on the meta device), so the plan made from the
    skeleton's stages can warn when a step would not fit in memory."""
    activation_elements(backbone)
    yield build_skeleton(backbone)


def _norm_name(norm_type: str) -> str:
    """How the stage caption and the matrix name a backbone's normalization layers."""
    return {"batchnorm": "BatchNorm", "layernorm": "LayerNorm"}.get(norm_type, "no norm layers")


def _group(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 6, 6, 6)
    layout.addWidget(widget)
    return box


def _column(*widgets: QWidget) -> QWidget:
    """Widgets stacked in a margin-less column, the first one stretching."""
    column = QWidget()
    layout = QVBoxLayout(column)
    layout.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if i == 0 else 0)
    return column


class _ColumnScroll(QScrollArea):
    """A frameless vertical scroll area as wide as its widget needs: it scrolls when the window
    is too short for the column, and never squeezes the column's width."""

    def __init__(self, widget: QWidget) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(widget)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        """The widget's minimum width (and a scroll bar's), a few lines' height."""
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(self.widget().minimumSizeHint().width() + bar, 120)


class ModelPanel(QWidget):
    """The Model tab; built with the shared `AppState` (the main window calls `shutdown`)."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.model: Any = None  # the TransferModel skeleton of the current backbone
        self._info: Any = None
        self._build_worker: GeneratorWorker | None = None
        self._picked: str | None = None  # a backbone the user just picked in the table
        self._make_views()
        self._lay_out()
        self._connect()
        self._fill_backbones()
        self._prefer_weights_on_disk()
        self._on_config_changed()
        self._on_dataset_changed(state.index)

    # -- building -----------------------------------------------------------------------------
    def _make_views(self) -> None:
        self.backbones = BackboneView(self)
        self.weights = WeightsView(self)
        self.binder = ConfigBinder(self.state, self)
        self.binder.rejected.connect(lambda msg: QMessageBox.warning(self, "Invalid setting", msg))
        self.settings = ModelSettingsView(self.binder, self)
        self.stages = StageView(self)
        self.advice = AdviceView(self)
        self.matrix = self.advice.matrix
        self.plan_view = PlanView(self.state, self)

    def _lay_out(self) -> None:
        # the stages sit under the backbone they belong to, where the table leaves room; the
        # columns keep small minimums so that the window fits 1024x700 (a column that cannot
        # shrink further scrolls rather than overlapping its neighbour)
        stage_scroll = QScrollArea(self)
        stage_scroll.setWidgetResizable(True)
        stage_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        stage_scroll.setWidget(self.stages)
        left = QSplitter(Qt.Orientation.Vertical, self)
        left.addWidget(_column(_group("Backbone (torchvision)", self.backbones),
                               _group("Weights", self.weights)))
        left.addWidget(_group("Stages", stage_scroll))
        left.setChildrenCollapsible(False)
        left.setSizes([330, 370])  # every stage of a typical backbone at full height
        middle = _column(_group("Transfer", self.settings), _group("Next run", self.plan_view))
        middle.layout().addStretch(1)
        splitter = QSplitter(self)
        splitter.setChildrenCollapsible(False)
        for widget in (left, _ColumnScroll(middle), _group("Rule-of-thumb matrix", self.advice)):
            splitter.addWidget(widget)
        splitter.setStretchFactor(2, 1)  # the matrix takes what is left
        splitter.setSizes([450, 320, 510])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def _connect(self) -> None:
        self.state.config_changed.connect(self._on_config_changed)
        self.state.dataset_changed.connect(self._on_dataset_changed)
        self.state.running_changed.connect(lambda running: self.set_editable(not running))
        self.backbones.backbone_selected.connect(self._on_backbone_selected)
        self.weights.weights_chosen.connect(self._on_weights_chosen)
        self.weights.downloaded.connect(self._on_downloaded)
        self.advice.thresholds_edited.connect(lambda changes: self._edit("advice", changes))
        self.advice.cell_clicked.connect(self.apply_cell)
        self.advice.measure_requested.connect(self.measure)
        self.advice.report_ready.connect(self._on_report)
        self.advice.trial_chosen.connect(self.apply_trial)

    def _fill_backbones(self) -> None:
        infos = list_backbones()
        on_disk = {i.name for i in infos if any(e.cached for e in imagenet_weights(i.name))}
        self.backbones.set_backbones(infos, on_disk)

    def _prefer_weights_on_disk(self) -> None:
        # "DEFAULT" means "pretrained": use weights already on disk rather than a download
        model = self.state.config.model
        if model.weights == "DEFAULT":
            preferred = preferred_weights(model.backbone)
            if preferred != "DEFAULT":
                self._edit("model", {"weights": preferred})

    # -- the user's intent --------------------------------------------------------------------
    def _edit(self, section: str, changes: Any) -> None:
        try:
            self.state.update_config(**{section: changes})
        except UserError as exc:
            QMessageBox.warning(self, "Invalid setting", str(exc))
            self._on_config_changed()  # show the config as it still is

    def apply_cell(self, cell: str) -> None:
        """Apply a matrix cell's strategy: slider, head, feature stage, LR decay, norm policy."""
        if self.model is None or cell not in CELLS:
            return
        probe = getattr(self.advice.report, "probe", None)
        strategy = strategy_for(cell, self.model.num_stages, probe=probe)
        self._edit("model", apply_strategy(strategy, self.state.config.model))
        self._use_suggested_size()
        self.advice.show_strategy(strategy.title, strategy.explanation)

    def apply_trial(self, trial: Any) -> None:
        """Apply a measured trial by the advisor's one rule (`apply_settings`): slider, head,
        feature stage, LRs, norm policy, input size, and LP-FT's head-first epochs."""
        from workbench.advice.trials.report import apply_settings  # torch: not at first paint

        try:  # one change, one config_changed
            self.state.set_config(apply_settings(trial.settings(), self.state.config))
        except UserError as exc:
            QMessageBox.warning(self, "Invalid setting", str(exc))
            return
        self.state.message.emit(f"Applied trial: {trial.name}")

    def _use_suggested_size(self) -> None:
        """Small images gain nothing from the weights' 224 px: a strategy applied by a click
        comes with the plan's input size for them (unless the user chose a size)."""
        plan = self.state.plan
        if plan is not None and plan.size_to_apply:
            self._edit("data", {"input_size": plan.size_to_apply})

    def measure(self) -> None:
        """Measure where the open dataset sits on the matrix (in a worker)."""
        if self.state.index is None:
            QMessageBox.information(self, "No dataset", "Open a dataset first (File ▸ Open).")
            return
        self.advice.measure(self.state.index, self.state.config)

    def _on_backbone_selected(self, name: str) -> None:
        if name == self.state.config.model.backbone:
            return
        self._picked = name  # its settings are adapted to it quietly (the slider shows it)
        self._edit("model", {"backbone": name, "weights": preferred_weights(name)})

    def _on_weights_chosen(self, spec: str) -> None:
        changes: dict[str, Any] = {"weights": spec}
        if spec not in RANDOM_SPECS and self.state.config.model.norm_policy == "group_norm":
            changes["norm_policy"] = "train_bn"  # pretrained BN weights do not map onto GN
        self._edit("model", changes)

    def _on_downloaded(self, name: str) -> None:
        self.backbones.set_cached(name, True)
        self.weights.show_weights(self._info, self.state.config.model.weights)

    def _on_report(self, report: Any) -> None:
        self.state.message.emit(f"Suggested cell: {report.cell} ({report.strategy.title})")
        self.settings.measured_divergence = report.similarity.get("bn_divergence")
        if self.model is not None:
            self._show_model()  # the norm hint now knows how far the data is from ImageNet

    # -- watching the state -------------------------------------------------------------------
    def _on_dataset_changed(self, _index: Any) -> None:
        self.advice.cancel()  # a report on the previous dataset would be misleading
        self.advice.clear_report()
        self._forget_divergence()
        if self.model is not None:
            self._show_model()  # the head's size follows the dataset's classes

    def _forget_divergence(self) -> None:
        """The dataset's size still places it; its measured similarity no longer does."""
        self.settings.measured_divergence = None
        stats = self.state.stats
        median = stats.images_per_class["median"] if stats is not None else None
        self.matrix.set_point(median, None)

    def _on_config_changed(self) -> None:
        config = self.state.config
        name = config.model.backbone
        if self._info is None or self._info.name != name:
            try:
                self._switch_backbone(name)
            except UserError as exc:  # e.g. a config naming a backbone this torchvision lacks
                self._reject_backbone(str(exc))
                return
        self.weights.show_weights(self._info, config.model.weights)
        self.advice.show_thresholds(config.advice)
        if self.model is not None and not self._fit_config_to_model(quiet=False):
            self._show_model()

    def _reject_backbone(self, reason: str) -> None:
        """A config named a backbone that cannot be built: say so, and keep the previous one."""
        keep = self._info.name if self._info is not None else ModelConfig().backbone
        self.state.message.emit(reason)
        QMessageBox.warning(self, "Unknown backbone", f"{reason}. Keeping {keep}.")
        self._edit("model", {"backbone": keep})

    def _fit_config_to_model(self, quiet: bool) -> bool:
        """Apply the run plan's fixes (settings this backbone cannot take); True when any.

        Out-of-range values come from an opened config (a dialog says what changed) or from a
        backbone the user just picked with fewer stages (the status bar says it). The CLI
        refuses the same settings with the same reasons: one rule, the plan's.
        """
        plan = self.state.plan
        if plan is None or not plan.fixes:
            return False
        note = f"{self._info.name}: " + "; ".join(
            f"{f.key} set to {f.new!r} ({f.reason})" for f in plan.fixes)
        self.state.message.emit(note)
        if not quiet:
            QMessageBox.warning(self, "Config adjusted", note)
        changes: dict[str, dict[str, Any]] = {}
        for f in plan.fixes:
            section, key = f.key.split(".")
            changes.setdefault(section, {})[key] = f.new
        try:
            self.state.update_config(**changes)
        except UserError as exc:
            QMessageBox.warning(self, "Invalid setting", str(exc))
        return True

    def _switch_backbone(self, name: str) -> None:
        self._info = backbone_info(name)  # UserError for an unknown name, before any change
        self.model = None
        self.backbones.select(name)
        self.advice.cancel()  # the measurement was for the previous backbone
        self.advice.clear_report(f"{name}: click a cell to apply its strategy, or measure "
                                 "where your dataset sits.")
        self._forget_divergence()  # the dot must not keep another backbone's similarity
        self.matrix.set_selected(None)
        self.stages.set_summary([], caption=f"Building {name}…")
        self._start_build(name)

    def _start_build(self, name: str) -> None:
        if self._build_worker is not None:
            self._build_worker.stop()
        worker = GeneratorWorker(build_skeleton_events, name, parent=self)
        worker.event.connect(lambda model, n=name: self._on_built(n, model))
        worker.failed.connect(lambda msg: self.stages.set_summary([], caption=msg))
        worker.finished.connect(lambda w=worker: self._on_build_finished(w))
        self._build_worker = worker
        worker.start()

    def _on_built(self, name: str, model: Any) -> None:
        if name != self.state.config.model.backbone:
            return  # the user picked another backbone meanwhile
        self.model = model
        remember_stages(name, model.stage_names)  # the run plan can now be made at once
        self.plan_view.refresh()
        self.matrix.set_titles({c: strategy_for(c, model.num_stages).title for c in CELLS})
        picked, self._picked = self._picked == name, None
        if not self._fit_config_to_model(quiet=picked):
            self._show_model()

    def _on_build_finished(self, worker: GeneratorWorker) -> None:
        worker.join(1.0)
        if self._build_worker is worker:
            self._build_worker = None

    def _show_model(self) -> None:
        config, model = self.state.config, self.model
        stages = model.num_stages
        self.settings.show_config(config, self._info, stages, list(model.stage_names))
        plan = self.state.plan
        model.freeze(plan.freeze_stages if plan is not None else 0)
        index = self.state.index
        if index is not None and index.num_classes and model.num_classes != index.num_classes:
            model.reset_classifier(index.num_classes)  # not ImageNet's 1000 outputs
        summary = model.stage_summary(config.train.lr, config.model.lr_decay)
        self.stages.set_summary(summary, caption=self._caption(),
                                head_outputs=model.num_classes)
        self.matrix.set_selected(cell_for_config(config.model, stages))
        if self.advice.report is None:  # a report says itself whether it could measure
            self.matrix.set_unmeasurable(self._unmeasurable_reason())

    def _unmeasurable_reason(self) -> str | None:
        """Why this backbone's similarity cannot be measured (None: it has BatchNorm)."""
        if "batch" in self._info.norm_type:
            return None
        norm = _norm_name(self._info.norm_type)
        not_bn = "" if norm.startswith("no ") else ", not BatchNorm"
        return f"{self._info.name} has {norm}{not_bn}: similarity cannot be measured; pick a cell."

    def _caption(self) -> str:
        plan = self.state.plan
        frozen = plan.freeze_stages if plan is not None else 0
        return f"{frozen}/{self.model.num_stages} frozen · {_norm_name(self._info.norm_type)}"

    def set_editable(self, editable: bool) -> None:
        """Lock the settings while a run trains (they shaped it); unlock when it ends."""
        for view in (self.backbones, self.weights, self.settings, self.advice):
            view.setEnabled(editable)
        self.setToolTip("" if editable else "A run is training with these settings: they are "
                        "locked until it ends")

    # -- main window hooks --------------------------------------------------------------------
    def busy(self) -> bool:
        """True while a measurement, a download or a weights-file check runs."""
        return self.advice.is_busy() or self.weights.is_busy()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop and join every worker this panel started (the main window calls it on close)."""
        self.advice.shutdown(timeout)
        self.weights.shutdown(timeout)
        if self._build_worker is not None:
            self._build_worker.shutdown(timeout)
