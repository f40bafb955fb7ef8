"""Errors the user can act on.

A `UserError` carries one readable line. The CLI prints it and exits with status 2; the GUI shows
it in a dialog or an inline notice. Anything else is a bug (exit status 1).
"""


class UserError(Exception):
    """Bad input from the user: a missing path, an invalid config value, an unusable dataset."""


class Cancelled(Exception):
    """A long operation stopped because the user asked it to."""
