"""What a new user tripped over in the GUI (issue 16, item 6), each fix seen from the widgets."""

from __future__ import annotations

import numpy as np

from workbench.train.events import BatchDone, EvalDone, RunStarted, Stopped
from workbench.train.metrics import compute_metrics
from workbench_ui.train_progress import ProgressView

CLASSES = ["cat", "dog", "owl"]


def _metrics():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    return compute_metrics(y_true, np.array([0, 0, 1, 1, 2, 0]), 0.5, CLASSES, [150, 50, 5])


def _batch(epoch: int, step: int) -> BatchDone:
    return BatchDone(epoch=epoch, step=step, total_steps=12, loss=1.0, lrs={"head": 0.01},
                     images_per_s=10.0)


# -- a stop keeps the completed epochs only, and says so ---------------------------------------
def test_a_stop_mid_epoch_says_which_epoch_is_kept_and_which_is_lost(qtbot):
    view = ProgressView()
    qtbot.addWidget(view)
    view.show_event(RunStarted("/tmp/run", "cpu", 9, 6, epochs=4, steps_per_epoch=3))
    for event in (_batch(1, 1), _batch(1, 2), _batch(1, 3), EvalDone(1, _metrics()),
                  _batch(2, 4), Stopped("/tmp/run")):
        view.show_event(event)
    text = view.status.text()
    assert text == "Stopped · kept epoch 1/4 (resumable) · unfinished epoch 2 not kept", text
    assert "not kept" in view.status.toolTip()
    view.show_event(RunStarted("/tmp/run", "cpu", 9, 6, epochs=4, steps_per_epoch=3,
                               start_epoch=2))  # resumed after two epochs, stopped between
    view.show_event(Stopped("/tmp/run"))
    assert view.status.text() == "Stopped · kept epoch 2/4 (resumable)"


# -- a slider moved after a probe trial -------------------------------------------------------
def test_unfreezing_stages_under_a_fitted_once_head_is_flagged(model_panel, qtbot):
    panel = model_panel
    stages = panel.model.num_stages
    # what applying a probe trial does: logistic regression on block2's features, all frozen
    panel.state.update_config(model={"head": "logreg", "feature_stage": 2,
                                     "freeze_stages": stages})
    notice = panel.settings.stage_notice
    assert not notice.isVisibleTo(panel)
    panel.settings.slider.setValue(1)  # the user then unfreezes stages
    assert panel.state.config.model.freeze_stages == 1
    assert notice.isVisibleTo(panel)
    name = panel.model.stage_names[2]
    assert f"fitted once on {name}'s pooled features" in notice.text()
    assert f"the {stages - 1} unfrozen stage(s) change nothing" in notice.text()
    panel.state.update_config(model={"head": "linear"})  # a head that fine-tunes: no notice
    assert not notice.isVisibleTo(panel)


# -- the backbone filter --------------------------------------------------------------------------
def test_filtering_backbones_never_changes_the_backbone_in_use(model_panel, qtbot):
    panel = model_panel
    before = panel.state.config.model.backbone
    view = panel.backbones
    for text in ("resnet", "vit_", "mobilenet_v3", "", "mobilenet"):
        view.filter_edit.setText(text)
        assert panel.state.config.model.backbone == before, text
    current = view.table.currentIndex()
    assert current.isValid() and current.siblingAtColumn(0).data() == before
    view.filter_edit.setText("resnet")
    assert not view.table.selectionModel().hasSelection()  # the one in use is not listed
    view.table.selectRow(0)  # a real pick still picks
    qtbot.waitUntil(lambda: panel.state.config.model.backbone != before, timeout=5000)
    assert panel.state.config.model.backbone.startswith("resnet")
