"""Errors the user can act on.

A `UserError` carries one readable line. The CLI prints it and exits with status 2; the GUI shows
it in a dialog or an inline notice. Anything else is a bug (exit status 1).
"""


class UserError(Exception):
    """Bad input from the user: a missing path, an invalid config value, an unusable dataset.

    The message stays one line whatever it quotes: line breaks inside a file name or a CSV cell
    are shown escaped (\\n, \\r)."""

    def __init__(self, message: object = "", *args: object) -> None:
        text = str(message).replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(text, *args)


class Cancelled(Exception):
    """A long operation stopped because the user asked it to."""
