"""A desktop missing Qt's X11 libraries gets one readable line, not Qt's abort."""

from __future__ import annotations

from workbench_ui import platform_check

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
"""


def test_ldd_output_yields_the_missing_libraries_once():
    assert platform_check.not_found(LDD) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]


def test_only_an_x11_session_is_checked(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    assert platform_check.uses_xcb({"DISPLAY": ":0"})
    assert platform_check.uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"})
    assert not platform_check.uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"})
    assert not platform_check.uses_xcb({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"})
    assert not platform_check.uses_xcb({})


def test_missing_libraries_become_one_line_naming_the_packages(monkeypatch):
    monkeypatch.setattr(platform_check, "uses_xcb", lambda: True)
    monkeypatch.setattr(platform_check, "missing_xcb_libraries", lambda: ["libxcb-icccm.so.4"])
    line = platform_check.display_problem()
    assert line is not None and "\n" not in line
    assert "libxcb-icccm.so.4" in line and "apt-get install" in line and "libxcb-icccm4" in line
    monkeypatch.setattr(platform_check, "missing_xcb_libraries", lambda: [])
    assert platform_check.display_problem() is None


def test_the_real_plugin_can_be_inspected():
    # whatever this machine has, the inspection runs and returns names, not errors
    assert all(name.endswith(tuple(f".so.{i}" for i in range(10)))
               for name in platform_check.missing_xcb_libraries())
