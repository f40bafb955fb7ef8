"""The split options are bound through the one ConfigBinder: LIMITS' ranges, deferred edits."""

from __future__ import annotations

from workbench.config import LIMITS, RunConfig
from workbench_ui.dataset_split_view import SplitOptionsView
from workbench_ui.state import AppState


def test_split_options_take_the_config_s_limits_and_apply_together(qtbot):
    state = AppState(RunConfig())
    view = SplitOptionsView(state)
    qtbot.addWidget(view)
    assert (view.val_fraction.minimum(), view.val_fraction.maximum()) == \
        LIMITS["data.val_fraction"]
    assert view.min_count.maximum() == LIMITS["data.min_class_count"][1]
    assert view.seed.maximum() == 2**31 - 1  # a QSpinBox's ceiling, under LIMITS' 2**32 - 1
    view.val_fraction.setValue(0.35)
    assert state.config.data.val_fraction == 0.2  # not written until "Re-split"
    with qtbot.waitSignal(view.applied) as applied:
        view.apply_button.click()
    assert applied.args[0] == {"val_fraction": 0.35, "split_seed": 0, "min_class_count": 5}
    state.update_config(data={"split_seed": 7})  # changed elsewhere: the view follows
    assert view.seed.value() == 7
