"""`DatasetPanel`: open a dataset, see its histogram, its images and its problems.

Opening lists the dataset in a worker (no decoding), shows the histogram as soon as the listing
is done, then runs the image checks in the same worker with a progress bar and a Cancel button;
problems appear as they are found. A dataset that cannot be opened leaves the previous one shown
and says why in an inline notice.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.data.checks import Listed, iter_open_and_check, merge_unlisted
from workbench.data.index import DatasetIndex
from workbench.data.manifest import ColumnNames, columns_to_name
from workbench.data.stats import unusable_reason
from workbench.errors import UserError
from workbench_ui.dataset_columns_dialog import CsvColumnsDialog
from workbench_ui.dataset_split_view import SplitOptionsView
from workbench_ui.histogram_view import HistogramView, natural_key
from workbench_ui.problems_view import ProblemsView
from workbench_ui.state import AppState
from workbench_ui.thumbnails_view import ThumbnailsView
from workbench_ui.train_notice import NoticeBanner
from workbench_ui.workers import GeneratorWorker

if TYPE_CHECKING:
    from workbench.data.stats import DatasetStats

CHECK_EVENT_INTERVAL_S = 0.1  # progress redraws at most ten times a second
CHECKING = "checking images…"


def _is_quiet_progress(event: Any) -> bool:
    # progress without new problems may be skipped under throttling; nothing else may (the
    # last one carries the final counts of problems beyond each kind's capped list)
    return (not isinstance(event, Listed) and not getattr(event, "problems", None)
            and getattr(event, "done", 0) != getattr(event, "total", 0))


class DatasetPanel(QWidget):
    """The Dataset tab.

    Signals:
        opened(str): a dataset was listed and shown (the source the user gave).
        open_failed(str): a dataset could not be opened; the message says why.
    """

    opened = Signal(str)
    open_failed = Signal(str)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._worker: GeneratorWorker | None = None
        self._retired: list[GeneratorWorker] = []  # replaced scans, still ending
        self._source = ""
        self._checks_state = ""
        self._listed_by: GeneratorWorker | None = None  # the worker whose dataset is shown
        self.columns_dialog: CsvColumnsDialog | None = None  # the last one asked
        self._build()
        state.dataset_changed.connect(self._show_dataset)
        state.running_changed.connect(self._lock_split)
        self._show_dataset(state.index)

    def _lock_split(self, running: bool) -> None:
        """The split shaped the run in progress: it cannot change until the run ends."""
        self.split_options.setEnabled(not running)
        self.split_options.setToolTip("A run is training on this split: it is locked until "
                                      "the run ends" if running else "")

    def _build(self) -> None:
        self.summary = QLabel("No dataset open. Use File ▸ Open folder…, or drop a folder here.")
        self.summary.setObjectName("summary")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setWordWrap(True)
        self.notice = NoticeBanner()  # floats over the views (see _layout_views)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.cancel_button)
        self.progress_row = QWidget()
        self.progress_row.setLayout(bar)
        bar.setContentsMargins(0, 0, 0, 0)
        # hidden, it keeps its place beside the split options: views never jump when a scan
        # starts or ends (the user may be clicking the histogram while the checks run)
        policy = self.progress_row.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.progress_row.setSizePolicy(policy)
        self.progress_row.hide()
        self.split_options = SplitOptionsView(self.state)
        self.split_options.applied.connect(self.resplit)
        self.histogram = HistogramView()
        self.histogram.class_clicked.connect(self.show_class)
        self.thumbnails = ThumbnailsView()
        self.problems = ProblemsView()
        self._layout_views()

    def _layout_views(self) -> None:
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(_boxed("Images", self.thumbnails))
        bottom.addWidget(_boxed("Problems", self.problems))
        bottom.setSizes([420, 700])  # the problems' table and preview need the room
        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(self.histogram)
        main.addWidget(bottom)
        main.setStretchFactor(0, 5)
        main.setStretchFactor(1, 4)
        main.setSizes([420, 340])  # stretch factors apply only to later resizes
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        options = QHBoxLayout()
        options.addWidget(self.split_options)
        options.addWidget(self.progress_row, 1)
        layout.addLayout(options)
        layout.addWidget(main, 1)
        # over the histogram (a splitter would take it as a pane): appearing, it moves nothing
        self.notice.float_over(self.histogram.plot)

    # -- opening -----------------------------------------------------------------------------
    def open_path(self, source: str | Path) -> None:
        """List and check a dataset in a worker; the current one stays until it succeeds."""
        self._retire_worker()
        self._source = str(source)
        self.notice.clear()
        self.progress.setRange(0, 0)  # busy indicator until the listing is done
        self.progress.setFormat(f"Listing {self._source}…")
        self.progress_row.show()
        self.cancel_button.setEnabled(True)
        worker = GeneratorWorker(
            iter_open_and_check, self._source, self.state.config.data,
            throttle_s=CHECK_EVENT_INTERVAL_S, droppable=_is_quiet_progress, parent=self,
        )
        worker.event.connect(lambda e: self._on_event(worker, e))
        worker.failed.connect(lambda m: self._on_failed(worker, m))
        worker.finished.connect(lambda: self._on_finished(worker))
        self._worker = worker
        self.state.message.emit(f"Opening {self._source}…")
        worker.start()

    def resplit(self, data_changes: dict) -> None:
        """Store new split / small-class settings and list the open dataset again with them."""
        try:
            self.state.update_config(data=data_changes)
        except UserError as exc:
            self.show_notice(str(exc))
            return
        source = self._source or self.state.config.data.path
        if source:
            self.open_path(source)

    def is_scanning(self) -> bool:
        """True while a listing or the checks run."""
        return self._worker is not None

    def cancel(self) -> None:
        """Stop the listing or the checks; what was found so far stays shown."""
        if self._worker is not None:
            self._worker.stop()
            self.cancel_button.setEnabled(False)
            self.progress.setFormat("Cancelling…")

    def busy(self) -> bool:
        """Never blocks quitting: a scan can always be cancelled."""
        return False

    def shutdown(self) -> None:
        """Stop every worker of this panel and wait for them."""
        self._retire_worker()
        for worker in self._retired:
            worker.join(10.0)
        self._retired.clear()
        self.thumbnails.shutdown()
        self.problems.shutdown()

    def _retire_worker(self) -> None:
        # no join here: a listing cannot be interrupted, and the GUI must not wait for it
        worker, self._worker = self._worker, None
        if worker is None:
            return
        worker.stop()
        self._retired.append(worker)
        if self._checks_state == CHECKING:  # the shown dataset's checks end here, unfinished
            self._checks_state = "checks cancelled"
            self._update_summary()

    # -- worker events (GUI thread) ----------------------------------------------------------
    def _on_event(self, worker: GeneratorWorker, event: Any) -> None:
        if worker is not self._worker:
            return  # a late event from a scan the user replaced
        if isinstance(event, Listed):
            self._checks_state, self._listed_by = CHECKING, worker
            self.state.set_dataset(event.index, source=event.source)
            self.opened.emit(event.source)
            self.state.message.emit(
                f"Opened {event.source}: {len(event.index):,} images; checking them…")
            self._warn_if_unusable()
            return
        self.progress.setRange(0, max(event.total, 1))
        self.progress.setValue(event.done)
        self.progress.setFormat(f"Checking images: %v of {event.total}")
        if event.problems and self.state.index is not None:
            self.state.index.problems.extend(event.problems)
            self.problems.add_problems(event.problems)
        if event.unlisted and self.state.index is not None:  # beyond each kind's capped list
            merge_unlisted(self.state.index, event.unlisted)
            self.problems.set_unlisted(self.state.index.unlisted_problems)

    def _on_failed(self, worker: GeneratorWorker, message: str) -> None:
        if worker is not self._worker:
            return
        if self._listed_by is worker:  # the dataset is shown: only the checks went wrong
            self.show_notice(f"Checking the images stopped: {message}")
            return
        # the core's messages usually name the path already; do not say it twice
        source = str(self._source)
        prefix = "Could not open" if source in message else f"Could not open {source}:"
        self.show_notice(f"{prefix} {message}")
        self.open_failed.emit(message)
        self._ask_columns()

    def _ask_columns(self) -> None:
        """After a failed open: when a CSV's columns were not understood, ask which they are
        (the notice above the dialog keeps the reason)."""
        data = self.state.config.data
        current = ColumnNames(data.path_column, data.label_column)
        trouble = columns_to_name(self._source, current)
        if trouble is None:
            return
        if self.columns_dialog is not None:  # the one asked about an earlier CSV
            self.columns_dialog.deleteLater()
        dialog = CsvColumnsDialog(trouble[0], trouble[1], current, self)
        dialog.accepted.connect(lambda: self.resplit(
            {"path_column": dialog.names().path, "label_column": dialog.names().label}))
        self.columns_dialog = dialog
        dialog.open()  # window-modal, without a nested event loop

    def _on_finished(self, worker: GeneratorWorker) -> None:
        worker.join(1.0)
        if worker in self._retired:
            self._retired.remove(worker)
        if worker is not self._worker:
            return
        self._worker = None
        self.progress_row.hide()
        if self._listed_by is not worker:  # it never got as far as showing a dataset
            if worker.stopped:
                self.state.message.emit("Opening cancelled.")
            return
        outcome = "failed" if worker.error else "cancelled" if worker.stopped else "done"
        self._checks_state = f"checks {outcome}"
        self._update_summary()
        if not worker.error:  # corrupt images found by the checks may leave one class
            self._warn_if_unusable()
        found = len(self.problems.model.problems)
        self.state.message.emit(f"Image checks {outcome}: {found} problem(s) listed.")

    def show_notice(self, text: str) -> None:
        """An inline message over the views (errors that leave the current dataset shown)."""
        self.notice.show_error(text)
        self.state.message.emit(text)

    def _warn_if_unusable(self) -> None:
        """Say at once when training will refuse this dataset (one class, say), not only after
        Start; the rule is the core's, the one `workbench scan` and the run plan apply."""
        index = self.state.index
        reason = unusable_reason(index) if index is not None else None
        if reason:
            self.show_notice(f"Training will not start: {reason}.")

    # -- showing -----------------------------------------------------------------------------
    def _show_dataset(self, index: DatasetIndex | None) -> None:
        self.thumbnails.clear()
        if index is None:
            self.histogram.clear()
            self.problems.set_problems([])
            return
        stats = self.state.stats
        ordered = {s: stats.class_counts[s] for s in _splits_training_first(stats)}
        self.histogram.set_data(ordered, stats.bands)
        self.split_options.set_split_given("val" in index.splits and not index.val_generated)
        self.problems.set_problems(index.problems, index.unlisted_problems, str(index.root))
        self._update_summary()
        shown = self.histogram.class_order()
        if shown:  # an empty thumbnail grid teaches nothing: open on the first bar's class
            self.show_class(shown[0])

    def _update_summary(self) -> None:
        index, stats = self.state.index, self.state.stats
        if index is None:
            return
        splits = " / ".join(f"{s} {n:,}" for s, n in stats.split_counts.items())
        val = "val drawn from train" if index.val_generated else "val split given"
        parts = [
            f"<b>{_display_name(self._source or str(index.root), index)}</b>",
            f"{stats.num_images:,} images",
            f"{stats.num_classes} class{'' if stats.num_classes == 1 else 'es'}", splits,
            f"imbalance {stats.imbalance_ratio:.1f}×", val,
        ]
        if index.skipped_files:
            parts.append(f"{index.skipped_files:,} non-image file(s) skipped")
        if index.corrected:  # a run's label corrections (data.corrections), files untouched
            fixes = ", ".join(f"{n:,} {'relabelled' if action == 'relabel' else 'excluded'}"
                              for action, n in index.corrected.items())
            parts.append(f"label corrections applied: {fixes}")
        if self._checks_state:
            parts.append(self._checks_state)
        self.summary.setText(" · ".join(parts))

    def show_class(self, name: str) -> None:
        """Show one class's images (training split first) in the thumbnail grid."""
        index = self.state.index
        if index is None or name not in index.class_names:
            return
        label = index.class_names.index(name)
        splits = _splits_training_first(self.state.stats)
        order = {s: k for k, s in enumerate(splits)}
        chosen = [i for i, lab in enumerate(index.labels) if lab == label]
        chosen.sort(key=lambda i: (order.get(index.splits[i], 99),
                                   natural_key(Path(index.paths[i]).name)))
        self.histogram.select_class(name)
        self.thumbnails.show_class(name, [index.paths[i] for i in chosen], ", ".join(splits))


def _splits_training_first(stats: DatasetStats) -> list[str]:
    """The dataset's splits, the training one first (the histogram's first bar set)."""
    rest = [s for s in stats.class_counts if s != stats.training_split]
    return [stats.training_split, *rest] if stats.training_split in stats.class_counts else rest


def _display_name(source: str, index: DatasetIndex) -> str:
    if source == "demo":
        return f"demo ({index.root.name})"
    return Path(source).name or source


def _boxed(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(4, 4, 4, 4)
    heading = QLabel(title)
    heading.setObjectName("boxTitle")
    layout.addWidget(heading)
    layout.addWidget(widget, 1)
    return box

