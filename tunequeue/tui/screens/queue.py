"""The home screen: every job in a table, the runner and GPUs in a status line, keys to act on jobs.

Once a second a thread worker reads the queue with its own SQLite connection and posts a
`QueueScreen.Loaded` message; the table is updated in place so the cursor stays on its job. Actions
(cancel, retry, delete, hold, priority) run in a thread worker too and report through a notification;
cancel and delete ask first. The detail line of a job on a Slurm cluster adds its Slurm job id, state or
pending reason, node list and exit status.

The table uses the terminal's width: at 80 columns it keeps id, name, state, GPUs, progress, loss and
times; wider terminals add why a job waits (`tunequeue.tui.reasons`), its priority, when it was
submitted and its attempt, and the name and reason columns take what is left. `?` lists the keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from tunequeue.tui.cluster import cluster_line
from tunequeue.tui.data import GpuSummary, QueueData, RunnerInfo, add_waiting_and_active, load_queue_page
from tunequeue.tui.formatting import (
    STATE_STYLES,
    format_duration,
    format_number,
    job_times,
    progress_percent,
    short_path,
    state_of,
)
from tunequeue.tui.messages import LanguageChanged
from tunequeue.tui.polling import PollingScreen
from tunequeue.tui.reasons import WaitReason, sentence, short_text, wait_reasons
from tunequeue.tui.text import localize_bindings, state_label, tr
from tunequeue.tui.widgets.key_footer import KeyFooter
from tunequeue.tui.widgets.row_table import RowTable

FILTERS: dict[str, set[str] | None] = {
    "all": None,
    "active": {"starting", "running", "cancelling"},
    "waiting": {"queued", "held"},
    "finished": {"succeeded", "failed", "cancelled"},
    "failed": {"failed"},
}
COLUMNS = ("id", "name", "state", "gpus", "progress", "loss", "time")
COLUMN_WIDTHS = {"id": 4, "state": 10, "gpus": 6, "progress": 4, "loss": 6, "time": 12}
# Columns added from this terminal width on, in this order; None: the column takes what is left.
WIDE_COLUMNS: tuple[tuple[int, str, int | None], ...] = (
    (104, "reason", None),
    (124, "priority", 4),
    (140, "submitted", 11),
    (152, "attempt", 4),
)
PAGE_ROWS = 500  # rows read and shown at first; moving past the last one shows the next page
NAME_WIDTH = (12, 32)  # the name column's least and most width
REASON_MIN_WIDTH = 18
CELL_PADDING = 2  # DataTable pads every cell by one column on each side
SCROLLBAR = 2


def table_columns(width: int, id_width: int = COLUMN_WIDTHS["id"]) -> list[tuple[str, int]]:
    """The columns (key, width) shown in a terminal `width` columns wide, ids up to `id_width` digits."""
    fixed = dict(COLUMN_WIDTHS, id=max(COLUMN_WIDTHS["id"], id_width))
    extra = [key for least, key, _width in WIDE_COLUMNS if width >= least]
    fixed.update({key: size for _least, key, size in WIDE_COLUMNS if size is not None})
    # the reason, free text, goes last where it may run long
    keys = [*COLUMNS, *(key for key in extra if key != "reason"), *(["reason"] if "reason" in extra else [])]
    room = width - SCROLLBAR - CELL_PADDING * len(keys) - sum(fixed[key] for key in keys if key in fixed)
    widths = dict(fixed)
    if "reason" in keys:
        widths["name"] = max(NAME_WIDTH[0], min(NAME_WIDTH[1], room - REASON_MIN_WIDTH))
        widths["reason"] = max(REASON_MIN_WIDTH, room - widths["name"])
    else:
        widths["name"] = max(NAME_WIDTH[0], room)
    return [(key, widths[key]) for key in keys]


class QueueScreen(PollingScreen):
    """Jobs of this home, newest first, with the runner and GPU status above them."""

    DEFAULT_CSS = """
    QueueScreen #queue-status { height: auto; max-height: 2; padding: 0 1; background: $boost; }
    QueueScreen #jobs { height: 1fr; }
    QueueScreen #job-detail { height: 2; padding: 0 1; color: $text-muted; }
    QueueScreen #empty { height: auto; padding: 1 2; color: $text-muted; display: none; }
    QueueScreen.empty #empty { display: block; }
    QueueScreen.empty #jobs { height: auto; }
    """

    # Keys that open a screen or a question act when they arrive (priority), so keys typed right after
    # them in one burst reach the new screen instead of this table.
    BINDINGS = [
        Binding("n", "new_task", "New", priority=True),
        Binding("enter", "open_job", "Open", priority=True),
        Binding("c", "cancel_job", "Cancel", priority=True),
        Binding("r", "retry_job", "Retry"),
        Binding("d", "delete_job", "Delete", priority=True),
        Binding("h", "toggle_hold", "Hold", show=False),
        Binding("plus,equals_sign", "priority_up", "Prio+", show=False, key_display="+"),
        Binding("minus", "priority_down", "Prio-", show=False, key_display="-"),
        Binding("e", "edit_job", "Edit", show=False, priority=True),
        Binding("k", "clone_job", "Clone", show=False, priority=True),
        Binding("f", "cycle_filter", "Filter", show=False),
        Binding("s", "start_runner", "Start runner", show=False),
        Binding("g", "gpus", "GPUs", priority=True),
        Binding("p", "presets", "Presets", priority=True),
        Binding("question_mark", "app.show_help", "Keys", key_display="?", priority=True),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_name = "all"
        self.page_rows = PAGE_ROWS
        self.data: QueueData | None = None
        self.reasons: dict[int, WaitReason] = {}
        self._row_keys: list[str] = []
        self._columns: list[tuple[str, int]] = []
        # per row key: the cells shown and the signature they were built from (see _fill_table)
        self._cells: dict[str, list[Any]] = {}
        self._signatures: dict[str, tuple] = {}

    def compose(self) -> ComposeResult:
        """Status line, job table, detail line of the selected job, footer."""
        yield Static("", markup=False, id="queue-status")
        yield RowTable(id="jobs")
        yield Static("", markup=False, id="empty")
        yield Static("", markup=False, id="job-detail")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Set up columns, read the queue now and then once a second."""
        self._setup_columns()
        localize_bindings(self, self.lang)
        self.refresh_data()
        self.set_interval(getattr(self.app, "refresh_seconds", 1.0), self.poll)

    def on_screen_resume(self) -> None:
        """Coming back from another screen: show the latest state at once."""
        self.refresh_data()

    def _setup_columns(self) -> None:
        table = self.query_one("#jobs", DataTable)
        selected = self.selected_job_id()
        table.clear(columns=True)
        self._row_keys = []
        self._cells.clear()
        self._signatures.clear()
        self._columns = table_columns(self.size.width or self.app.size.width, self._id_width())
        for column, width in self._columns:
            table.add_column(tr(f"queue.col.{column}", self.lang), key=column, width=width)
        if self.data is not None:
            self._fill_table(self._visible_jobs(), selected)

    def on_resize(self) -> None:
        """Choose the columns that fit the new width."""
        if table_columns(self.size.width, self._id_width()) != self._columns:
            self._setup_columns()

    def _id_width(self) -> int:
        """Digits of the highest job id read (the id column grows with it)."""
        return len(str(self.data.jobs[0].id)) if self.data is not None and self.data.jobs else 0

    # ---- reading ---------------------------------------------------------------------------

    def refresh_data(self) -> None:
        """Start a background read of the queue unless the previous one still runs."""
        now, states, limit = self.app.clock(), FILTERS[self.filter_name], self.page_rows

        def read(db: Any) -> tuple[QueueData, dict[int, WaitReason]]:
            data = load_queue_page(db, now, states, limit)
            if not self._row_keys:  # the first rows at once; why jobs wait follows
                self.publish((data, {}))
            add_waiting_and_active(db, data, states)
            return data, wait_reasons(db, data.waiting_and_active, data.runner.running, now)

        self.start_read(read)

    def show_data(self, data: tuple[QueueData, dict[int, WaitReason]]) -> None:
        """Show a fresh read (the queue and why each waiting job waits)."""
        self.data, self.reasons = data
        if dict(self._columns).get("id", 0) < self._id_width():
            self._setup_columns()
        self._render_all()

    def show_load_error(self, error: str) -> None:
        """Say why the queue cannot be read; keep the last table."""
        self.query_one("#queue-status", Static).update(tr("queue.db_error", self.lang, error=error))

    # ---- rendering -------------------------------------------------------------------------

    def _render_all(self) -> None:
        if self.data is None:
            return
        self.query_one("#queue-status", Static).update(self._status_text(self.data.runner, self.data.gpus))
        jobs = self._visible_jobs()
        self._fill_table(jobs)
        empty = self.query_one("#empty", Static)
        if not jobs:
            if self.filter_name == "all":
                empty.update(tr("queue.empty", self.lang))
            else:
                name = tr(f"queue.filter.{self.filter_name}", self.lang)
                empty.update(tr("queue.empty_filter", self.lang, name=name))
        self.set_class(not jobs, "empty")
        self._render_detail()

    def _status_text(self, runner: RunnerInfo, gpus: GpuSummary) -> Text:
        lang = self.lang
        text = Text()
        if runner.running:
            text.append(tr("queue.runner_running", lang, pid=runner.pid), style="green")
        else:
            text.append(tr("queue.runner_stopped", lang), style="bold yellow")
        text.append(" · ")
        if gpus.count:
            simulated = tr("gpus.simulated_tag", lang) if gpus.simulated else ""
            text.append(tr("gpus.summary", lang, count=gpus.count, busy=gpus.busy, simulated=simulated))
        elif gpus.error:
            text.append(tr("gpus.none", lang, error=gpus.error))
        else:
            text.append(tr("gpus.none_plain", lang))
        if self.filter_name != "all":
            text.append(" · ")
            text.append(tr("queue.filter", lang, name=tr(f"queue.filter.{self.filter_name}", lang)))
        assert self.data is not None
        if self.data.total > len(self.data.jobs):
            text.append(" · ")
            text.append(tr("queue.page", lang, shown=len(self.data.jobs), total=self.data.total), style="dim")
        return text

    def _visible_jobs(self) -> list[Any]:
        assert self.data is not None
        wanted = FILTERS[self.filter_name]
        return [job for job in self.data.jobs if wanted is None or state_of(job) in wanted]

    def _gpu_cell(self, job: Any) -> str:
        """Assigned GPU indices, or how many a waiting job needs ("need 2"), or "cpu"."""
        if job.assigned_gpus:
            return ",".join(str(index) for index in job.assigned_gpus)
        if job.requested_gpus == 0 or (job.started_at and not job.assigned_gpus):
            return "cpu"
        if job.is_active or job.is_final:
            return "-"
        return tr("queue.need_gpus", self.lang, count=job.requested_gpus)

    def _cell(self, job: Any, column: str) -> Any:
        assert self.data is not None
        latest = self.data.metrics.get(job.id)
        state = state_of(job)
        now = self.app.clock()
        if column == "id":
            return Text(str(job.id), justify="right")
        if column == "name":
            return job.name
        if column == "state":
            return Text(state_label(state, self.lang), style=STATE_STYLES.get(state, ""))
        if column == "gpus":
            return self._gpu_cell(job)
        if column == "progress":
            return Text(progress_percent(job, latest), justify="right")
        if column == "loss":
            return Text(format_number((latest or {}).get("loss")), justify="right")
        if column == "time":
            return job_times(job, latest, now)
        if column == "priority":
            return Text(str(job.priority), justify="right")
        if column == "submitted":
            return tr("queue.ago", self.lang, age=format_duration(now - job.submitted_at))
        if column == "attempt":
            return Text(str(job.attempt), justify="right")
        reason = self.reasons.get(job.id)
        return Text(short_text(reason, self.lang), style="yellow") if reason is not None else ""

    def _row(self, job: Any) -> list[Any]:
        return [self._cell(job, column) for column, _width in self._columns]

    def _signature(self, job: Any) -> tuple:
        """Everything a job's row depends on: a row whose signature is unchanged is not rebuilt."""
        assert self.data is not None
        now = self.app.clock()
        ticking = int(now) if job.is_active else None  # elapsed/ETA move while it runs
        submitted = (
            format_duration(now - job.submitted_at)
            if any(column == "submitted" for column, _width in self._columns)
            else None
        )
        return (
            job.state, job.name, tuple(job.assigned_gpus), job.requested_gpus, job.started_at,
            job.finished_at, job.priority, job.attempt, job.reason, self.reasons.get(job.id),
            self.data.metrics.get(job.id), ticking, submitted,
        )

    def _fill_table(self, jobs: list[Any], selected: int | None = None) -> None:
        """Bring the table to `jobs`, touching only rows that appeared, left or changed.

        A home can hold thousands of jobs: rebuilding or updating every cell each second would keep
        the UI thread busy, so each row remembers its signature and cells.
        """
        table = self.query_one("#jobs", DataTable)
        keys = [str(job.id) for job in jobs]
        if selected is None:
            selected = self.selected_job_id()
        if keys != self._row_keys:
            self._reshape(table, jobs, keys)
            if selected is not None and str(selected) in keys:
                table.move_cursor(row=table.get_row_index(str(selected)), animate=False)
        for job in jobs:
            key = str(job.id)
            signature = self._signature(job)
            if self._signatures.get(key) == signature:
                continue
            row = self._row(job)
            before = self._cells.get(key)
            for index, (column, _width) in enumerate(self._columns):
                if before is None or not _same_cell(before[index], row[index]):
                    table.update_cell(key, column, row[index])
            self._cells[key], self._signatures[key] = row, signature

    def _reshape(self, table: DataTable, jobs: list[Any], keys: list[str]) -> None:
        """Remove rows of jobs no longer shown, add rows of new ones, and keep newest first."""
        wanted = set(keys)
        for key in [key for key in self._row_keys if key not in wanted]:
            table.remove_row(key)
            self._cells.pop(key, None)
            self._signatures.pop(key, None)
        shown = set(self._row_keys)
        added = [job for job in jobs if str(job.id) not in shown]
        for job in added:
            key, row = str(job.id), self._row(job)
            table.add_row(*row, key=key)
            self._cells[key], self._signatures[key] = row, self._signature(job)
        if added and [row.key.value for row in table.ordered_rows] != keys:
            # new jobs were added at the bottom; the table lists newest (highest id) first
            table.sort("id", key=lambda cell: int(cell.plain), reverse=True)
        self._row_keys = keys

    def _render_detail(self) -> None:
        detail = self.query_one("#job-detail", Static)
        job = self.selected_job()
        # the detail line has a fixed height, so a new text needs no new layout
        if job is None:
            detail.update("", layout=False)
            return
        lang = self.lang
        state = state_of(job)
        text = Text(tr("queue.detail", lang, id=job.id, name=job.name, state=state_label(state, lang)))
        reason = self.reasons.get(job.id)
        if state in ("queued", "held") and reason is not None:
            text.append("  " + tr("queue.waiting_because", lang, reason=sentence(reason, lang)), "yellow")
        elif state in ("queued", "held") and job.reason:
            text.append("  " + tr("queue.waiting_because", lang, reason=job.reason))
        elif state in ("failed", "cancelled") and (job.reason or job.exit_code is not None):
            code = "-" if job.exit_code is None else job.exit_code
            text.append("  " + tr("queue.failed_because", lang, code=code, reason=job.reason or "-"), "red")
        elif state in ("succeeded", "running", "starting") and job.run_dir:
            text.append(f"  {short_path(job.run_dir)}")
        cluster = self.data.cluster.get(job.id) if self.data is not None else None
        if cluster is not None:
            text.append("  " + cluster_line(cluster, lang), "cyan")
        detail.update(text, layout=False)

    @on(DataTable.RowHighlighted, "#jobs")
    def _on_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._render_detail()
        table = self.query_one("#jobs", DataTable)
        data = self.data
        at_end = table.row_count > 0 and event.cursor_row >= table.row_count - 1
        if at_end and data is not None and data.total > len(data.jobs) and len(data.jobs) >= self.page_rows:
            self.page_rows += PAGE_ROWS
            self.refresh_data()

    @on(DataTable.RowSelected, "#jobs")
    def _on_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_job()

    def on_language_changed(self, message: LanguageChanged) -> None:
        """Re-label columns, footer and rows in the new language."""
        localize_bindings(self, message.lang)
        self._setup_columns()
        self._render_all()

    # ---- selection -------------------------------------------------------------------------

    def selected_job_id(self) -> int | None:
        """Id of the job under the cursor, or None when the table is empty."""
        table = self.query_one("#jobs", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - cursor outside the rows while the table is rebuilt
            return None
        return int(key.value) if key.value is not None else None

    def selected_job(self) -> Any | None:
        """The job under the cursor, from the last read."""
        job_id = self.selected_job_id()
        if job_id is None or self.data is None:
            return None
        return next((job for job in self.data.jobs if job.id == job_id), None)

    def _require_job(self) -> Any | None:
        job = self.selected_job()
        if job is None:
            self.notify(tr("queue.no_selection", self.lang), severity="warning")
        return job

    # ---- actions ---------------------------------------------------------------------------

    def action_open_job(self) -> None:
        """Open the selected job's dashboard."""
        job = self._require_job()
        if job is None:
            return
        from tunequeue.tui.screens.dashboard import DashboardScreen

        self.app.push_screen(DashboardScreen(job.id))

    def action_cycle_filter(self) -> None:
        """Show the next group of states: all → active → waiting → finished → failed."""
        names = list(FILTERS)
        self.filter_name = names[(names.index(self.filter_name) + 1) % len(names)]
        self.page_rows = PAGE_ROWS
        self._render_all()  # at once from what was read; the next read brings the rest of the page
        self.refresh_data()

    def action_cancel_job(self) -> None:
        """Ask, then cancel the selected job (a running one is stopped by the runner)."""
        job = self._require_job()
        if job is None:
            return
        question = tr("queue.confirm_cancel", self.lang, id=job.id, name=job.name)

        def cancel(db: Any) -> str:
            from tunequeue.jobqueue import jobs

            jobs.request_cancel(db, job.id)
            return tr("queue.cancelled", self.lang, id=job.id)

        self._confirm_then(question, cancel)

    def action_delete_job(self) -> None:
        """Ask, then delete the selected job and its run directory."""
        job = self._require_job()
        if job is None:
            return
        question = tr("queue.confirm_delete", self.lang, id=job.id, name=job.name)

        def delete(db: Any) -> str:
            from tunequeue.jobqueue import jobs

            jobs.delete(db, job.id)
            return tr("queue.deleted", self.lang, id=job.id)

        self._confirm_then(question, delete)

    def action_retry_job(self) -> None:
        """Queue a failed or cancelled job again (it resumes from its last checkpoint)."""
        job = self._require_job()
        if job is None:
            return

        def retry(db: Any) -> str:
            from tunequeue.jobqueue import jobs

            again = jobs.retry(db, job.id)
            return tr("queue.retried", self.lang, id=job.id, attempt=again.attempt)

        self.run_action(retry)

    def action_toggle_hold(self) -> None:
        """Hold a queued job, or release a held one."""
        job = self._require_job()
        if job is None:
            return
        held = state_of(job) == "held"

        def toggle(db: Any) -> str:
            from tunequeue.jobqueue import jobs

            if held:
                jobs.release(db, job.id)
                return tr("queue.released", self.lang, id=job.id)
            jobs.hold(db, job.id)
            return tr("queue.held", self.lang, id=job.id)

        self.run_action(toggle)

    def _change_priority(self, delta: int) -> None:
        job = self._require_job()
        if job is None:
            return

        def change(db: Any) -> str:
            from tunequeue.jobqueue import jobs

            current = jobs.get(db, job.id)
            updated = jobs.set_priority(db, job.id, current.priority + delta)
            priority = getattr(updated, "priority", current.priority + delta)
            return tr("queue.priority", self.lang, id=job.id, priority=priority)

        self.run_action(change)

    def action_priority_up(self) -> None:
        """Raise the selected job's priority by one (higher starts first)."""
        self._change_priority(+1)

    def action_priority_down(self) -> None:
        """Lower the selected job's priority by one."""
        self._change_priority(-1)

    def action_new_task(self) -> None:
        """Open the task wizard; a submitted task appears in the table."""
        self._push_wizard()

    def action_edit_job(self) -> None:
        """Edit the selected job's task in the wizard (queued or held jobs only)."""
        job = self._require_job()
        if job is None:
            return
        if state_of(job) not in ("queued", "held"):
            self.notify(tr("queue.only_queued_edit", self.lang), severity="warning")
            return
        self._push_wizard(edit_job_id=job.id)

    def action_clone_job(self) -> None:
        """Start the wizard from a copy of the selected job's task."""
        job = self._require_job()
        if job is None:
            return
        self._push_wizard(clone_job_id=job.id)

    def _push_wizard(self, **kwargs: int) -> None:
        try:
            from tunequeue.tui.screens.wizard import WizardScreen
        except ImportError:
            self.notify(tr("queue.not_available", self.lang), severity="error")
            return

        def submitted(job_id: int | None) -> None:
            # the wizard reports the new job itself; show it in the table at once
            self.refresh_data()

        self.app.push_screen(WizardScreen(**kwargs), submitted)

    def action_presets(self) -> None:
        """Open the presets manager."""
        try:
            from tunequeue.tui.screens.presets import PresetsScreen
        except ImportError:
            self.notify(tr("queue.not_available", self.lang), severity="error")
            return
        self.app.push_screen(PresetsScreen())

    def action_gpus(self) -> None:
        """Open the GPUs screen."""
        from tunequeue.tui.screens.gpus import GpusScreen

        self.app.push_screen(GpusScreen())

    def action_quit(self) -> None:
        """Leave the TUI; jobs and the runner keep going."""
        self.app.exit()

    def action_start_runner(self) -> None:
        """Start the runner daemon in the background (it survives this TUI)."""
        if self.data is not None and self.data.runner.running:
            self.notify(tr("queue.runner_already", self.lang))
            return
        self.notify(tr("queue.runner_starting", self.lang))
        self._start_runner()

    @work(thread=True, exclusive=True, exit_on_error=False, group="queue-runner")
    def _start_runner(self) -> None:
        from tunequeue.core.errors import UserError
        from tunequeue.runner import daemon

        try:
            daemon.start_detached()
        except UserError as error:
            self.post_message(self.ActionDone(error.message, error=True))
            return
        except OSError as error:
            self.post_message(self.ActionDone(str(error), error=True))
            return
        self.post_message(self.ActionDone(tr("queue.runner_started", self.lang)))

    def _confirm_then(self, question: str, change: Callable[[Any], str]) -> None:
        from tunequeue.tui.dialogs import ConfirmDialog

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_action(change)

        self.app.push_screen(ConfirmDialog(question), answered)


def _same_cell(before: Any, after: Any) -> bool:
    """Whether two cell values draw the same (rich `Text` equality ignores the base style)."""
    if isinstance(before, Text) and isinstance(after, Text):
        return before == after and before.style == after.style and before.justify == after.justify
    return type(before) is type(after) and before == after
