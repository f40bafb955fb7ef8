"""Where the workbench keeps its files: the user data folder, the run folder, the cache, and the
rule for writing a path relative to a file's folder."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "transfer-workbench"


def user_data_dir() -> Path:
    """The folder for generated data worth keeping (the demo dataset, the runs).

    `WORKBENCH_DATA_DIR` overrides it, which the tests use to stay out of the user's home.
    """
    override = os.environ.get("WORKBENCH_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def default_runs_dir() -> Path:
    """The folder under which new run directories are created."""
    override = os.environ.get("WORKBENCH_RUNS_DIR")
    return Path(override) if override else user_data_dir() / "runs"


def cache_dir() -> Path:
    """The folder for caches that can be deleted at any time (features, advice trials).

    The platform's cache folder (`$XDG_CACHE_HOME/transfer-workbench` on Linux), so backups and
    disk-usage tools treat it as a cache. `WORKBENCH_CACHE_DIR` overrides it; with only
    `WORKBENCH_DATA_DIR` set (the tests, a portable install) it stays beside the data, in
    `cache/`, so one variable keeps everything the workbench writes in one place.
    """
    override = os.environ.get("WORKBENCH_CACHE_DIR")
    if override:
        return Path(override)
    if os.environ.get("WORKBENCH_DATA_DIR"):
        return user_data_dir() / "cache"
    return Path(platformdirs.user_cache_dir(APP_NAME))


def resources_dir() -> Path:
    """The `workbench/resources/` folder (package data), from a checkout or from a wheel."""
    return Path(__file__).resolve().parent / "resources"


def absolute_from(base: str | Path | None, value: str) -> str:
    """`value` as an absolute, normalized path; a relative one is taken from `base` (default:
    the working directory). No link is resolved: the path stays the one the user named."""
    start = os.path.abspath(base if base is not None else os.curdir)
    return os.path.normpath(os.path.join(start, value))


def relative_inside(folder: str | Path, value: str) -> str:
    """`value` relative to `folder` when it lies inside it, else absolute (a `..` path would
    break as soon as the folder moved without its neighbours)."""
    folder = os.path.normpath(os.path.abspath(folder))
    absolute = absolute_from(None, value)
    try:
        inside = os.path.commonpath([folder, absolute]) == folder
    except ValueError:  # another drive (Windows)
        return absolute
    return os.path.relpath(absolute, folder) if inside else absolute
