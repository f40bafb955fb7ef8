"""The PySide6 + pyqtgraph face of the workbench (the core is `workbench/`, Qt-free)."""
