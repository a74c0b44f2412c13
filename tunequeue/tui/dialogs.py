"""Modal dialogs that return an answer: a yes/no confirmation and a one-line text prompt.

Each dialog is a ``ModalScreen[T]``; push it with ``app.push_screen(dialog, callback)`` or
``await app.push_screen_wait(dialog)`` and it dismisses with the user's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tunequeue.core import i18n


def _word(key: str, lang: str) -> str:
    return i18n.text(f"dialog.{key}", lang)


def _app_lang(screen: ModalScreen) -> str:
    return getattr(screen.app, "lang", "en") if screen.is_attached else "en"


class ConfirmDialog(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with True only when the user confirms."""

    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical {
        width: 60; max-width: 95%; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    ConfirmDialog #question { width: 100%; margin-bottom: 1; }
    ConfirmDialog Horizontal { height: auto; align-horizontal: right; }
    ConfirmDialog Button { margin-left: 2; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str, *, lang: str | None = None) -> None:
        """Create the dialog; ``lang`` defaults to the app's language."""
        super().__init__()
        self.question = question
        self._lang = lang

    def compose(self) -> ComposeResult:
        """Question text and the two buttons (No focused, so Enter alone never destroys anything)."""
        lang = self._lang or _app_lang(self)
        with Vertical():
            yield Static(self.question, id="question")
            with Horizontal():
                yield Button(_word("yes", lang) + " (y)", id="yes", variant="error", compact=True)
                yield Button(_word("no", lang) + " (n)", id="no", variant="primary", compact=True)

    def on_mount(self) -> None:
        """Focus the safe answer."""
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Dismiss with the pressed button's answer."""
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        """Dismiss with ``answer`` (bound to y / n / escape)."""
        self.dismiss(answer)


class TextPrompt(ModalScreen["str | None"]):
    """Ask for one line of text; dismisses with the text, or None when cancelled.

    With ``check`` (text → problem or None) the text is checked as it is typed: the problem shows
    under the input and OK / Enter do nothing until it is fixed.
    """

    DEFAULT_CSS = """
    TextPrompt { align: center middle; }
    TextPrompt > Vertical {
        width: 64; max-width: 95%; height: auto; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    TextPrompt Input { margin: 1 0 0 0; }
    TextPrompt #prompt-error { color: $error; height: auto; }
    TextPrompt Horizontal { margin-top: 1; }
    TextPrompt Horizontal { height: auto; align-horizontal: right; }
    TextPrompt Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(
        self,
        label: str,
        initial: str = "",
        *,
        lang: str | None = None,
        check: Callable[[str], str | None] | None = None,
    ) -> None:
        """Create the prompt with ``label`` above an input holding ``initial``, checked by ``check``."""
        super().__init__()
        self.label = label
        self.initial = initial
        self._lang = lang
        self._check = check

    def compose(self) -> ComposeResult:
        """Label, input and OK / Cancel buttons."""
        lang = self._lang or _app_lang(self)
        with Vertical():
            yield Label(self.label)
            yield Input(self.initial, id="prompt-input", compact=True)
            yield Static("", id="prompt-error", markup=False)
            with Horizontal():
                yield Button(_word("ok", lang), id="ok", variant="primary", compact=True)
                yield Button(_word("cancel", lang), id="cancel", compact=True)

    def on_mount(self) -> None:
        """Focus the input; the initial text is checked, its problem shown once the user types."""
        self.query_one(Input).focus()
        self.problem(self.initial.strip(), show=False)

    def problem(self, text: str, *, show: bool = True) -> str | None:
        """Check ``text`` and show the problem under the input; return it (None when fine)."""
        found = self._check(text) if self._check is not None else None
        error = self.query_one("#prompt-error", Static)
        shown = found if show else None
        error.update(shown or "")
        error.display = bool(shown)
        self.query_one("#ok", Button).disabled = found is not None
        return found

    def on_input_changed(self, event: Input.Changed) -> None:
        """Re-check the text as it is typed."""
        event.stop()
        self.problem(event.value.strip())

    def _answer(self, text: str) -> None:
        if self.problem(text) is None:
            self.dismiss(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the input answers with its text (when it passes the check)."""
        event.stop()
        self._answer(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """OK answers with the text, Cancel with None."""
        event.stop()
        if event.button.id == "ok":
            self._answer(self.query_one(Input).value.strip())
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Dismiss with None."""
        self.dismiss(None)


def leave_unless_changed(screen: Any, changed: bool, message: str) -> None:
    """Dismiss ``screen`` at once when nothing was changed; otherwise ask ``message`` first."""
    if not changed:
        screen.dismiss(None)
        return

    def answered(yes: bool | None) -> None:
        if yes:
            screen.dismiss(None)

    screen.app.push_screen(ConfirmDialog(message), answered)
