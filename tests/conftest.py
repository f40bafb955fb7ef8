"""Shared fixtures: an isolated data folder, the demo dataset built once, a tiny image folder,
no leaked threads. Builders of datasets and configs: tests/builders.py."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep generated data (demo, caches, runs) out of the user's home during tests."""
    data = tmp_path_factory.mktemp("workbench-data")
    os.environ["WORKBENCH_DATA_DIR"] = str(data)
    os.environ["WORKBENCH_RUNS_DIR"] = str(data / "runs")
    return data


@pytest.fixture(scope="session")
def demo_root(_isolated_data_dir: Path) -> Path:
    """The real digits-lt demo dataset (MNIST digits from resources/), built once per session."""
    from workbench.data.demo import build_demo

    return build_demo()


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    """Three classes of noisy colour patches in train/ and val/ (`builders.make_tiny_dataset`)."""
    from tests.builders import make_tiny_dataset

    return make_tiny_dataset(tmp_path / "data")


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    """Fail a test that leaves a Python thread of its own running (like napari's check)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [
            t for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.daemon
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"
