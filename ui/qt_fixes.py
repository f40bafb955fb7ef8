"""Work-arounds for bugs of the Qt binding, applied once when `ui` is imported.

PySide6 6.12.0's `SignalInstance.disconnect()` returns True or False without taking a reference
to it. Each call therefore takes one reference away from the bool singletons; pyqtgraph
disconnects dozens of signals whenever a plot is cleared (`PlotItem.clear`), so after a few
hundred redraws the count of `True` reaches zero and CPython aborts with "Fatal Python error:
bool_dealloc". (From Python 3.12 on, True and False are immortal and nothing is lost.)

The leak is not only in `disconnect` (shiboken loses bools on other paths pyqtgraph takes too),
so the fix does what CPython 3.12 does: it makes True and False immortal, by giving them 2**40
extra references. It runs only when a leak is measured on a private signal, so a sound binding
or a newer Python is left untouched.
"""

from __future__ import annotations

import ctypes
import sys
import warnings

from PySide6.QtCore import QObject, Signal

_PROBE_CALLS = 8
# References added to True and False: at the ~100 a plot redraw loses, 10^10 redraws.
_PIN = 1 << 40


class _Probe(QObject):
    fired = Signal()


def _noop() -> None:
    """A slot for the probe."""


def disconnect_leak() -> int:
    """References to True and False that one connect + disconnect loses (0 on a sound binding)."""
    probe = _Probe()
    before = sys.getrefcount(True) + sys.getrefcount(False)
    with warnings.catch_warnings():  # disconnecting a slot never connected warns
        warnings.simplefilter("ignore")
        for _ in range(_PROBE_CALLS):
            probe.fired.connect(_noop)
            probe.fired.disconnect(_noop)
    lost = before - sys.getrefcount(True) - sys.getrefcount(False)
    return max(0, round(lost / _PROBE_CALLS))


def _pin(obj: object) -> bool:
    """Add `_PIN` references to `obj` (ob_refcnt is the first field of a release-build object)."""
    refcnt = ctypes.c_ssize_t.from_address(id(obj))
    if abs(refcnt.value - (sys.getrefcount(obj) - 1)) > 2:
        return False  # not the layout we expect (a debug build): touch nothing
    refcnt.value += _PIN
    return True


def apply() -> bool:
    """Make True and False immortal when the running binding leaks them; True when done."""
    if sys.version_info >= (3, 12) or sys.getrefcount(True) > _PIN:
        return True  # immortal already (3.12+), or pinned by an earlier call
    if not disconnect_leak():
        return False
    return _pin(True) and _pin(False)
