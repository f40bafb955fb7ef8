"""The Dataset panel on real data: the demo's histogram, thumbnails, problems, errors, cancel."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from workbench.data.index import Problem
from workbench.data.scan import open_dataset
from workbench_ui.dataset_panel import DatasetPanel
from workbench_ui.state import AppState


@pytest.fixture
def panel(qtbot) -> DatasetPanel:
    """A shown Dataset panel over a fresh state; its workers are joined at the end."""
    widget = DatasetPanel(AppState())
    qtbot.addWidget(widget)
    widget.resize(1100, 750)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


def open_and_wait(qtbot, panel: DatasetPanel, source: str | Path) -> None:
    """Open a dataset through the panel's worker and wait until listing and checks are done."""
    with qtbot.waitSignal(panel.opened, timeout=30_000):
        panel.open_path(source)
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=60_000)


def show_demo(panel: DatasetPanel, demo_root: Path) -> None:
    """Show the demo without running the checks (listing only: fast)."""
    panel.state.set_dataset(open_dataset(demo_root), source=str(demo_root))


def write_png(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (value, 255 - value, 40)).save(path)


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    """Two small classes with a text file named .jpg and a truncated PNG among good images."""
    root = tmp_path / "bad tree"
    for i in range(6):
        write_png(root / "cats" / f"cat{i}.png", 10 * i)
        write_png(root / "dogs" / f"dog{i}.png", 100 + 10 * i)
    (root / "cats" / "notes.jpg").write_text("this is not a JPEG", encoding="utf-8")
    good = (root / "dogs" / "dog0.png").read_bytes()
    (root / "dogs" / "cut.png").write_bytes(good[: len(good) // 2])
    return root


def test_demo_shows_ten_bars_per_split_with_bands(qtbot, panel, demo_root):
    show_demo(panel, demo_root)
    hist = panel.histogram
    assert hist.splits() == ["train", "val"]
    assert len(hist.bar_heights("train")) == 10 and len(hist.bar_heights("val")) == 10
    assert hist.bar_heights("val") == [100.0] * 10  # the demo's val split is balanced
    assert "10 classes" in panel.summary.text() and "imbalance 50.0" in panel.summary.text()


def test_sort_toggle_reorders_bars(qtbot, panel, demo_root):
    show_demo(panel, demo_root)
    hist = panel.histogram
    by_count = hist.bar_heights("train")
    assert by_count == sorted(by_count, reverse=True)
    # give the names a different order than the counts, then sort by name
    hist.set_data({"train": {"b": 5, "a": 1, "c": 9}}, {"few": ["a", "b", "c"]})
    assert hist.class_order() == ["c", "b", "a"]
    hist.set_sort("name")
    assert hist.class_order() == ["a", "b", "c"]
    assert hist.bar_heights("train") == [1.0, 5.0, 9.0]


def test_log_toggle_draws_log10_heights(qtbot, panel, demo_root):
    show_demo(panel, demo_root)
    hist = panel.histogram
    train = sorted(panel.state.stats.class_counts["train"].values(), reverse=True)
    hist.set_log_scale(True)
    assert hist.bar_heights("val") == pytest.approx([2.0] * 10)  # log10(100)
    assert hist.bar_heights("train") == pytest.approx([math.log10(n) for n in train])
    hist.set_log_scale(False)
    assert hist.bar_heights("train") == [float(n) for n in train]


def test_clicking_a_bar_fills_the_thumbnails(qtbot, panel, demo_root):
    show_demo(panel, demo_root)
    hist = panel.histogram
    last = hist.class_order()[-1]  # the rarest class
    with qtbot.waitSignal(hist.class_clicked, timeout=2000) as clicked:
        qtbot.mouseClick(hist.plot.viewport(), Qt.MouseButton.LeftButton,
                         pos=hist.bar_center(last).toPoint())
    assert clicked.args == [last]
    expected = sum(panel.state.stats.class_counts[s][last] for s in ("train", "val"))
    assert panel.thumbnails.model.rowCount() == expected
    assert f"Class '{last}'" in panel.thumbnails.title.text()
    qtbot.waitUntil(lambda: panel.thumbnails.decoded_count() >= 4, timeout=10_000)


def test_problems_list_shows_the_corrupt_files_and_previews_them(qtbot, panel, bad_tree):
    open_and_wait(qtbot, panel, bad_tree)
    problems = panel.problems
    corrupt = {Path(p.path).name for p in problems.model.problems if p.kind == "corrupt"}
    assert {"notes.jpg", "cut.png"} <= corrupt
    assert problems.counts()["corrupt"] >= 2
    assert "corrupt" in problems.counts_label.text()
    assert "checks done" in panel.summary.text()
    problems.set_kind_filter("corrupt")
    assert problems.visible_rows() == problems.counts()["corrupt"]
    problems.set_kind_filter("")
    assert problems.visible_rows() == problems.model.rowCount()
    row = next(i for i, p in enumerate(problems.model.problems) if p.path.endswith("notes.jpg"))
    problems.select_row(row)
    qtbot.waitUntil(lambda: "corrupt: " in problems.preview.text(), timeout=5000)
    assert problems.show_button.isEnabled()
    good = bad_tree / "cats" / "cat1.png"
    problems.add_problems([Problem("duplicate", str(good), "same content as another")])
    problems.select_row(problems.model.rowCount() - 1)
    qtbot.waitUntil(lambda: not problems.preview.pixmap().isNull(), timeout=5000)


def test_a_nonexistent_path_says_so_and_keeps_the_dataset(qtbot, panel, demo_root, tmp_path):
    show_demo(panel, demo_root)
    before = panel.state.index
    missing = tmp_path / "no such folder"
    with qtbot.waitSignal(panel.open_failed, timeout=10_000) as failed:
        panel.open_path(missing)
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=5000)
    assert "no such file or folder" in failed.args[0]
    assert panel.notice.isVisible() and str(missing) in panel.notice.text()
    assert panel.state.index is before
    assert len(panel.histogram.bar_heights("train")) == 10


def test_a_folder_without_images_gives_a_notice(qtbot, panel, tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "readme.txt").write_text("hi", encoding="utf-8")
    with qtbot.waitSignal(panel.open_failed, timeout=10_000):
        panel.open_path(tmp_path / "empty")
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=5000)
    assert "no images found" in panel.notice.text()
    assert panel.state.index is None


