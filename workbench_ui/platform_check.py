"""Say plainly when Qt cannot open a window on this X11 desktop, before Qt aborts the process.

Qt 6's xcb platform plugin needs a few X11 libraries that a minimal Linux install lacks
(libxcb-cursor0 since Qt 6.5, libxcb-icccm4, libxcb-keysyms1, ...). Without them Qt prints a
plugin error and aborts; the workbench instead names the missing files and the packages that
provide them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Debian / Ubuntu packages that provide what the xcb plugin links against.
XCB_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0",
                "libxcb-render-util0", "libxcb-shape0", "libxcb-xkb1", "libxkbcommon-x11-0")


def uses_xcb(environ: dict[str, str] | None = None) -> bool:
    """True when Qt will pick its X11 (xcb) plugin: Linux, a DISPLAY, no other choice made."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or not env.get("DISPLAY"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "")
    return chosen == "xcb" or (not chosen and not env.get("WAYLAND_DISPLAY"))


def not_found(ldd_output: str) -> list[str]:
    """The libraries `ldd` reported as "not found", in order, without repeats."""
    missing: list[str] = []
    for line in ldd_output.splitlines():
        name, _, where = line.strip().partition(" => ")
        if where.strip() == "not found" and name not in missing:
            missing.append(name)
    return missing


def missing_xcb_libraries() -> list[str]:
    """System libraries the xcb plugin needs and cannot find ([] when fine or unknown)."""
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    files = [qt / "plugins" / "platforms" / "libqxcb.so", *qt.glob("lib/libQt6XcbQpa.so*")]
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    missing: list[str] = []
    for path in (f for f in files if f.is_file()):
        done = subprocess.run([ldd, str(path)], capture_output=True, text=True, check=False)
        missing += [name for name in not_found(done.stdout) if name not in missing]
    return missing


def display_problem() -> str | None:
    """One readable line when the window cannot open here, else None."""
    if not uses_xcb():
        return None
    missing = missing_xcb_libraries()
    if not missing:
        return None
    return (f"Qt cannot open a window: missing {', '.join(missing)}; on Debian or Ubuntu: "
            f"sudo apt-get install {' '.join(XCB_PACKAGES)}")
