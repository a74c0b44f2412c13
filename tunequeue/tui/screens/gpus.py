"""Every GPU of the machine: live stats, which of our jobs or which foreign process uses it, recent load.

Every two seconds a thread worker reads the GPUs (NVML or the simulation) and the runner's recent
samples with its own SQLite connection and posts `GpusScreen.Loaded`.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tunequeue.tui.data import GpuRow, load_gpus
from tunequeue.tui.formatting import format_gib
from tunequeue.tui.messages import LanguageChanged
from tunequeue.tui.text import TranslatedBindings, localize_bindings, tr
from tunequeue.tui.widgets.sparkline import ScaledSparkline

COLUMNS = ("index", "name", "util", "mem", "temp", "power", "used_by")
COLUMN_WIDTHS = {"index": 2, "name": 16, "util": 5, "mem": 11, "temp": 5, "power": 6, "used_by": 20}
GPU_REFRESH_SECONDS = 2.0


class GpusScreen(TranslatedBindings, Screen):
    """Table of GPUs and a sparkline of the selected GPU's recent utilisation."""

    DEFAULT_CSS = """
    GpusScreen #gpus-heading { height: 1; padding: 0 1; background: $boost; }
    GpusScreen #gpus-table { height: 1fr; }
    GpusScreen #gpus-history-label { height: 1; padding: 0 1; color: $text-muted; }
    GpusScreen #gpus-history { height: 1; margin: 0 1; }
    """

    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        Binding("q", "quit", "Quit"),
    ]

    class Loaded(Message):
        """A fresh read of the GPUs."""

        def __init__(self, snapshot: Any, rows: list[GpuRow]) -> None:
            super().__init__()
            self.snapshot = snapshot
            self.rows = rows

    class LoadFailed(Message):
        """The GPUs or the queue could not be read this time."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: Any | None = None
        self.rows: list[GpuRow] = []
        self._loading = False

    @property
    def lang(self) -> str:
        """The app's current language."""
        return getattr(self.app, "lang", "en")

    def compose(self) -> ComposeResult:
        """Heading, GPU table, history of the selected GPU, footer."""
        yield Static("", markup=False, id="gpus-heading")
        yield DataTable(id="gpus-table", cursor_type="row")
        yield Static("", markup=False, id="gpus-history-label")
        yield ScaledSparkline(100.0, id="gpus-history")
        yield Footer()

    def on_mount(self) -> None:
        """Set up the table, read the GPUs now and every two seconds."""
        localize_bindings(self, self.lang)
        self._setup_columns()
        self.refresh_gpus()
        interval = max(GPU_REFRESH_SECONDS, getattr(self.app, "refresh_seconds", 1.0))
        self.set_interval(interval, self.refresh_gpus)

    def _setup_columns(self) -> None:
        table = self.query_one("#gpus-table", DataTable)
        table.clear(columns=True)
        for column in COLUMNS:
            table.add_column(tr(f"gpus.col.{column}", self.lang), key=column, width=COLUMN_WIDTHS[column])

    def refresh_gpus(self) -> None:
        """Start a background read unless the previous one still runs."""
        if self._loading:
            return
        self._loading = True
        self._load(self.app.clock())

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpus-load")
    def _load(self, now: float) -> None:
        from tunequeue.jobqueue.db import open_db

        try:
            db = open_db()
            try:
                snapshot, rows = load_gpus(db, now)
            finally:
                db.conn.close()
        except Exception as error:  # noqa: BLE001 - shown in the heading; the next tick retries
            self.post_message(self.LoadFailed(str(error)))
            return
        self.post_message(self.Loaded(snapshot, rows))

    def on_gpus_screen_loaded(self, message: Loaded) -> None:
        """Show a fresh read."""
        self._loading = False
        self.snapshot, self.rows = message.snapshot, message.rows
        self._render_all()

    def on_gpus_screen_load_failed(self, message: LoadFailed) -> None:
        """Say why the GPUs cannot be read."""
        self._loading = False
        self.query_one("#gpus-heading", Static).update(Text(message.error, style="red"))

    def _render_all(self) -> None:
        lang = self.lang
        snapshot = self.snapshot
        if snapshot is None:
            return
        heading = self.query_one("#gpus-heading", Static)
        if snapshot.error and not snapshot.gpus:
            heading.update(Text(tr("gpus.none", lang, error=snapshot.error), style="yellow"))
        else:
            simulated = tr("gpus.simulated_tag", lang) if snapshot.simulated else ""
            heading.update(tr("gpus.heading", lang, count=len(snapshot.gpus), simulated=simulated))
        table = self.query_one("#gpus-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in self.rows:
            table.add_row(*self._cells(row), key=str(row.gpu.index))
        if self.rows:
            table.move_cursor(row=min(cursor, len(self.rows) - 1), animate=False)
        self._render_history()

    def _cells(self, row: GpuRow) -> list[Any]:
        gpu = row.gpu
        lang = self.lang
        name = gpu.name + (tr("gpus.simulated_tag", lang) if gpu.simulated else "")
        util = "-" if gpu.utilization_pct is None else f"{gpu.utilization_pct:.0f}%"
        mem = f"{format_gib(gpu.memory_used_mib)}/{format_gib(gpu.memory_total_mib)}"
        temp = "-" if gpu.temperature_c is None else f"{gpu.temperature_c:.0f}°C"
        power = "-" if gpu.power_w is None else f"{gpu.power_w:.0f} W"
        return [str(gpu.index), name, util, mem, temp, power, self._users_text(row)]

    def _users_text(self, row: GpuRow) -> Text:
        lang = self.lang
        if not row.users:
            return Text(tr("gpus.free", lang), style="green")
        parts = []
        for kind, user in row.users:
            if kind == "job":
                parts.append(tr("gpus.job", lang, id=user.id, name=user.name))
            else:
                parts.append(tr("gpus.foreign", lang, pid=user.pid, name=user.name).rstrip())
        return Text(", ".join(parts), style="cyan" if row.users[0][0] == "job" else "yellow")

    def _render_history(self) -> None:
        table = self.query_one("#gpus-table", DataTable)
        label = self.query_one("#gpus-history-label", Static)
        sparkline = self.query_one("#gpus-history", ScaledSparkline)
        if not self.rows:
            label.update("")
            sparkline.data = []
            return
        row = self.rows[min(table.cursor_row, len(self.rows) - 1)]
        label.update(tr("gpus.history", self.lang, index=row.gpu.index))
        sparkline.data = row.history

    @on(DataTable.RowHighlighted, "#gpus-table")
    def _on_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._render_history()

    def on_language_changed(self, message: LanguageChanged) -> None:
        """Re-label everything in the new language."""
        localize_bindings(self, message.lang)
        self._setup_columns()
        self._render_all()

    def action_back(self) -> None:
        """Return to the previous screen."""
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_quit(self) -> None:
        """Leave the TUI."""
        self.app.exit()
