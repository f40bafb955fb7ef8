"""The core must import without Qt: every module under workbench/ with PySide6 & co. blocked."""

import subprocess
import sys
from pathlib import Path

BLOCKER = r"""
import importlib.abc, pkgutil, sys, importlib
BLOCKED = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "qtpy", "shiboken6")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"Qt import in the core: {name}")
        return None
sys.meta_path.insert(0, Block())
import workbench
names = [m.name for m in pkgutil.walk_packages(workbench.__path__, "workbench.")
         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_core_module_imports_with_qt_blocked():
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 5
