"""The run config round-trips through TOML and rejects bad values with one readable line."""

import os
import shutil
import sys
import tomllib

import pytest

from workbench.config import RunConfig, absolute_paths, load_config, save_config
from workbench.errors import UserError


def test_round_trip(tmp_path):
    config = RunConfig()
    config.model.freeze_stages = 3
    config.data.loss_weighting = "effective_number"
    path = save_config(config, tmp_path / "run.toml")
    assert load_config(path) == config


@pytest.mark.parametrize(
    "text, message",
    [
        ("[train]\nepochs = 0\n", "train.epochs"),
        ("[train]\nlr = 'fast'\n", "train.lr"),
        ("[model]\nnorm_policy = 'weird'\n", "model.norm_policy"),
        ("[model]\nfreze_stages = 2\n", "model.freze_stages"),
        ("[colour]\n", "colour"),
        ("[train\n", "not valid TOML"),
    ],
)
def test_bad_values_give_one_readable_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value).strip() or "TOML" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.toml")



def test_a_deeply_nested_array_is_one_readable_line(tmp_path):
    # tomllib parses arrays recursively: 10,000 levels end in a RecursionError without the guard
    path = tmp_path / "deep.toml"
    path.write_text("[train]\nlr = " + "[" * 10_000 + "]" * 10_000 + "\n")
    with pytest.raises(UserError, match="nests arrays or tables too deeply") as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_a_nested_value_of_the_wrong_type_is_a_short_line(tmp_path):
    path = tmp_path / "nested.toml"
    path.write_text("[train]\nlr = " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(UserError, match=r"train.lr must be a float") as info:
        load_config(path)
    assert len(str(info.value)) < 120


def test_paths_inside_the_config_folder_are_saved_relative_and_load_back(tmp_path):
    project = tmp_path / "project"
    config = RunConfig()
    config.data.path = str(project / "data" / "birds")
    config.data.corrections = str(project / "fixes.csv")
    config.model.weights = str(tmp_path / "elsewhere" / "w.pth")  # outside: stays absolute
    config.train.out_dir = str(project / "runs")
    file = save_config(config, project / "run.toml")
    saved = tomllib.loads(file.read_text(encoding="utf-8"))
    assert saved["data"]["path"] == os.path.join("data", "birds")
    assert saved["data"]["corrections"] == "fixes.csv"
    assert saved["train"]["out_dir"] == "runs"
    assert saved["model"]["weights"] == str(tmp_path / "elsewhere" / "w.pth")

    moved = tmp_path / "moved"
    shutil.move(project, moved)  # the project folder moves as one: its config still finds it all
    loaded = load_config(moved / "run.toml")
    assert loaded.data.path == str(moved / "data" / "birds")
    assert loaded.data.corrections == str(moved / "fixes.csv")
    assert loaded.train.out_dir == str(moved / "runs")
    assert loaded.model.weights == config.model.weights


def test_relative_paths_load_from_the_config_folder_not_the_working_directory(
    tmp_path, monkeypatch
):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "run.toml").write_text('[data]\npath = "../data"\n[model]\nweights = "DEFAULT"\n')
    monkeypatch.chdir(tmp_path / "configs" / "..")
    loaded = load_config(folder / "run.toml")
    assert loaded.data.path == str(tmp_path / "data")
    assert loaded.model.weights == "DEFAULT"  # a weights name is not a path


def test_names_that_are_not_paths_are_kept_as_written(tmp_path):
    config = RunConfig()
    config.data.path = "demo"
    config.train.out_dir = "~/runs"
    loaded = load_config(save_config(config, tmp_path / "run.toml"))
    assert (loaded.data.path, loaded.train.out_dir) == ("demo", "~/runs")


def test_a_relative_path_in_memory_is_saved_as_the_file_it_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = RunConfig()
    config.data.path = "data"  # relative to the working directory, as the CLI was given it
    loaded = load_config(save_config(config, tmp_path / "configs" / "run.toml"))
    assert loaded.data.path == str(tmp_path / "data")
    assert loaded == absolute_paths(config)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG is the Linux convention")
def test_caches_live_under_xdg_cache_home_not_the_user_data(tmp_path, monkeypatch):
    from workbench import paths

    monkeypatch.delenv("WORKBENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("WORKBENCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert paths.cache_dir() == tmp_path / "cache" / "transfer-workbench"
    assert paths.user_data_dir() == tmp_path / "data" / "transfer-workbench"
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert paths.cache_dir() == tmp_path / "elsewhere"
