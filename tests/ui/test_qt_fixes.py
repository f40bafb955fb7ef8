"""The Qt binding's None / bool reference leak must not abort a long GUI session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a long session does to None and the bools: every setter returns None, and pyqtgraph
# connects and disconnects signals on every redraw. 20,000 disconnects is a few hundred redraws
# of the histogram or the training plots; 200,000 setters, a few minutes of clicking.
SESSION = """
import os
os.environ["QT_QPA_PLATFORM"] = "offscreen"
{imports}
from PySide6.QtCore import QObject, Signal

class Source(QObject):
    changed = Signal(object)

def slot(value):
    pass

source = Source()
for _ in range(20_000):
    source.changed.connect(slot)
    source.changed.disconnect(slot)
for _ in range(200_000):
    source.setObjectName("x")
print("alive")
"""


def run_session(imports: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SESSION.format(imports=imports)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_many_signal_disconnects_do_not_abort_the_process():
    done = run_session("import ui  # applies ui.qt_fixes")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "alive"


def test_the_fix_is_applied_once_and_then_sees_no_leak():
    from ui import qt_fixes

    assert qt_fixes.apply() == qt_fixes.apply()  # idempotent
    if qt_fixes.apply():
        assert sys.getrefcount(None) > 1 << 39  # pinned: what is lost can never reach zero
