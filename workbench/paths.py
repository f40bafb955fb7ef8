"""Where the workbench keeps its files: the user data folder, the run folder, the hub cache."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "transfer-workbench"


def user_data_dir() -> Path:
    """The folder for generated data (the demo dataset, feature caches).

    `WORKBENCH_DATA_DIR` overrides it, which the tests use to stay out of the user's home.
    """
    override = os.environ.get("WORKBENCH_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def default_runs_dir() -> Path:
    """The folder under which new run directories are created."""
    override = os.environ.get("WORKBENCH_RUNS_DIR")
    return Path(override) if override else user_data_dir() / "runs"


def cache_dir() -> Path:
    """The folder for caches that can be deleted at any time (features, thumbnails)."""
    return user_data_dir() / "cache"


def resources_dir() -> Path:
    """The `workbench/resources/` folder (package data), from a checkout or from a wheel."""
    return Path(__file__).resolve().parent / "resources"