def test_cancel_ends_the_scan_and_keeps_the_listing(qtbot, panel, demo_root, held_checks):
    with qtbot.waitSignal(panel.opened, timeout=30_000):
        panel.open_path(demo_root)
    assert panel.is_scanning() and panel.progress_row.isVisible()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=3000)
    assert not panel.progress_row.isVisible()
    assert "checks cancelled" in panel.summary.text()
    assert len(panel.histogram.bar_heights("train")) == 10  # the listing stays shown


def test_opening_the_demo_through_the_worker(qtbot, panel, demo_root):
    open_and_wait(qtbot, panel, "demo")
    assert panel.state.config.data.path == "demo"
    assert len(panel.histogram.bar_heights("train")) == 10
    assert panel.problems.counts() == {}  # the demo is clean


def test_many_long_class_names_get_short_distinct_labels(qtbot, panel):
    hist = panel.histogram
    names = [f"species_number_{i:02d}_longname" for i in range(60)]
    hist.set_data({"train": {n: 100 - i for i, n in enumerate(names)}}, {"many": names})
    labels = hist.tick_labels()
    assert 1 < len(labels) < 60  # thinned to fit the width
    assert labels[0] == "00"  # the shared prefix and suffix are dropped


def test_a_second_open_during_the_checks_ends_them_visibly(qtbot, panel, demo_root, tmp_path,
                                                         held_checks):
    with qtbot.waitSignal(panel.opened, timeout=30_000):
        panel.open_path(demo_root)
    assert "checking images" in panel.summary.text()
    with qtbot.waitSignal(panel.open_failed, timeout=10_000):
        panel.open_path(tmp_path / "gone")  # replaces the running checks, then fails
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=5000)
    # the demo stays shown, and no longer claims to be checking forever
    assert len(panel.histogram.bar_heights("train")) == 10
    assert "checks cancelled" in panel.summary.text()
    assert "checking images" not in panel.summary.text()
    assert "non-image" not in panel.summary.text()  # nothing skipped: nothing said
    assert not panel.progress_row.isVisible()


