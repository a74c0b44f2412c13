"""A table of rows (jobs, presets, GPU processes) whose Home and End go to the first and last row.

Textual's `DataTable` gives Home and End to the first and last *column*, which a table with a row
cursor never needs; people who page through a job list (less, task-spooler, nvitop) expect the rows.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class RowTable(DataTable):
    """A `DataTable` with a row cursor: Home and End move it to the first and last row."""

    BINDINGS = [
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
