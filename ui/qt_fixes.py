"""Work-arounds for bugs of the Qt binding, applied once when `ui` is imported.

PySide6 6.12.0 returns None, True and False to Python without taking a reference to them: every
call of a method that returns nothing (`setObjectName`, `resize`, ...) takes one reference
away from None, and every `SignalInstance.disconnect()` one from True or False. A GUI makes
such calls by the thousand (pyqtgraph alone disconnects dozens of signals per redraw), so after
a few minutes of clicking the count of None or True reaches zero and CPython aborts with
"Fatal Python error: none_dealloc" (or "bool_dealloc"). From Python 3.12 on, these three
objects are immortal and nothing is lost.

The leak is in shiboken's generated wrappers, not in one method that could be wrapped, so the
fix does what CPython 3.12 does: it makes None, True and False immortal by giving them 2**40
extra references. It runs only when a leak is measured on a private object, so a sound binding
or a newer Python is left untouched.
"""

from __future__ import annotations

import ctypes
import sys
import warnings

from PySide6.QtCore import QObject, Signal

_PROBE_CALLS = 8
# References added to each singleton: at the ~1,000 a busy redraw loses, 10^9 redraws.
_PIN = 1 << 40


class _Probe(QObject):
    fired = Signal()


def _noop() -> None:
    """A slot for the probe."""


def binding_leak() -> int:
    """References to None, True and False that a few ordinary calls lose (0 when sound)."""
    probe = _Probe()
    singletons = (None, True, False)
    before = sum(sys.getrefcount(obj) for obj in singletons)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(_PROBE_CALLS):
            probe.setObjectName("probe")  # returns None
            probe.fired.connect(_noop)
            probe.fired.disconnect(_noop)  # returns True
    lost = before - sum(sys.getrefcount(obj) for obj in singletons)
    return max(0, round(lost / _PROBE_CALLS))


def _pin(obj: object) -> bool:
    """Add `_PIN` references to `obj` (ob_refcnt is the first field of a release-build object)."""
    refcnt = ctypes.c_ssize_t.from_address(id(obj))
    if abs(refcnt.value - (sys.getrefcount(obj) - 1)) > 2:
        return False  # not the layout we expect (a debug build): touch nothing
    refcnt.value += _PIN
    return True


def apply() -> bool:
    """Make None, True and False immortal when the binding leaks them; True when done."""
    if sys.version_info >= (3, 12) or sys.getrefcount(None) > _PIN:
        return True  # immortal already (3.12+), or pinned by an earlier call
    if not binding_leak():
        return False
    return all([_pin(None), _pin(True), _pin(False)])
