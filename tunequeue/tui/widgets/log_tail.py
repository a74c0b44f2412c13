"""The tail of a job's train.log, following new lines as they are written."""

from __future__ import annotations

from textual.widgets import Log

from tunequeue.tui.data import LOG_MAX_LINES, LogChunk


class LogTail(Log):
    """A read-only log view fed with `LogChunk`s; scrolls to the end unless the user scrolled up."""

    DEFAULT_CSS = """
    LogTail { height: 7; border-top: solid $primary 40%; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, max_lines=LOG_MAX_LINES, auto_scroll=True)
        self.offset_read = 0
        self._showing_placeholder = False

    def add_chunk(self, chunk: LogChunk, placeholder: str = "") -> None:
        """Append the chunk's lines; clear first when the file was replaced or a placeholder is shown."""
        if chunk.reset or (self._showing_placeholder and chunk.lines):
            self.clear()
            self._showing_placeholder = False
        if chunk.missing:
            if not self.line_count and placeholder:
                self.write_line(placeholder)
                self._showing_placeholder = True
            self.offset_read = 0
            return
        if chunk.lines:
            self.write_lines(chunk.lines)
        self.offset_read = chunk.offset
