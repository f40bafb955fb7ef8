"""`AppState`: the one object every panel watches.

It holds the open dataset (a `DatasetIndex`) and the run configuration (a `RunConfig`) and says
when either changes. Panels read from it and forward the user's intent to it; they never talk to
each other directly, so a panel can be built and tested with nothing but an `AppState`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from workbench.config import RunConfig
from workbench.data.index import DatasetIndex
from workbench.errors import UserError

if TYPE_CHECKING:
    from workbench.data.stats import DatasetStats
    from workbench.plan import RunPlan


class AppState(QObject):
    """The open dataset and the run configuration, with change signals.

    Signals:
        dataset_changed(object): the new `DatasetIndex` (or None when closed).
        config_changed(): `config` was replaced or edited.
        message(str): a short line for the status bar, from any panel.
        open_requested(str): a panel asks for a dataset to be opened (e.g. a resumed run's),
            without taking the user away from the panel.
        running_changed(bool): a run started (True) or ended (False); while one runs, the
            settings that shaped it are locked.
        run_open_requested(str): show this run folder's results (a double-click in Manage runs).
    """

    dataset_changed = Signal(object)
    config_changed = Signal()
    message = Signal(str)
    open_requested = Signal(str)
    running_changed = Signal(bool)
    run_open_requested = Signal(str)

    def __init__(self, config: RunConfig | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.index: DatasetIndex | None = None
        self.config: RunConfig = config if config is not None else RunConfig()
        self._stats: DatasetStats | None = None  # of `index`, computed on first use
        self._image_side: int | None = None  # the images' typical side, read on first use
        self._plan: RunPlan | None = None  # of `config` on `index`, planned on first use
        self.plan_error = ""  # why the config cannot be planned ("" when it can)
        self.running = False
        self.config_changed.connect(self._forget_plan)

    # -- dataset ---------------------------------------------------------------------------
    def set_dataset(self, index: DatasetIndex | None, source: str | Path | None = None) -> None:
        """Make `index` the open dataset and tell every panel.

        `source` is what the user opened (a folder, a CSV file or "demo"); it becomes
        `config.data.path` so that a saved config reopens the same data. Without it the index's
        root is used.
        """
        self.index = index
        self._stats = None
        self._image_side = None
        self._forget_plan()
        if index is not None:
            path = str(source) if source is not None else str(index.root)
            if path != self.config.data.path:
                changed = self.config.for_dataset(path)
                if self.config.data.path:  # another dataset: its settings do not carry over
                    self._say_reset(changed)
                self.config = changed
                self.config_changed.emit()
        self.dataset_changed.emit(index)

    def _say_reset(self, changed: RunConfig) -> None:
        from workbench.config import DATASET_SETTINGS

        reset = [key.split(".")[1].replace("_", " ") for key in DATASET_SETTINGS
                 if _value(self.config, key) != _value(changed, key)]
        if reset:
            self.message.emit("New dataset: " + ", ".join(reset) + " back to their defaults")

    @property
    def stats(self) -> DatasetStats | None:
        """`workbench.data.stats.DatasetStats` of the open dataset (None when none is open).

        Computed from the listing on first use and kept until the dataset changes, so panels
        share one computation and hold no statistics logic of their own.
        """
        if self.index is None:
            return None
        if self._stats is None:
            from workbench.data.stats import dataset_stats

            self._stats = dataset_stats(self.index)
        return self._stats

    # -- the run plan ----------------------------------------------------------------------
    @property
    def plan(self) -> RunPlan | None:
        """What a run would do with the current config on the open dataset (fixes applied,
        warnings listed); None until the backbone's stages are known (its skeleton is built in
        a worker) or when the config itself cannot be planned. When the dataset cannot train
        (`plan_error` says why), the plan is made without it, so the settings still show."""
        if self._plan is None:
            self._plan = self._make_plan()
        return self._plan

    def plan_blocker(self) -> str:
        """Why the open dataset's plan cannot be used yet ("" when it can): no dataset, the
        config's plan error, or a model still loading."""
        if self.index is None:
            return "Open a dataset first."
        if self.plan is None or self.plan_error:
            return self.plan_error or "The model is still loading."
        return ""

    def _make_plan(self) -> RunPlan | None:
        from workbench.plan import known_stages, plan_run

        stages = known_stages(self.config.model.backbone)
        if stages is None:
            return None
        if self.index is not None and self._image_side is None:
            from workbench.data.stats import typical_image_side

            self._image_side = typical_image_side(self.index) or 0
        self.plan_error = ""
        # the full plan; else (its refusal kept in plan_error) the settings' plan alone, so the
        # Model tab still shows them when the dataset or the device cannot run
        for index, check_device in ((self.index, True), (None, False)):
            try:
                return plan_run(self.config, index, fix=True, stages=stages,
                                image_side=self._image_side, check_device=check_device)
            except UserError as exc:
                self.plan_error = self.plan_error or str(exc)
        return None

    def _forget_plan(self) -> None:
        self._plan, self.plan_error = None, ""

    def set_running(self, running: bool) -> None:
        """Say that a run started or ended (the Train tab calls it)."""
        if running != self.running:
            self.running = running
            self.running_changed.emit(running)

    # -- configuration ---------------------------------------------------------------------
    def set_config(self, config: RunConfig) -> None:
        """Replace the whole configuration (after validating it), e.g. from an opened file."""
        config.validate()
        self.config = config
        self.config_changed.emit()

    def update_config(self, **sections: Any) -> None:
        """Change some sections of the configuration and emit `config_changed` once.

        Each keyword names a section (`data`, `model`, `advice`, `train`) and gives either a
        whole section object or a dict of field changes::

            state.update_config(train={"lr": 0.01, "epochs": 5}, model=new_model_config)

        Raises `UserError` on an unknown section or key, or a value that fails validation; the
        configuration is then left unchanged.
        """
        known = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)}
        changes = {}
        for name, value in sections.items():
            if name not in known:
                raise UserError(f"unknown config section [{name}]")
            changes[name] = _updated_section(name, known[name], value)
        candidate = dataclasses.replace(self.config, **changes)
        candidate.validate()
        self.config = candidate
        self.config_changed.emit()


def _value(config: RunConfig, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def _updated_section(name: str, current: Any, value: Any) -> Any:
    if isinstance(value, type(current)):
        return value
    if not isinstance(value, dict):
        raise UserError(f"config section [{name}] must be given as a dict or a section object")
    allowed = {f.name for f in dataclasses.fields(current)}
    unknown = set(value) - allowed
    if unknown:
        raise UserError(f"unknown config key {name}.{sorted(unknown)[0]}")
    return dataclasses.replace(current, **value)
