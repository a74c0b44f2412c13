"""Messages shared by the TUI screens.

`LanguageChanged` is posted by the app to every screen on its stack when the user presses `l`;
a screen re-renders its labels in the new language when it receives it.
"""

from __future__ import annotations

from textual.message import Message


class LanguageChanged(Message):
    """The interface language changed; `lang` is "en" or "zh"."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang
