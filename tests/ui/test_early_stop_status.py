"""A run that early stopping ended says so on the Train tab, and why in the tooltip."""

from __future__ import annotations

from workbench.train.events import Finished
from workbench_ui.train_progress import ProgressView


def test_an_early_stopped_run_says_finished_early_and_why(qtbot):
    view = ProgressView()
    qtbot.addWidget(view)
    why = ("stopped early after epoch 2 of 4: validation balanced accuracy did not improve "
           "for 1 epoch(s) (best 33.3% at epoch 1)")
    view.show_event(Finished("/runs/x", 0.333, why))
    assert view.status.text() == "Finished early: best balanced accuracy 33.3%"
    assert view.status.toolTip() == why
    view.show_event(Finished("/runs/y", 0.9))
    assert view.status.text() == "Finished: best balanced accuracy 90.0%"
    assert view.status.toolTip() == ""
