"""Listing folder trees and CSV manifests into a DatasetIndex, and every bad source."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests import test_data_helpers as make
from workbench.data import manifest
from workbench.data.scan import index_dataset, open_dataset, stratified_val_split
from workbench.errors import UserError


def tree(root: Path, counts: dict[str, int], split: str = "") -> Path:
    """A class-per-folder tree of tiny PNGs (optionally under a split folder)."""
    for name, n in counts.items():
        folder = root / split / name if split else root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            make.rgb_png(folder / f"{i}.png", size=8)
    return root


def kinds(index) -> Counter:
    return Counter(p.kind for p in index.problems)


def test_flat_tree_gets_a_seeded_stratified_val_split(tmp_path: Path) -> None:
    root = tree(tmp_path, {"cat": 20, "dog": 10, "one": 1, "two": 2})
    index = index_dataset(root, val_fraction=0.2, split_seed=3)
    assert index.source == "folder" and index.val_generated
    assert index.class_names == ["cat", "dog", "one", "two"]
    assert index.class_counts("val") == {"cat": 4, "dog": 2, "one": 0, "two": 1}
    assert index.class_counts("train") == {"cat": 16, "dog": 8, "one": 1, "two": 1}
    assert index_dataset(root, split_seed=3).splits == index.splits  # same seed, same split
    assert index_dataset(root, split_seed=4).splits != index.splits
    assert index_dataset(root, val_fraction=0).split_names() == ["train"]


def test_split_folders_are_used_as_given(tmp_path: Path) -> None:
    tree(tmp_path, {"a": 6, "b": 5}, "train")
    tree(tmp_path, {"a": 2, "b": 2}, "val")
    tree(tmp_path, {"a": 1, "b": 1}, "test")
    index = index_dataset(tmp_path)
    assert not index.val_generated
    assert index.split_counts() == {"train": 11, "val": 4, "test": 2}
    assert index.class_counts("train") == {"a": 6, "b": 5}
    assert all(Path(p).is_absolute() for p in index.paths)


def test_train_and_test_only_draws_val_from_train(tmp_path: Path) -> None:
    tree(tmp_path, {"a": 10, "b": 10}, "train")
    tree(tmp_path, {"a": 3, "b": 3}, "test")
    index = index_dataset(tmp_path)
    assert index.val_generated and index.split_counts() == {"train": 16, "val": 4, "test": 6}


def test_unicode_and_spaces_in_names(tmp_path: Path) -> None:
    make.rgb_png(tmp_path / "café au lait" / "猫 写真 1.png")
    make.rgb_png(tmp_path / "Ünïcödé class" / "spaced name.png")
    index = index_dataset(tmp_path, val_fraction=0)
    assert index.class_names == ["café au lait", "Ünïcödé class"]
    assert any(p.endswith("猫 写真 1.png") for p in index.paths)


def test_empty_class_small_class_and_non_images(tmp_path: Path) -> None:
    tree(tmp_path, {"big": 12, "tiny": 2})
    (tmp_path / "empty").mkdir()
    for i in range(60):
        (tmp_path / "big" / f"notes{i}.txt").write_text("x")
    (tmp_path / ".DS_Store").write_text("x")
    index = index_dataset(tmp_path, val_fraction=0, min_class_count=5)
    assert index.class_counts() == {"big": 12, "empty": 0, "tiny": 2}
    found = kinds(index)
    assert found["empty_class"] == 1 and found["small_class"] == 1
    assert index.skipped_files == 60
    assert found["not_image"] == 50  # a bounded list ...
    assert index.unlisted_problems == {"not_image": 10}  # ... and a count of the rest
    assert index.problem_counts()["not_image"] == 60


def test_single_class_is_listed(tmp_path: Path) -> None:
    index = index_dataset(tree(tmp_path, {"only": 5}))
    assert index.num_classes == 1 and len(index) == 5


def test_sources_that_cannot_be_used_raise_one_line(tmp_path: Path) -> None:
    (tmp_path / "docs" / "a").mkdir(parents=True)
    (tmp_path / "docs" / "a" / "readme.txt").write_text("hello")
    (tmp_path / "void").mkdir()
    (tmp_path / "data.txt").write_text("x")
    make.rgb_png(tmp_path / "flat" / "a.png")
    for path, message in [
        (tmp_path / "missing", "no such file or folder"),
        (tmp_path / "docs", "no images found"),
        (tmp_path / "void", "no images found"),
        (tmp_path / "data.txt", "not a folder or a .csv"),
        (tmp_path / "flat", "1 image.s. but no class sub-folders"),
    ]:
        with pytest.raises(UserError, match=message) as info:
            index_dataset(path)
        assert "\n" not in str(info.value)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_manifest_resolves_relative_paths_and_splits(tmp_path: Path) -> None:
    for name in ("a1", "a2", "b1", "b2", "v1"):
        make.rgb_png(tmp_path / "img dir" / f"{name}.png", size=8)
    csv = write_csv(tmp_path / "set.csv", "path,label,split\n"
                    "img dir/a1.png,ant,train\nimg dir/a2.png,ant,train\n"
                    "img dir/b1.png,bee,train\nimg dir/b2.png,bee,\n"
                    "img dir/v1.png,bee,validation\n")
    index = index_dataset(csv)
    assert index.source == "csv" and not index.val_generated
    assert index.class_counts("train") == {"ant": 2, "bee": 2}
    assert index.class_counts("val") == {"ant": 0, "bee": 1}
    assert index.paths[0] == str(tmp_path / "img dir" / "a1.png")


def test_csv_missing_files_and_duplicate_rows_are_problems(tmp_path: Path) -> None:
    for i in range(4):
        make.rgb_png(tmp_path / f"{i}.png", size=8)
    csv = write_csv(tmp_path / "m.csv", "Path,Label\n0.png,x\n1.png,x\n2.png,y\n3.png,y\n"
                    "0.png,x\n1.png,y\nghost.png,y\nnotes.txt,y\n,y\n")
    index = index_dataset(csv)
    found = kinds(index)
    assert len(index) == 4 and index.val_generated
    assert found["duplicate_row"] == 2 and found["missing_file"] == 1
    assert found["not_image"] == 1 and found["bad_row"] == 1
    rows = [p for p in index.problems if p.kind == "duplicate_row"]
    assert sum("different label" in p.detail for p in rows) == 1


@pytest.mark.parametrize("text", ["url,label\na.png,x\n", "path\na.png\n", ""])
def test_csv_without_required_columns_is_rejected(tmp_path: Path, text: str) -> None:
    with pytest.raises(UserError, match="no (path|label) column recognised|empty CSV"):
        index_dataset(write_csv(tmp_path / "bad.csv", text))


def test_unreadable_csv_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make.rgb_png(tmp_path / "a.png")
    csv = write_csv(tmp_path / "locked.csv", "path,label\na.png,x\n")
    make.make_unreadable(csv, manifest, monkeypatch)
    with pytest.raises(UserError, match="permission denied"):
        index_dataset(csv)


def test_stratified_split_keeps_a_training_image_per_class() -> None:
    labels = [0] * 2 + [1] * 1 + [2] * 50
    picked = stratified_val_split(labels, 0.5, seed=0)
    counts = Counter(labels[i] for i in picked)
    assert counts == {0: 1, 2: 25}


def test_open_dataset_accepts_demo(demo_root: Path) -> None:
    index = open_dataset("demo")
    assert index.root == demo_root and index.split_names() == ["train", "val"]
