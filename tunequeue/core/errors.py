"""The one exception type for mistakes a user can fix.

A `UserError` carries a single sentence that says what to change. The CLI prints it on one line and
exits with code 2; the TUI shows it in a notification. It is never shown as a traceback.
"""


class UserError(Exception):
    """A mistake in the user's input, reported as one sentence that says what to change."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
