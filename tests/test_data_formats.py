"""CSV shapes from the ecosystem (Hugging Face imagefolder metadata.csv, fastai / Kaggle CSVs, an
explicit column mapping) and the NAS / OS metadata folders that are never classes or images.

Every dataset here is built from real MNIST digits copied out of the demo dataset.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.config import DataConfig
from workbench.data.manifest import ColumnNames
from workbench.data.scan import index_dataset, open_configured
from workbench.errors import UserError


@pytest.fixture
def digits(demo_root: Path):
    """A function copying `n` real digit PNGs of class `digit` into `folder` (names 0.png...)."""

    def copy(folder: Path, digit: int, n: int, start: int = 0) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        sources = sorted((demo_root / "val" / str(digit)).iterdir())[start:start + n]
        names = []
        for i, src in enumerate(sources, start=start):
            name = f"d{digit}_{i}.png"
            shutil.copy(src, folder / name)
            names.append(name)
        return names

    return copy


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _scan_json(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", "scan", str(path), "--json",
                           "--no-checks", *extra], capture_output=True, text=True, timeout=120)


# -- Hugging Face imagefolder -------------------------------------------------------------------

def test_an_imagefolder_metadata_csv_with_extra_columns_is_read(tmp_path, digits):
    root = tmp_path / "hf"
    rows = ["file_name,label,caption"]
    for digit in (3, 7):
        rows += [f"{n},digit{digit},a handwritten {digit}" for n in digits(root, digit, 6)]
    _write(root / "metadata.csv", rows)
    done = _scan_json(root)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source"] == "csv" and report["num_images"] == 12
    assert report["num_classes"] == 2 and report["val_generated"]
    assert not [p for p in report["problems"] if p["kind"] != "small_class"]


def test_imagefolder_split_folders_each_with_metadata(tmp_path, digits):
    root = tmp_path / "hf"
    for split, n in (("train", 6), ("validation", 2), ("test", 3)):
        rows = ["file_name,label"]
        for digit in (1, 2):
            rows += [f"{name},{digit}" for name in digits(root / split, digit, n)]
        _write(root / split / "metadata.csv", rows)
    index = index_dataset(root)
    assert index.source == "csv" and not index.val_generated
    assert index.split_counts() == {"train": 12, "val": 4, "test": 6}
    assert index.class_counts("val") == {"1": 2, "2": 2}


def test_a_top_metadata_csv_takes_the_split_from_the_path(tmp_path, digits):
    root = tmp_path / "hf"
    rows = ["file_name,label"]
    for split, n in (("train", 5), ("test", 2)):
        for digit in (4, 5):
            rows += [f"{split}/{name},{digit}" for name in digits(root / split, digit, n)]
    _write(root / "metadata.csv", rows)
    index = index_dataset(root, val_fraction=0)
    assert index.split_counts() == {"train": 10, "test": 4}


def test_a_metadata_csv_without_labels_leaves_them_to_the_folders(tmp_path, digits):
    root = tmp_path / "captions"
    rows = ["file_name,text"]
    for digit in (0, 8):
        rows += [f"{digit}/{n},a digit" for n in digits(root / str(digit), digit, 5)]
    _write(root / "metadata.csv", rows)
    index = index_dataset(root, val_fraction=0)
    assert index.source == "folder" and index.class_counts() == {"0": 5, "8": 5}
    assert not index.problems and index.skipped_files == 0


# -- fastai / Kaggle CSVs -----------------------------------------------------------------------

@pytest.mark.parametrize("header", ["filename,label", "image,label", "name,label",
                                    "File Name,Class", "image_path,category", "path,target"])
def test_common_csv_headers_are_recognised(tmp_path, digits, header):
    rows = [header]
    for digit in (2, 6):
        rows += [f"images/{n},{digit}" for n in digits(tmp_path / "images", digit, 5)]
    index = index_dataset(_write(tmp_path / "labels.csv", rows), val_fraction=0)
    assert index.class_counts() == {"2": 5, "6": 5} and not index.problems


def test_kaggle_ids_without_an_extension_name_their_image(tmp_path, digits):
    rows = ["id,label,fold"]
    for digit in (1, 9):
        rows += [f"{Path(n).stem},{digit},0" for n in digits(tmp_path, digit, 5)]
    rows.append("no_such_id,1,0")
    index = index_dataset(_write(tmp_path / "train.csv", rows), val_fraction=0)
    assert len(index) == 10 and all(p.endswith(".png") for p in index.paths)
    assert [p.kind for p in index.problems] == ["missing_file"]


# -- an unrecognised header ---------------------------------------------------------------------

def _odd_csv(tmp_path: Path, digits) -> Path:
    rows = ["picture,digit_name"]
    for digit in (3, 4):
        rows += [f"{n},{digit}" for n in digits(tmp_path, digit, 5)]
    return _write(tmp_path / "odd.csv", rows)


def test_an_unrecognised_header_is_one_line_naming_what_was_found(tmp_path, digits, capsys):
    csv = _odd_csv(tmp_path, digits)
    with pytest.raises(UserError) as caught:
        index_dataset(csv)
    message = str(caught.value)
    assert "picture,digit_name" in message and "file_name" in message and "\n" not in message
    assert "data.path_column" in message
    assert main(["scan", str(csv), "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("workbench: ") and "--path-column" in err[0]


def test_named_columns_read_any_header(tmp_path, digits):
    csv = _odd_csv(tmp_path, digits)
    done = _scan_json(csv, "--path-column", "picture", "--label-column", "digit_name")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["class_counts"] == {"3": 4, "4": 4}  # 20% drawn for val
    config = DataConfig(path=str(csv), val_fraction=0, path_column="Picture",
                        label_column="digit_name")
    assert len(open_configured(config)) == 10
    with pytest.raises(UserError, match="no column 'label' \\(data.label_column\\)"):
        index_dataset(csv, columns=ColumnNames("picture", "label"))
    with pytest.raises(UserError, match="cannot be the same column \\('picture'\\)"):
        index_dataset(csv, columns=ColumnNames("picture", "PICTURE"))


def test_train_reads_a_mapped_csv_through_set(tmp_path, digits, capsys):
    csv = _odd_csv(tmp_path, digits)
    args = ["train", str(csv), "--weights", "random", "--epochs", "1", "--input-size", "32",
            "--batch-size", "4", "--out", str(tmp_path / "runs"), "--set",
            "data.num_workers=0", "--json"]
    assert main(args) == 2
    assert "digit_name" in capsys.readouterr().err
    mapped = args + ["--set", "data.path_column=picture", "--set", "data.label_column=digit_name"]
    assert main(mapped) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished", summary


# -- NAS and OS metadata ------------------------------------------------------------------------

JUNK_FOLDERS = ["@eaDir", "#recycle", "#snapshot", ".@__thumb", "@Recycle", "@Recently-Snapshot",
                ".AppleDouble", "__MACOSX", "$RECYCLE.BIN", "System Volume Information",
                "@EADIR"]


@pytest.mark.parametrize("junk", JUNK_FOLDERS)
def test_nas_and_os_metadata_folders_are_never_classes_or_images(tmp_path, digits, junk):
    root = tmp_path / "data"
    for digit in (5, 6):
        digits(root / str(digit), digit, 4)
    # Synology writes @eaDir/<image name>/SYNOFILE_THUMB_M.jpg beside every photo
    digits(root / junk / "d5_0.png", 5, 2)
    digits(root / "5" / junk / "d5_0.png", 5, 2)
    index = index_dataset(root, val_fraction=0, min_class_count=1)
    assert index.class_names == ["5", "6"] and len(index) == 8
    assert not index.problems and index.skipped_files == 0


def test_os_metadata_files_are_never_images(tmp_path, digits):
    root = tmp_path / "data"
    for digit in (5, 6):
        names = digits(root / str(digit), digit, 4)
        shutil.copy(root / str(digit) / names[0], root / str(digit) / f"._{names[0]}")
        for junk in ("Thumbs.db", "thumbs.db", "desktop.ini", ".DS_Store"):
            (root / str(digit) / junk).write_bytes(b"\0" * 16)
    (root / "Thumbs.db").write_bytes(b"\0")
    index = index_dataset(root, val_fraction=0, min_class_count=1)
    assert len(index) == 8 and not index.problems and index.skipped_files == 0
    csv = _write(root / "list.csv", ["path,label", "5/._d5_0.png,5", "5/d5_1.png,5",
                                     "6/d6_1.png,6", "6/@eaDir/x.png,6"])
    listed = index_dataset(csv, val_fraction=0, min_class_count=1)
    assert len(listed) == 2 and [p.kind for p in listed.problems] == ["not_image"] * 2
