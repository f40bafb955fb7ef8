"""The Model panel's pure widgets, fed hand-made values: matrix, stages, backbone table."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from PySide6.QtCore import Qt

from workbench_ui.backbone_view import CACHED_TEXT, DOWNLOAD_TEXT, BackboneView
from workbench_ui.matrix_view import CELL_GRID, MatrixView
from workbench_ui.stage_view import StageView


@dataclass
class _Stage:
    name: str
    params: int
    trainable: bool
    lr: float
    norm_layers: object


def test_matrix_click_on_each_cell_emits_that_cell(qtbot):
    view = MatrixView()
    qtbot.addWidget(view)
    view.resize(500, 360)
    for cell in CELL_GRID:
        with qtbot.waitSignal(view.cell_clicked) as blocker:
            qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                             pos=view.cell_rect(cell).center().toPoint())
        assert blocker.args == [cell]


def test_matrix_point_lands_in_the_cell_its_numbers_say(qtbot):
    view = MatrixView()
    qtbot.addWidget(view)
    view.resize(500, 360)
    view.set_thresholds(100, 1.0)
    view.set_point(30, 0.4)  # few images, low divergence
    assert view.cell_at(view.point_position()) == "similar-small"
    view.set_point(5000, 3.0)
    assert view.cell_at(view.point_position()) == "dissimilar-large"
    view.set_thresholds(10, 5.0)  # the user edits the heuristics: the same point moves
    view.set_point(30, 3.0)
    assert view.cell_at(view.point_position()) == "similar-large"
    view.set_point(None)
    assert view.point_position() is None


def test_stage_view_counts_frozen_stages_and_formats_rows(qtbot):
    view = StageView()
    qtbot.addWidget(view)
    summary = [
        _Stage("stem", 928, False, 0.0, {"BatchNorm2d": 1}),
        _Stage("stage1", 1_200_000, False, 0.0, ["BatchNorm2d", "BatchNorm2d"]),
        _Stage("stage2", 2_500_000, True, 0.0038, 4),
        _Stage("head", 1_281_000, True, 0.01, None),
    ]
    view.set_summary(summary)
    assert view.frozen_count() == 2
    rows = view.rows()
    assert [r.lr for r in rows] == ["frozen", "frozen", "lr 0.0038", "lr 0.01"]
    assert rows[1].params == "1.2 M" and rows[1].norm == "2 BatchNorm2d"
    assert rows[-1].is_head and rows[-1].norm == "no norm"
    view.grab()  # paints without error


def test_backbone_table_sorts_numerically_and_filters(qtbot):
    view = BackboneView()
    qtbot.addWidget(view)
    infos = [
        SimpleNamespace(name=n, family=f, params=p, acc1=a, gflops=g, file_size_mb=9.0,
                        weights_name="IMAGENET1K_V1", weights_cached=c)
        for n, f, p, a, g, c in [
            ("resnet18", "resnet", 11_689_512, 69.758, 1.81, False),
            ("mobilenet_v2", "mobilenet", 3_504_872, 71.878, 0.3, True),
            ("resnet152", "resnet", 60_192_808, 78.312, 11.51, False),
        ]
    ]
    view.set_backbones(infos)
    assert view.row_count() == 3
    assert view.cell_text("mobilenet_v2", "weights") == CACHED_TEXT
    assert view.cell_text("resnet18", "weights") == DOWNLOAD_TEXT
    view.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    first = view.table.model().index(0, 0).data()
    assert first == "resnet152"  # 60 M above 11 M: numeric, not text, order
    view.filter_edit.setText("resnet")
    assert view.row_count() == 2
    with qtbot.waitSignal(view.backbone_selected) as blocker:
        view.table.selectRow(1)
    assert blocker.args[0] in {"resnet18", "resnet152"}
    view.set_cached("resnet18", True)
    assert view.cell_text("resnet18", "weights") == CACHED_TEXT


def test_backbone_names_fit_and_the_hidden_family_still_filters(qtbot):
    view = BackboneView()
    qtbot.addWidget(view)
    info = SimpleNamespace(name="mobilenet_v3_large", family="mobilenet_v3", params=5_483_032,
                           acc1=75.3, gflops=0.22, file_size_mb=21.0,
                           weights_name="IMAGENET1K_V2", weights_cached=False)
    view.set_backbones([info])
    view.show()
    needed = view.table.fontMetrics().horizontalAdvance(info.name)
    assert view.table.columnWidth(0) > needed  # "mobilenet_v3_l…" told the two apart badly
    view.filter_edit.setText("mobilenet_v3")
    assert view.row_count() == 1


def test_matrix_label_never_covers_the_cell_tags(qtbot):
    view = MatrixView()
    qtbot.addWidget(view)
    view.resize(470, 300)
    view.set_thresholds(100, 0.12)
    view.set_selected("dissimilar-small")
    view.set_highlight("dissimilar-small")
    for median, divergence in [(58, 0.54), (90, 0.9), (10, 0.13), (99, 0.2)]:
        view.set_point(median, divergence)
        view.grab()  # paints, recording where the tags went
        label = view.label_rect()
        assert label is not None
        assert not any(label.intersects(tag) for tag in view.tag_rects()), (median, divergence)


def test_matrix_tags_and_label_leave_the_cell_text_readable(qtbot):
    """Issue 16: the "current" tag and "your dataset" were painted over the strategy text."""
    view = MatrixView()
    qtbot.addWidget(view)
    view.set_titles({"similar-large": "Fine-tune everything, lower LR for lower stages",
                     "dissimilar-small": "Linear classifier on earlier-stage features"})
    view.set_thresholds(100, 0.12)
    view.set_selected("similar-large")
    view.set_highlight("dissimilar-small")
    for size in [(300, 220), (360, 260), (470, 300)]:  # down to the 1024 px window's matrix
        view.resize(*size)
        for median, divergence in [(58, 0.54), (150, 0.05), (30, 0.3)]:
            view.set_point(median, divergence)
            view.grab()  # paints, recording where the words and tags went
            texts = view.text_rects()
            assert texts and all(view.rect().contains(r.toRect()) for r in texts)
            for tag in view.tag_rects():
                assert not any(tag.intersects(text) for text in texts), size
            label = view.label_rect()
            assert not any(label.intersects(text) for text in texts), (size, median)
