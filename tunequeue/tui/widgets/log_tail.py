"""The tail of a job's train.log, following new lines as they are written.

Lines are kept as read (`lines`); what is shown folds library warnings: a warning line seen before is
not shown again, its first showing counts the repeats ("(×12)"), and the `warnings.warn(` source
lines Python prints under a warning are left out. `toggle_fold` shows every line as read,
`toggle_wrap` wraps long lines instead of scrolling sideways.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.widgets import RichLog

from tunequeue.tui.data import LOG_MAX_LINES, LogChunk
from tunequeue.tui.text import tr

WARNING_LINE = re.compile(r"(\w*Warning\b|\bWARNING\b|\[W \d|\bwarn(ing)?s?:)", re.IGNORECASE)
WARN_SOURCE_LINE = re.compile(r"^\s+warnings\.warn\(")


def is_warning(line: str) -> bool:
    """Whether `line` is a warning a library printed (Python warnings, logging WARNING lines)."""
    return bool(WARNING_LINE.search(line))


def fold_lines(lines: list[str]) -> list[tuple[str, int]]:
    """(line, how many times it was printed) with repeated warnings and `warnings.warn(` lines folded."""
    shown: list[tuple[str, int]] = []
    first: dict[str, int] = {}
    for line in lines:
        if WARN_SOURCE_LINE.match(line):
            continue
        if is_warning(line):
            if line in first:
                index = first[line]
                shown[index] = (line, shown[index][1] + 1)
                continue
            first[line] = len(shown)
        shown.append((line, 1))
    return shown


class LogTail(RichLog):
    """A read-only log view fed with `LogChunk`s; scrolls to the end unless the user scrolled up."""

    DEFAULT_CSS = """
    LogTail { height: 1fr; min-height: 4; border-top: solid $primary 40%; }
    """

    def __init__(self, *, id: str | None = None, lang: str = "en") -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, max_lines=LOG_MAX_LINES, auto_scroll=False, wrap=False, markup=False)
        self.lang = lang
        self.lines_read: list[str] = []
        self.offset_read = 0
        self.fold = True
        self._placeholder = ""
        self._entries: list[tuple[str, int]] = []

    @property
    def shown(self) -> list[str]:
        """The lines as shown now (folded unless `fold` is off), without repeat counts."""
        if not self.fold:
            return list(self.lines_read)
        return [line for line, _count in fold_lines(self.lines_read)]

    def add_chunk(self, chunk: LogChunk, placeholder: str = "") -> None:
        """Append the chunk's lines; start over when the file was replaced."""
        if chunk.reset:
            self.lines_read = []
        if chunk.missing:
            self.offset_read = 0
            self._placeholder = placeholder if not self.lines_read else ""
        else:
            self._placeholder = ""
            self.lines_read = (self.lines_read + chunk.lines)[-LOG_MAX_LINES:]
            self.offset_read = chunk.offset
        if chunk.reset or chunk.lines or chunk.missing:
            self._redraw(append=not chunk.reset and not chunk.missing)

    def toggle_wrap(self) -> None:
        """Wrap long lines, or scroll sideways."""
        self.wrap = not self.wrap
        self._redraw()

    def toggle_fold(self) -> None:
        """Show every line as read, or fold repeated warnings again."""
        self.fold = not self.fold
        self._redraw()

    def set_language(self, lang: str) -> None:
        """Redraw the fold notes in `lang`."""
        self.lang = lang
        self._redraw()

    def _redraw(self, append: bool = False) -> None:
        """Show the lines again; only the new ones when what is shown just grew at the end."""
        at_end = self.scroll_y >= self.max_scroll_y
        previous = self.scroll_offset
        entries = fold_lines(self.lines_read) if self.fold else [(line, 1) for line in self.lines_read]
        if self._placeholder:
            entries = []
        old = self._entries
        if not (append and entries[: len(old)] == old and len(old) < LOG_MAX_LINES):
            self.clear()
            old = []
            if self._placeholder:
                self.write(Text(self._placeholder, style="dim"))
        for line, count in entries[len(old) :]:
            text = Text(line)
            if count > 1:
                text.append(tr("log.repeated", self.lang, count=count), style="dim yellow")
            self.write(text, scroll_end=False)
        self._entries = entries
        if at_end:
            self.scroll_end(animate=False)
        else:
            self.scroll_to(previous.x, previous.y, animate=False)
