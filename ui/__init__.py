"""The PySide6 + pyqtgraph face of the workbench (the core is `workbench/`, Qt-free)."""

from ui import qt_fixes

qt_fixes.apply()  # before any widget connects or disconnects a signal
