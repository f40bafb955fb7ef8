"""The wheel a user installs: only `workbench` and `workbench_ui` at the top (a local `ui/` or
`resources.py` must not shadow anything), the bundled data inside, the licence declared."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    # built from a copy, so setuptools' build/ and egg-info never land in the checkout
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for package in ("workbench", "workbench_ui"):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(out), str(source)],
                   check=True, capture_output=True, timeout=300)
    (file,) = out.glob("transfer_workbench-*.whl")
    return zipfile.ZipFile(file)


def test_the_wheel_holds_two_packages_and_the_bundled_data(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"workbench", "workbench_ui"}
    for data in ("mnist-5000.npz", "default_config.toml", "style.qss", "README.md"):
        assert f"workbench/resources/{data}" in names


def test_the_wheel_declares_the_mit_licence_and_ships_its_text(wheel: zipfile.ZipFile) -> None:
    info = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    meta = email.message_from_bytes(wheel.read(info))
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    assert any(c.startswith("Topic :: Scientific/Engineering") for c in meta.get_all("Classifier"))
    text = next(n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
    assert wheel.read(text).decode().startswith("MIT License")
    assert meta["Version"] in subprocess.run(
        [sys.executable, "-m", "workbench", "--version"], capture_output=True, text=True,
        timeout=120, check=True).stdout
