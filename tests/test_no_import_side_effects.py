"""Importing the workbench changes nothing in the user's process: no warning filters, no torch
thread count; what image decoding needs (Pillow's bomb warning as an error) lasts only as long
as the decoding, in every thread."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import warnings
from pathlib import Path

from PIL import Image

from workbench.data.images import ImageError, load_image, verify_image

CORE_MODULES = ("workbench.data.images", "workbench.data.checks", "workbench.data.demo",
                "workbench.models.transfer", "workbench.advice.advisor", "workbench.train.engine")
# Libraries that add warning filters of their own when imported (sympy through torch's compiler,
# scipy through scikit-learn): imported first, so that only our own changes are compared.
THIRD_PARTY = ("torch", "torchvision", "torch._dynamo", "scipy", "sklearn.linear_model",
               "sklearn.decomposition", "sklearn.model_selection", "sklearn.pipeline",
               "sklearn.preprocessing", "sklearn.svm")


def test_importing_the_core_leaves_filters_and_threads_alone() -> None:
    code = (
        "import importlib, json, warnings\n"
        f"for name in {THIRD_PARTY!r}:\n"
        "    importlib.import_module(name)\n"
        "import torch\n"
        "filters, threads = list(warnings.filters), torch.get_num_threads()\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps({'added': [repr(f) for f in warnings.filters if f not in filters],\n"
        "                  'threads': [threads, torch.get_num_threads()]}))\n"
    )
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                          text=True, timeout=300, check=True)
    changes = json.loads(done.stdout.splitlines()[-1])
    assert changes["added"] == []
    assert changes["threads"][0] == changes["threads"][1]


def test_decoding_in_threads_leaves_the_filters_as_they_were(tmp_path: Path) -> None:
    digit = tmp_path / "digit.png"
    Image.new("L", (28, 28), 200).save(digit)
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(bomb)  # 100 megapixels, a few kB
    before = list(warnings.filters)
    failures: list[str] = []

    def decode_both() -> None:
        for _ in range(5):
            verify_image(digit.read_bytes(), "digit.png")
            try:
                load_image(bomb)
            except ImageError as exc:
                failures.append(exc.kind)

    threads = [threading.Thread(target=decode_both) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == ["too_large"] * 20
    assert warnings.filters == before