def test_a_csv_with_splits_missing_files_and_duplicate_rows(qtbot, panel, tmp_path):
    for i in range(6):
        write_png(tmp_path / "img" / f"a{i}.png", 10 * i)
        write_png(tmp_path / "img" / f"b{i}.png", 100 + 10 * i)
    rows = ["path,label,split"]
    rows += [f"img/{c}{i}.png,{c},{'val' if i < 2 else 'test' if i == 2 else 'train'}"
             for c in "ab" for i in range(6)]
    rows += ["img/gone.png,a,train", "img/a3.png,b,train", "img/a4.png,a,holdout"]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    open_and_wait(qtbot, panel, tmp_path / "data.csv")
    assert panel.histogram.splits() == ["train", "val", "test"]  # test shown, not trained on
    assert panel.histogram.bar_heights("train") == [3.0, 3.0]
    assert panel.problems.counts() == {"small_class": 2, "missing_file": 1, "duplicate_row": 1,
                                       "bad_row": 1}
    row = next(i for i, p in enumerate(panel.problems.model.problems) if p.kind == "bad_row")
    panel.problems.select_row(row)
    text = panel.problems.preview.text
    qtbot.waitUntil(lambda: "unknown split 'holdout'" in text(), timeout=5000)
    assert text().startswith("data.csv:") and "bad row: " in text()


def test_resplit_draws_a_new_validation_split_with_the_chosen_fraction(qtbot, panel, tmp_path):
    root = tmp_path / "nosplit"
    for name, seed in (("red", 1), ("blue", 2)):
        (root / name).mkdir(parents=True)
        for i in range(20):
            Image.new("RGB", (8, 8), (seed * 40, i * 10, 0)).save(root / name / f"{i}.png")
    open_and_wait(qtbot, panel, root)
    assert panel.state.index.split_counts() == {"train": 32, "val": 8}  # the default 0.2
    panel.split_options.val_fraction.setValue(0.5)
    panel.split_options.min_count.setValue(25)
    with qtbot.waitSignal(panel.opened, timeout=30_000):
        panel.split_options.apply_button.click()
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=30_000)
    assert panel.state.config.data.val_fraction == 0.5
    assert panel.state.index.split_counts() == {"train": 20, "val": 20}
    assert {p.kind for p in panel.state.index.problems} >= {"small_class"}  # 10 < 25 each


def test_problems_beyond_the_listed_ones_are_counted(qtbot, panel, tmp_path):
    root = tmp_path / "many_notes"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (8, 8), (i * 30, 0, 0)).save(root / name / f"{i}.png")
    for i in range(70):
        (root / "a" / f"note{i}.txt").write_text("x", encoding="utf-8")
    open_and_wait(qtbot, panel, root)
    assert panel.problems.counts()["not_image"] == 70
    assert "(20 not listed)" in panel.problems.counts_label.text()


def test_thumbnails_follow_numbers_in_file_names(qtbot, panel, tmp_path):
    root = tmp_path / "numbered"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in (1, 2, 10):
            Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(root / name / f"img{i}.png")
    panel.state.set_dataset(open_dataset(root, val_fraction=0), source=str(root))
    panel.show_class("a")
    names = [panel.thumbnails.model.index(row, 0).data() for row in range(3)]
    assert names == ["img1.png", "img2.png", "img10.png"]
