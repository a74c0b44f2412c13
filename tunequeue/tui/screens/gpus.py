"""Every GPU of the machine with its recent history, every process on them, and the host's CPU and memory.

One card per GPU: utilisation, memory, temperature and power (against its limit), each with a sparkline
of the runner's samples of the last minutes (or, without a runner, of what this screen read itself),
and which of our jobs uses it. Below, the processes on all GPUs, largest GPU memory first: pid, owner,
compute or graphics, GPU memory, our job or "—", command line. On a row of ours `c` cancels the job
(after asking) and `enter` opens its dashboard.

Every two seconds a thread worker reads the GPUs (NVML or the simulation), the host (psutil) and the
queue database with its own SQLite connection; nothing of that runs on the event loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from tunequeue.tui.formatting import format_gib
from tunequeue.tui.messages import LanguageChanged
from tunequeue.tui.polling import PollingScreen
from tunequeue.tui.text import localize_bindings, tr
from tunequeue.tui.widgets.key_footer import KeyFooter
from tunequeue.tui.widgets.row_table import RowTable
from tunequeue.tui.widgets.sparkline import ScaledSparkline

GPU_REFRESH_SECONDS = 2.0
HISTORY_SECONDS = 300.0
LOCAL_HISTORY_POINTS = 150
TEMPERATURE_CEILING_C = 100.0
METRICS = ("util", "mem", "temp", "power")
SAMPLE_FIELDS = {"util": "utilization", "mem": "memory_used_mib", "temp": "temperature", "power": "power_w"}
COLUMNS = ("gpu", "pid", "user", "kind", "mem", "job", "command")
COLUMN_WIDTHS = {"gpu": 3, "pid": 7, "user": 8, "kind": 4, "mem": 7, "job": 12}
SORTS = ("memory", "gpu", "pid", "user")
NOT_OURS = "—"


@dataclass
class GpusView:
    """One read for the GPUs screen: the GPUs, their history, who runs on them, and the host."""

    snapshot: Any
    host: Any
    # GPU uuid → metric (util/mem/temp/power) → values, oldest first, from the runner's samples
    history: dict[str, dict[str, list[float]]]
    # pid → our job that process belongs to
    ours: dict[int, Any]
    # GPU index → our active jobs assigned to it
    assigned: dict[int, list[Any]]
    time: float = 0.0
    processes: list[tuple[Any, Any]] = field(default_factory=list)


def load_gpus_view(db: Any, now: float) -> GpusView:
    """Read the GPUs, describe their processes, match them to our active jobs, read samples and the host."""
    from tunequeue.gpus import processes, read_gpus
    from tunequeue.jobqueue import jobs, metrics

    snapshot = read_gpus()
    processes.describe(snapshot.gpus)
    active = [job for job in jobs.list_jobs(db) if job.is_active]
    assigned = {
        gpu.index: [job for job in active if gpu.index in job.assigned_gpus or gpu.uuid in job.gpu_uuids]
        for gpu in snapshot.gpus
    }
    history: dict[str, dict[str, list[float]]] = {}
    for gpu in snapshot.gpus:
        samples = metrics.get_gpu_samples(db, uuid=gpu.uuid, since=now - HISTORY_SECONDS)
        history[gpu.uuid] = {
            metric: [float(row.get(column) or 0.0) for row in samples]
            for metric, column in SAMPLE_FIELDS.items()
        }
    return GpusView(
        snapshot=snapshot,
        host=processes.read_host(),
        history=history,
        ours=processes.match_jobs(snapshot.gpus, active),
        assigned=assigned,
        time=now,
        processes=processes.processes_by_memory(snapshot.gpus),
    )


def _live_values(gpu: Any) -> dict[str, float]:
    return {
        "util": float(gpu.utilization_pct or 0.0),
        "mem": float(gpu.memory_used_mib or 0.0),
        "temp": float(gpu.temperature_c or 0.0),
        "power": float(gpu.power_w or 0.0),
    }


def _number(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.0f}{suffix}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


class GpuCard(Vertical):
    """One GPU: a title line with our jobs on it, then four values each followed by its sparkline."""

    DEFAULT_CSS = """
    GpuCard { height: 2; padding: 0 1; }
    GpuCard .card-title { height: 1; }
    GpuCard .card-metrics { height: 1; }
    GpuCard .metric-value { width: auto; padding-right: 1; }
    GpuCard .metric { width: 1fr; padding-right: 1; }
    GpuCard ScaledSparkline { width: 1fr; height: 1; margin: 0; }
    """

    def __init__(self, index: int) -> None:
        super().__init__(id=f"gpu-card-{index}", classes="gpu-card")
        self.index = index
        # Held here, not queried: a card can be shown before its children are mounted.
        self.title = Static("", markup=False, classes="card-title")
        self.values = {m: Static("", markup=False, classes=f"metric-value value-{m}") for m in METRICS}
        self.histories = {m: ScaledSparkline(100.0, classes=f"history-{m}") for m in METRICS}

    def compose(self) -> ComposeResult:
        """Title line, then value + sparkline for utilisation, memory, temperature and power."""
        yield self.title
        with Horizontal(classes="card-metrics"):
            for metric in METRICS:
                with Horizontal(classes=f"metric metric-{metric}"):
                    yield self.values[metric]
                    yield self.histories[metric]

    def show(
        self, gpu: Any, jobs: list[Any], foreign: int, history: dict[str, list[float]], lang: str
    ) -> None:
        """Show the latest reading of `gpu`, the jobs and foreign process count on it, and `history`."""
        title = Text(tr("gpus.card_title", lang, index=gpu.index, name=gpu.name), style="bold")
        if gpu.simulated:
            title.append(tr("gpus.simulated_tag", lang), style="magenta")
        title.append("  ")
        if jobs:
            title.append(
                ", ".join(tr("gpus.job", lang, id=job.id, name=job.name) for job in jobs), style="cyan"
            )
        if foreign:
            if jobs:
                title.append(" · ")
            title.append(tr("gpus.foreign_count", lang, count=foreign), style="yellow")
        if not jobs and not foreign:
            title.append(tr("gpus.free", lang), style="green")
        self.title.update(title)
        limit = gpu.power_limit_w
        values = {
            "util": tr("gpus.card.util", lang, value=_number(gpu.utilization_pct, "%")),
            "mem": tr(
                "gpus.card.mem",
                lang,
                used=format_gib(gpu.memory_used_mib),
                total=format_gib(gpu.memory_total_mib),
            ),
            "temp": tr("gpus.card.temp", lang, value=_number(gpu.temperature_c, "°C")),
            "power": tr(
                "gpus.card.power",
                lang,
                value=_number(gpu.power_w),
                limit="" if limit is None else f"/{limit:.0f}",
            ),
        }
        peak_power = max([*history.get("power", []), gpu.power_w or 0.0, 1.0])
        ceilings = {
            "util": 100.0,
            "mem": gpu.memory_total_mib or 1.0,
            "temp": TEMPERATURE_CEILING_C,
            "power": limit if limit else peak_power,
        }
        for metric in METRICS:
            self.values[metric].update(values[metric])
            sparkline = self.histories[metric]
            sparkline.ceiling = ceilings[metric]
            sparkline.data = list(history.get(metric, []))


class GpusScreen(PollingScreen):
    """Cards of the GPUs with history, the host's CPU and memory, and the processes on the GPUs."""

    DEFAULT_CSS = """
    GpusScreen #gpus-heading { height: 1; padding: 0 1; background: $boost; }
    GpusScreen #gpus-host { height: 1; padding: 0 1; color: $text-muted; }
    GpusScreen #gpus-cards { height: auto; max-height: 50%; }
    GpusScreen #gpus-processes-label { height: 1; padding: 0 1; background: $boost; }
    GpusScreen #gpus-processes { height: 1fr; }
    """

    BINDINGS = [
        Binding("enter", "open_job", "Open", priority=True),
        Binding("c", "cancel_job", "Cancel"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("escape,backspace", "back", "Back"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: GpusView | None = None
        self.sort = SORTS[0]
        self._rows: list[tuple[Any, Any]] = []
        # Without runner samples a GPU's history is what this screen read: uuid → (time, values) points.
        self._local: dict[str, deque[tuple[float, dict[str, float]]]] = {}

    def compose(self) -> ComposeResult:
        """Heading, host line, GPU cards, process table, footer."""
        yield Static("", markup=False, id="gpus-heading")
        yield Static("", markup=False, id="gpus-host")
        yield VerticalScroll(id="gpus-cards")
        yield Static("", markup=False, id="gpus-processes-label")
        yield RowTable(id="gpus-processes")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Set up the table, read now and every two seconds."""
        localize_bindings(self, self.lang)
        self._setup_columns()
        self.refresh_data()
        self.set_interval(
            max(GPU_REFRESH_SECONDS, getattr(self.app, "refresh_seconds", 1.0)), self.poll
        )
        self.query_one("#gpus-processes", DataTable).focus()

    def on_screen_resume(self) -> None:
        """Back from a dashboard or a dialog: read at once."""
        self.refresh_data()

    def _setup_columns(self) -> None:
        table = self.query_one("#gpus-processes", DataTable)
        table.clear(columns=True)
        for column in COLUMNS:
            table.add_column(tr(f"gpus.col.{column}", self.lang), key=column, width=COLUMN_WIDTHS.get(column))

    # ---- reading ---------------------------------------------------------------------------

    def refresh_data(self) -> None:
        """Start a background read unless the previous one still runs."""
        now = self.app.clock()
        self.start_read(lambda db: load_gpus_view(db, now))

    def show_data(self, data: GpusView) -> None:
        """Show a fresh read."""
        self.view = data
        for gpu in data.snapshot.gpus:
            points = self._local.setdefault(gpu.uuid, deque(maxlen=LOCAL_HISTORY_POINTS))
            if not points or data.time > points[-1][0]:
                points.append((data.time, _live_values(gpu)))
        self._render_all()

    def show_load_error(self, error: str) -> None:
        """Say why the GPUs cannot be read; keep what is shown."""
        self.query_one("#gpus-heading", Static).update(Text(error, style="red"))

    def _history(self, gpu: Any) -> dict[str, list[float]]:
        assert self.view is not None
        stored = self.view.history.get(gpu.uuid, {})
        if stored.get("util"):
            return stored
        points = self._local.get(gpu.uuid, ())
        return {metric: [values[metric] for _, values in points] for metric in METRICS}

    # ---- showing ---------------------------------------------------------------------------

    def _render_all(self) -> None:
        view = self.view
        if view is None:
            return
        lang = self.lang
        snapshot = view.snapshot
        heading = self.query_one("#gpus-heading", Static)
        if snapshot.error and not snapshot.gpus:
            heading.update(Text(tr("gpus.none", lang, error=snapshot.error), style="yellow"))
        else:
            text = Text(tr("gpus.heading", lang, count=len(snapshot.gpus), simulated=""), style="bold")
            if snapshot.simulated:
                text.append(tr("gpus.simulated_tag", lang), style="bold magenta")
            if snapshot.error:
                text.append("  " + snapshot.error, style="yellow")
            heading.update(text)
        self.query_one("#gpus-host", Static).update(self._host_text(view.host))
        self._render_cards(view)
        self._render_processes(view)

    def _host_text(self, host: Any) -> str:
        lang = self.lang
        load = "" if host.load_average is None else tr("gpus.load", lang, value=f"{host.load_average[0]:.2f}")
        return tr(
            "gpus.host",
            lang,
            cpu=f"{host.cpu_pct:.0f}",
            cores=host.cpu_count,
            used=format_gib(host.memory_used_mib),
            total=format_gib(host.memory_total_mib),
            swap_used=format_gib(host.swap_used_mib),
            swap_total=format_gib(host.swap_total_mib),
            load=load,
        )

    def _render_cards(self, view: GpusView) -> None:
        container = self.query_one("#gpus-cards", VerticalScroll)
        gpus = view.snapshot.gpus
        wanted = [gpu.index for gpu in gpus]
        cards = list(container.query(GpuCard))
        if [card.index for card in cards] != wanted:
            container.remove_children()
            cards = [GpuCard(index) for index in wanted]
            container.mount_all(cards)
        by_index = {gpu.index: gpu for gpu in gpus}
        for card in cards:
            gpu = by_index[card.index]
            jobs = list(view.assigned.get(gpu.index, []))
            for process in gpu.all_processes:
                job = view.ours.get(process.pid)
                if job is not None and all(job.id != known.id for known in jobs):
                    jobs.append(job)
            foreign = sum(1 for process in gpu.all_processes if process.pid not in view.ours)
            card.show(gpu, jobs, foreign, self._history(gpu), self.lang)

    def _sorted_processes(self, view: GpusView) -> list[tuple[Any, Any]]:
        rows = list(view.processes)
        if self.sort == "gpu":
            rows.sort(key=lambda pair: (pair[0].index, pair[1].pid))
        elif self.sort == "pid":
            rows.sort(key=lambda pair: (pair[1].pid, pair[0].index))
        elif self.sort == "user":
            rows.sort(key=lambda pair: (pair[1].user, pair[1].pid, pair[0].index))
        return rows

    def _render_processes(self, view: GpusView) -> None:
        lang = self.lang
        rows = self._sorted_processes(view)
        label = self.query_one("#gpus-processes-label", Static)
        sort_name = tr(f"gpus.sort.{self.sort}", lang)
        if rows:
            label.update(tr("gpus.processes", lang, count=len(rows), sort=sort_name))
        else:
            label.update(tr("gpus.no_processes", lang))
        table = self.query_one("#gpus-processes", DataTable)
        selected = self._selected_key(table)
        table.clear()
        self._rows = rows
        fixed = sum(COLUMN_WIDTHS.values()) + 2 * len(COLUMNS) + 2
        command_width = max(10, self.size.width - fixed)
        for gpu, process in rows:
            job = view.ours.get(process.pid)
            job_cell = (
                Text(_clip(f"{job.id} {job.name}", COLUMN_WIDTHS["job"]), style="cyan")
                if job is not None
                else Text(NOT_OURS, style="dim")
            )
            table.add_row(
                str(gpu.index),
                str(process.pid),
                Text(_clip(process.user or "?", COLUMN_WIDTHS["user"]), style="cyan" if job else "yellow"),
                tr(f"gpus.kind.{process.kind}", lang),
                "-" if process.used_memory_mib is None else f"{process.used_memory_mib:.0f}M",
                job_cell,
                _clip(process.command or process.name, command_width),
                key=f"{gpu.index}:{process.pid}",
            )
        keys = [f"{gpu.index}:{process.pid}" for gpu, process in rows]
        if selected in keys:
            table.move_cursor(row=keys.index(selected), animate=False)

    @staticmethod
    def _selected_key(table: DataTable) -> str | None:
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - an emptied table has no cell at the cursor
            return None

    def selected_process(self) -> tuple[Any, Any] | None:
        """The (GPU, process) of the highlighted row, if any."""
        table = self.query_one("#gpus-processes", DataTable)
        if not self._rows or not table.row_count:
            return None
        return self._rows[min(table.cursor_row, len(self._rows) - 1)]

    def selected_job(self) -> Any | None:
        """Our job the highlighted process belongs to; a warning and None when there is none."""
        selected = self.selected_process()
        if selected is None or self.view is None:
            self.notify(tr("gpus.no_selection", self.lang), severity="warning")
            return None
        job = self.view.ours.get(selected[1].pid)
        if job is None:
            self.notify(tr("gpus.not_ours", self.lang, pid=selected[1].pid), severity="warning")
        return job

    # ---- actions ---------------------------------------------------------------------------

    def action_open_job(self) -> None:
        """Open the dashboard of the job the highlighted process belongs to."""
        job = self.selected_job()
        if job is None:
            return
        from tunequeue.tui.screens.dashboard import DashboardScreen

        self.app.push_screen(DashboardScreen(job.id))

    def action_cancel_job(self) -> None:
        """Ask, then cancel the job the highlighted process belongs to (the runner stops it)."""
        job = self.selected_job()
        if job is None:
            return
        job_id = job.id
        lang = self.lang

        def cancel(db: Any) -> str:
            from tunequeue.jobqueue import jobs

            jobs.request_cancel(db, job_id)
            return tr("queue.cancelled", lang, id=job_id)

        self._confirm_then(tr("queue.confirm_cancel", lang, id=job.id, name=job.name), cancel)

    def _confirm_then(self, question: str, change: Callable[[Any], str]) -> None:
        from tunequeue.tui.dialogs import ConfirmDialog

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_action(change)

        self.app.push_screen(ConfirmDialog(question), answered)

    def action_cycle_sort(self) -> None:
        """Order the processes by the next key: GPU memory → GPU → pid → user."""
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        if self.view is not None:
            self._render_processes(self.view)

    def on_language_changed(self, message: LanguageChanged) -> None:
        """Re-label everything in the new language."""
        localize_bindings(self, message.lang)
        self._setup_columns()
        self._render_all()

    def on_resize(self) -> None:
        """Fit the command column to the new width."""
        if self.view is not None:
            self._render_processes(self.view)

    def action_back(self) -> None:
        """Return to the previous screen."""
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_quit(self) -> None:
        """Leave the TUI."""
        self.app.exit()
