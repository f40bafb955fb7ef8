"""Regenerate the README's screenshots from the real GUI on the demo dataset.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots.py [dataset model advice training
        recipes]

Each shot drives the window the way a user would (open the demo, measure similarity, train a
few epochs at 64 px with everything fine-tuned and class-balanced
loss weights) and grabs it at 1280x800 into docs/.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from workbench_ui.app import configure_application, create_window  # noqa: E402

DOCS = Path(__file__).resolve().parent


def wait_until(app: QApplication, done, timeout: float = 300.0) -> None:
    """Process events until `done()` is true (the GUI keeps running meanwhile)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the GUI did not get there in time")
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):  # let throttled redraws land
        app.processEvents()
        time.sleep(0.03)


def grab(window, name: str) -> None:
    """Save the whole window as docs/NAME.png."""
    path = DOCS / f"{name}.png"
    window.grab().save(str(path))
    print(path)


def main(shots: list[str]) -> int:
    """Open the demo and take the requested shots in order."""
    app = QApplication.instance() or QApplication(sys.argv)
    configure_application(app)  # the stylesheet and plot colours users see
    window = create_window("demo")
    window.resize(1280, 800)
    window.show()
    state = window.state
    wait_until(app, lambda: "checks done" in window.dataset_panel.summary.text())
    wait_until(app, lambda: window.panels_loaded)  # the Model and Train tabs load after torch
    if "dataset" in shots:
        grab(window, "dataset")
    model_panel = _panel(window, "ModelPanel")
    train_panel = _panel(window, "TrainPanel")
    if "model" in shots:
        window.tabs.setCurrentWidget(model_panel)
        wait_until(app, lambda: model_panel.model is not None)
        model_panel.measure()
        wait_until(app, lambda: not model_panel.busy() and model_panel.advice.report is not None)
        model_panel.apply_cell(model_panel.advice.report.cell)  # as a click on the cell does
        wait_until(app, lambda: not model_panel.busy())
        grab(window, "model")
    if "advice" in shots:
        # the measured trials next to the textbook cell (quick budget: probes on held-out
        # training images at the size the plan suggests for 28 px digits)
        window.tabs.setCurrentWidget(model_panel)
        wait_until(app, lambda: model_panel.model is not None)
        if model_panel.advice.report is None:
            model_panel.measure()
        wait_until(app, lambda: not model_panel.busy() and model_panel.advice.report is not None)
        trials = model_panel.advice.trials
        pick = next((r for r, t in enumerate(trials.trials)
                     if t.name == model_panel.advice.report.recommended.get("name")), 0)
        trials.table.selectRow(pick)
        trials.table.cellClicked.emit(pick, 0)  # as a click on the chosen row does
        model_panel.advice.evidence.setCurrentWidget(trials)
        wait_until(app, lambda: not model_panel.busy())
        grab(window, "advice")
    if "training" in shots:
        # the long tail's remedy a practitioner would pick next to the histogram's numbers
        # (train BN: frozen ImageNet statistics misnormalise the digits and the run collapses)
        state.update_config(model={"freeze_stages": 0, "head": "linear", "norm_policy": "train_bn"},
                            data={"input_size": 64, "loss_weighting": "effective_number"},
                            train={"epochs": 4})
        window.tabs.setCurrentWidget(train_panel)
        train_panel.start()
        wait_until(app, lambda: not train_panel.busy(), timeout=900)
        grab(window, "training")
    if "recipes" in shots:
        shoot_recipes(app, window, train_panel)
    window.close()
    return 0


def shoot_recipes(app: QApplication, window, train_panel) -> None:
    """The Train tab's batch preview (strong preset + MixUp) and a finished LR range test
    (40 steps instead of 100, to keep the shot short on 2 CPU cores)."""
    window.state.update_config(data={"input_size": 64, "augment": "strong", "mixup": 0.2},
                               model={"freeze_stages": 0, "head": "linear"},
                               train={"batch_size": 16})
    window.tabs.setCurrentWidget(train_panel)
    train_panel.views.setCurrentIndex(1)
    train_panel.batch_preview.show_batch()
    wait_until(app, lambda: train_panel.batch_preview.show_button.isEnabled())
    train_panel.lr_finder.steps = 40
    train_panel.lr_finder.find()
    wait_until(app, lambda: not train_panel.lr_finder.busy(), timeout=1800)
    grab(window, "recipes")


def _panel(window, class_name: str):
    return next(p for p in window.panels if type(p).__name__ == class_name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["dataset", "model", "training"]))
