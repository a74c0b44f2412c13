"""The one exception type for mistakes a user can fix.

A `UserError` carries a single sentence that says what to change. The CLI prints it on one line and
exits with code 2; the TUI shows it in a notification. It is never shown as a traceback.
`one_line` turns any other error into the one line a status bar or a reply has room for.
"""


class UserError(Exception):
    """A mistake in the user's input, reported as one sentence that says what to change."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def one_line(error: BaseException) -> str:
    """An error as one line: the first line of its text, or its type name when it has no text."""
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__
