"""Property-based tests (hypothesis): the config loader, the CSV manifest reader and the folder
scanner never end in a traceback, whatever they are given, and valid input round-trips."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any, get_type_hints

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests import test_data_helpers as make
from workbench import config as cfg
from workbench.config import RunConfig, absolute_paths, load_config, save_config
from workbench.data.scan import JUNK_NAMES, index_dataset
from workbench.errors import UserError

FAST = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
# TOML text holds any Unicode scalar value; lone surrogates are not text
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
CHOICES = sorted({m.value for obj in vars(cfg).values()
                  if isinstance(obj, type) and issubclass(obj, StrEnum) and obj is not StrEnum
                  for m in obj})
SCALARS = (st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.booleans() | TEXT | st.sampled_from(CHOICES))
TOML_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)


def _field_keys() -> list[tuple[str, str, type]]:
    sections = get_type_hints(RunConfig)
    return [(name, key, kind) for name, section in sections.items()
            for key, kind in get_type_hints(section).items()]


FIELDS = _field_keys()


def _value_for(kind: type) -> st.SearchStrategy[Any]:
    if kind is bool:
        return st.booleans()
    if kind is int:
        return st.integers(-5, 5) | st.integers(-2**40, 2**40)
    if kind is float:
        return st.floats(-2.0, 2.0) | st.floats(allow_nan=True, allow_infinity=True)
    return TEXT | st.sampled_from(CHOICES)


@st.composite
def valid_configs(draw: st.DrawFn) -> RunConfig:
    """A RunConfig with random values, each kept only when the config still validates."""
    config = RunConfig()
    for section, key, kind in draw(st.lists(st.sampled_from(FIELDS), max_size=12)):
        part = getattr(config, section)
        old = getattr(part, key)
        setattr(part, key, draw(_value_for(kind)))
        try:
            config.validate()
        except UserError:
            setattr(part, key, old)
    return config


@FAST
@given(valid_configs())
def test_valid_configs_round_trip_through_toml(config):
    with tempfile.TemporaryDirectory() as folder:
        path = save_config(config, Path(folder) / "run.toml")
        # relative paths in memory mean the working directory's; the file holds them exactly
        assert load_config(path).to_dict() == absolute_paths(config).to_dict()


@FAST
@given(st.dictionaries(st.sampled_from(["data", "model", "advice", "train", "x"]) | TEXT,
                       st.dictionaries(st.sampled_from([k for _, k, _ in FIELDS]) | TEXT,
                                       TOML_VALUES, max_size=4)
                       | TOML_VALUES, max_size=4))
def test_any_toml_document_loads_or_is_one_readable_line(raw):
    import tomli_w

    try:
        text = tomli_w.dumps(raw)
    except (TypeError, ValueError):  # not representable as TOML (e.g. NaN in some versions)
        return
    _load_text(text)


@FAST
@given(st.binary(max_size=200) | TEXT)
def test_any_bytes_as_a_config_file_load_or_are_one_readable_line(content):
    _load_text(content)


def _load_text(content: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.toml"
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        try:
            loaded = load_config(path)
        except UserError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            loaded.validate()


# -- the CSV manifest ---------------------------------------------------------------------------

CELLS = st.sampled_from(["a/0.png", "a/1.png", "b/0.png", "b/1.jpg", "missing.png", "a",
                         "../outside.png", "/abs/x.png", "notes.txt", "", " ", "a/0.png "]) | TEXT
LABELS = st.sampled_from(["cat", "dog", "", " cat ", "ca,t", "ca\"t"]) | TEXT
SPLITS = st.sampled_from(["train", "val", "test", "valid", "", "holdout", "TRAIN"])


def _csv_files(root: Path) -> None:
    for name in ("a/0.png", "a/1.png", "b/0.png", "b/1.jpg"):
        make.noise_png(root / name, seed=len(name))


@FAST
@given(st.lists(st.tuples(CELLS, LABELS, SPLITS), max_size=12),
       st.sampled_from(["path,label,split", "path,label", "label,path", "x,y", "", "PATH ,Label",
                        "file_name,label,split", "id,class", "image,image", "label,label",
                        "File Name,Target,split"]))
def test_any_manifest_lists_or_is_one_readable_line(rows, header):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _csv_files(root)
        out = io.StringIO()
        if header:
            out.write(header + "\n")
        csv.writer(out).writerows(rows)
        (root / "list.csv").write_text(out.getvalue(), encoding="utf-8")
        _index_or_user_error(root / "list.csv", root)


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_as_a_manifest_are_handled(content):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "list.csv").write_bytes(content)
        _index_or_user_error(Path(folder) / "list.csv", Path(folder))


@FAST
@given(st.lists(st.tuples(st.sampled_from(["a/0.png", "a/1.png", "b/0.png", "b/1.jpg"]),
                          st.sampled_from(["cat", "dog", "bird"]),
                          st.sampled_from(["train", "val", "test"])), min_size=1, max_size=8,
                unique_by=lambda row: row[0]),
       st.sampled_from(["path,label,split", "file_name,label,split", "Image,Category,Split",
                        "filename,class,split"]))
def test_a_valid_manifest_round_trips(rows, header):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _csv_files(root)
        lines = [header, *(",".join(row) for row in rows)]
        (root / "list.csv").write_text("\n".join(lines) + "\n")
        index = index_dataset(root / "list.csv", val_fraction=0)
        listed = {(Path(p).relative_to(root).as_posix(), index.class_names[label], split)
                  for p, label, split in zip(index.paths, index.labels, index.splits,
                                             strict=True)}
        assert listed == set(rows)


def _index_or_user_error(source: Path, root: Path) -> None:
    try:
        index = index_dataset(source)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    _check_index(index, root)


def _check_index(index, root: Path) -> None:
    """What every listing promises: real regular files, once each, with known classes."""
    assert len(set(index.paths)) == len(index.paths)
    assert len(index.paths) == len(index.labels) == len(index.splits)
    for path, label, split in zip(index.paths, index.labels, index.splits, strict=True):
        assert os.path.isfile(path), path
        assert 0 <= label < index.num_classes and split in ("train", "val", "test")
    assert not set(index.class_names) & JUNK_NAMES


# -- the folder scanner ---------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "cat", "train", "val", "test", "__MACOSX", ".git",
                         "__pycache__", "x.png", "y.jpg", "notes.txt", ".DS_Store", "é"]) | \
    st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=6)
NODES = st.tuples(st.lists(NAMES, min_size=1, max_size=3),
                  st.sampled_from(["image", "text", "empty", "folder", "link_up", "link_root",
                                   "link_out", "link_self", "fifo"]))


def _png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _build(root: Path, nodes: list[tuple[list[str], str]], outside: Path) -> None:
    for parts, kind in nodes:
        path = root.joinpath(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() or path.is_symlink():
                continue
            if kind == "image":  # PNG bytes, whatever the name says
                path.write_bytes(_png_bytes())
            elif kind in ("text", "empty"):
                path.write_text("text" if kind == "text" else "")
            elif kind == "folder":
                path.mkdir()
            elif kind == "fifo":
                os.mkfifo(path)
            else:
                target = {"link_up": path.parent, "link_root": root, "link_out": outside,
                          "link_self": path}[kind]
                path.symlink_to(target)
        except OSError:
            continue  # a name clashed with a file, or runs through a looping link: skip it


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(NODES, max_size=14), st.booleans())
def test_any_folder_tree_lists_or_is_one_readable_line(nodes, follow):
    with tempfile.TemporaryDirectory() as folder:
        root, outside = Path(folder) / "data", Path(folder) / "elsewhere"
        root.mkdir()
        make.noise_png(outside / "far.png", seed=3, size=8)
        _build(root, nodes, outside)
        try:
            index = index_dataset(root, follow_outside_links=follow)
        except UserError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        _check_index(index, root)
        real_root = os.path.realpath(root)
        if not follow:
            assert all(os.path.realpath(p).startswith(real_root + os.sep) for p in index.paths)


@FAST
@given(st.dictionaries(st.sampled_from(["cat", "dog", "bird", "éclair", "7"]),
                       st.integers(1, 4), min_size=2, max_size=4))
def test_a_valid_folder_tree_round_trips(counts):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, n in counts.items():
            for i in range(n):
                make.noise_png(root / name / f"{i}.png", seed=i, size=8)
        index = index_dataset(root, val_fraction=0)
        assert index.class_counts() == counts
        assert dataclasses.asdict(index)["source"] == "folder"
