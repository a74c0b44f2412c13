"""A job's dashboard: progress, loss chart, learning rate and throughput, GPU panes and train.log.

Once a second a thread worker reads the job, its new metric rows and GPU samples with its own SQLite
connection and the new lines of train.log, and posts `DashboardScreen.Loaded`; a read never starts
while the previous one runs. The metrics go into the screen's `MetricHistory`
(`tunequeue.tui.metric_history`), which only that read touches: each read adds the rows stored
since the previous one, and the UI thread gets a small summary with a chart of at most a few hundred
points, so a run with a million metric rows costs a poll no more than a short one.

A failed job shows its exit code, reason and log tail; a finished job its whole history and where the
result was saved. A job on a Slurm cluster shows its Slurm job id, state or pending reason, node list
and exit status; its GPUs are not this machine's, so instead of GPU panes (NVML data of local GPUs) a
note says so. `a` opens a chat with what a succeeded training job produced
(`tunequeue.tui.screens.chat`); whether there is one is checked on disk in a thread worker.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import ProgressBar, Static

from tunequeue.tui.cluster import ClusterInfo, cluster_line, gpu_note
from tunequeue.tui.cluster import text as cluster_text
from tunequeue.tui.data import DashboardData, GpuHistory, load_dashboard
from tunequeue.tui.formatting import (
    STATE_STYLES,
    format_duration,
    format_lr,
    format_number,
    parse_clock,
    short_path,
    state_of,
)
from tunequeue.tui.messages import LanguageChanged
from tunequeue.tui.metric_history import MetricHistory, MetricSummary
from tunequeue.tui.polling import PollingScreen
from tunequeue.tui.reasons import WaitReason, parse_reason, sentence
from tunequeue.tui.text import localize_bindings, state_label, tr
from tunequeue.tui.widgets.gpu_pane import GpuPane
from tunequeue.tui.widgets.key_footer import KeyFooter
from tunequeue.tui.widgets.log_tail import LogTail
from tunequeue.tui.widgets.loss_chart import LossChart


class DashboardScreen(PollingScreen):
    """Live view of one job."""

    DEFAULT_CSS = """
    DashboardScreen #dash-header { height: 1; padding: 0 1; background: $boost; }
    DashboardScreen #dash-progress-row { height: 1; padding: 0 1; }
    DashboardScreen #dash-progress { width: auto; }
    DashboardScreen #dash-progress Bar { width: 30; }
    DashboardScreen #dash-times { width: 1fr; padding-left: 1; }
    DashboardScreen #dash-stats { height: 1; padding: 0 1; }
    DashboardScreen #dash-message { height: auto; max-height: 3; padding: 0 1; display: none; }
    DashboardScreen #dash-message.shown { display: block; }
    DashboardScreen #dash-middle { height: 2fr; min-height: 8; max-height: 22; }
    DashboardScreen #chart-box { width: 1fr; height: 1fr; }
    DashboardScreen #chart-legend { height: 1; padding: 0 1; }
    DashboardScreen #gpu-panes { width: 28; height: 1fr; }
    DashboardScreen #gpu-panes.no-gpus { display: none; }
    DashboardScreen #gpu-cluster-note { width: 28; height: 1fr; padding: 0 1; display: none; }
    DashboardScreen #gpu-cluster-note { color: $text-muted; }
    DashboardScreen #gpu-cluster-note.shown { display: block; }
    """

    # Keys that open a screen or a question act when they arrive (priority), so keys typed right after
    # them in one burst reach the new screen.
    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        Binding("c", "cancel_job", "Cancel", priority=True),
        Binding("r", "retry_job", "Retry"),
        Binding("t", "job_info", "Task", priority=True),
        Binding("a", "chat", "Chat", priority=True),
        Binding("g", "gpus", "GPUs", show=False, priority=True),
        Binding("w", "toggle_wrap", "Wrap", show=False),
        Binding("z", "toggle_fold", "All lines", show=False),
        Binding("question_mark", "app.show_help", "Keys", key_display="?", priority=True),
        Binding("q", "quit", "Quit"),
    ]

    class ChatChecked(Message):
        """The answer of the chat check: None when the job has something to chat with, else the text
        key of why not (or, with `error`, the error that stopped the check)."""

        def __init__(self, problem: str | None, error: bool = False) -> None:
            super().__init__()
            self.problem = problem
            self.error = error

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self._chat_checking = False
        self._chat_wanted = False
        self.data: DashboardData | None = None
        self._log_offset = 0
        self._pane_indices: list[int] = []
        self._history = MetricHistory(job_id)

    def compose(self) -> ComposeResult:
        """Header, progress, stats, message, chart + GPU panes, log tail, footer."""
        yield Static("", markup=False, id="dash-header")
        with Horizontal(id="dash-progress-row"):
            yield ProgressBar(total=100, show_eta=False, id="dash-progress")
            yield Static("", markup=False, id="dash-times")
        yield Static("", markup=False, id="dash-stats")
        yield Static("", markup=False, id="dash-message")
        with Horizontal(id="dash-middle"):
            with Vertical(id="chart-box"):
                yield Static("", markup=False, id="chart-legend")
                yield LossChart(id="loss-chart", lang=self.lang)
            yield VerticalScroll(id="gpu-panes", classes="no-gpus")
            yield Static("", markup=False, id="gpu-cluster-note")
        yield LogTail(id="log-tail", lang=self.lang)
        yield KeyFooter()

    def on_mount(self) -> None:
        """Read the job now and then once a second."""
        localize_bindings(self, self.lang)
        self.query_one("#dash-header", Static).update(tr("dash.title", self.lang, id=self.job_id, name=""))
        self.refresh_data()
        self.set_interval(getattr(self.app, "refresh_seconds", 1.0), self.poll)

    # ---- reading ---------------------------------------------------------------------------

    def refresh_data(self) -> None:
        """Start a background read of the job unless the previous one still runs.

        The metric history belongs to the read: it is only touched inside `load_dashboard`, and reads
        never overlap; the screen gets an immutable summary of it.
        """
        log_offset, now, job_id, history = self._log_offset, self.app.clock(), self.job_id, self._history
        self.start_read(lambda db: load_dashboard(db, job_id, log_offset, now, history, self.publish))

    def show_data(self, data: DashboardData) -> None:
        """Show a fresh read."""
        self.data = data
        self._log_offset = data.log.offset
        self._render_all(new_log=data)

    def show_load_error(self, error: str) -> None:
        """Say why the job cannot be read; keep what is shown."""
        self._show_message(Text(tr("queue.db_error", self.lang, error=error), style="red"))

    # ---- rendering -------------------------------------------------------------------------

    def _render_all(self, new_log: DashboardData | None = None) -> None:
        data = self.data
        if data is None:
            return
        lang = self.lang
        job = data.job
        if job is None:
            self.query_one("#dash-header", Static).update(tr("dash.no_job", lang, id=self.job_id))
            self._show_message(None)
            return
        state = state_of(job)
        self.query_one("#dash-header", Static).update(self._header_text(job, state, data.cluster))
        self._render_progress(job, state, data.metrics.latest)
        self.query_one("#dash-stats", Static).update(self._stats_text(data.metrics))
        self._show_message(self._with_cluster_line(self._message_text(job, state, data), data.cluster))
        chart = self.query_one(LossChart)
        chart.show_series(data.metrics.chart)
        self.query_one("#chart-legend", Static).update(chart.legend())
        self._render_gpus(data.gpus, data.cluster)
        if new_log is not None:
            self.query_one(LogTail).add_chunk(new_log.log, tr("dash.no_log", lang))

    def _header_text(self, job: Any, state: str, cluster: ClusterInfo | None) -> Text:
        lang = self.lang
        if cluster is not None:
            gpus = cluster_text("cluster.job", lang, id=cluster.job_id)
        elif job.assigned_gpus:
            gpus = tr("dash.gpus", lang, list=",".join(str(i) for i in job.assigned_gpus))
        elif job.requested_gpus == 0 or job.started_at:
            gpus = tr("dash.cpu", lang)
        else:
            gpus = tr("dash.no_gpu_yet", lang)
        text = Text(tr("dash.job", lang, id=job.id, name=job.name) + " · ")
        text.append(state_label(state, lang), style=STATE_STYLES.get(state, ""))
        text.append(" · " + tr("dash.attempt", lang, attempt=job.attempt) + f" · {gpus}")
        return text

    def _render_progress(self, job: Any, state: str, latest: dict | None) -> None:
        lang = self.lang
        bar = self.query_one("#dash-progress", ProgressBar)
        times = self.query_one("#dash-times", Static)
        total = (latest or {}).get("total_steps")
        step = (latest or {}).get("step")
        if state == "succeeded" and total:
            step = total
        if total:
            bar.update(total=float(total), progress=float(step or 0))
        else:
            bar.update(total=100, progress=100 if state == "succeeded" else 0)
        parts = []
        if total:
            parts.append(tr("dash.step", lang, step=step or 0, total=total))
        elapsed = None
        if job.started_at:
            end = job.finished_at or self.app.clock()
            elapsed = end - job.started_at
        if job.is_active:
            remaining = parse_clock((latest or {}).get("remaining_time"))
            parts.append(
                tr("dash.eta", lang, elapsed=format_duration(elapsed), remaining=format_duration(remaining))
            )
        elif elapsed is not None:
            parts.append(tr("dash.elapsed", lang, elapsed=format_duration(elapsed)))
        times.update(" · ".join(parts))

    def _stats_text(self, metrics: MetricSummary) -> str:
        lang = self.lang
        if metrics.latest is None:
            return tr("dash.no_metrics", lang)
        last = metrics.last
        throughput = last.get("throughput")
        return tr(
            "dash.stats",
            lang,
            loss=format_number(last.get("loss")),
            eval_loss=format_number(last.get("eval_loss")),
            lr=format_lr(last.get("lr")),
            throughput=tr("dash.throughput", lang, value="-" if throughput is None else f"{throughput:.0f}"),
            epoch=format_number(metrics.latest.get("epoch"), 3),
        )

    def _message_text(self, job: Any, state: str, data: DashboardData) -> Text | None:
        lang = self.lang
        if state in ("queued", "held"):
            if state == "held":
                reason = sentence(WaitReason("held"), lang)
            else:
                reason = sentence(parse_reason(job.reason), lang) if job.reason else state_label(state, lang)
            return Text(tr("dash.waiting", lang, reason=reason), style="yellow")
        if state == "failed":
            reason = job.reason or "-"
            if job.signal:
                return Text(
                    tr("dash.failed_signal", lang, signal=job.signal, reason=reason), style="bold red"
                )
            code = "-" if job.exit_code is None else job.exit_code
            return Text(tr("dash.failed", lang, code=code, reason=reason), style="bold red")
        if state == "cancelled":
            return Text(tr("dash.cancelled", lang, reason=job.reason or "-"), style="yellow")
        if state == "succeeded":
            path = short_path(data.output_dir or job.run_dir)
            return Text(tr("dash.succeeded", lang, path=path), style="green")
        return None

    def _with_cluster_line(self, message: Text | None, cluster: ClusterInfo | None) -> Text | None:
        """Add the Slurm job id, state or pending reason, node list and exit status of a cluster job."""
        if cluster is None:
            return message
        line = Text(cluster_line(cluster, self.lang), style="cyan")
        if message is None:
            return line
        return Text.assemble(message, "\n", line)

    def _show_message(self, text: Text | None) -> None:
        message = self.query_one("#dash-message", Static)
        message.update(text or "")
        message.set_class(text is not None, "shown")

    def _render_gpus(self, histories: list[GpuHistory], cluster: ClusterInfo | None) -> None:
        note = self.query_one("#gpu-cluster-note", Static)
        show_note = cluster is not None and not histories
        note.update(gpu_note(cluster, self.lang) if show_note else "")
        note.set_class(show_note, "shown")
        container = self.query_one("#gpu-panes", VerticalScroll)
        indices = [history.index for history in histories]
        if indices != self._pane_indices:
            container.remove_children()
            container.mount_all([GpuPane(index, lang=self.lang) for index in indices])
            self._pane_indices = indices
        container.set_class(not indices, "no-gpus")
        for history in histories:
            self.query_one(f"#gpu-pane-{history.index}", GpuPane).show(history)

    def on_language_changed(self, message: LanguageChanged) -> None:
        """Re-render every label in the new language."""
        localize_bindings(self, message.lang)
        self.query_one(LossChart).set_language(message.lang)
        self.query_one(LogTail).set_language(message.lang)
        for pane in self.query(GpuPane):
            pane.set_language(message.lang)
        self._render_all()

    # ---- actions ---------------------------------------------------------------------------

    def action_back(self) -> None:
        """Return to the queue."""
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_quit(self) -> None:
        """Leave the TUI; the job keeps running."""
        self.app.exit()

    def action_toggle_wrap(self) -> None:
        """Wrap the log's long lines, or scroll sideways."""
        self.query_one(LogTail).toggle_wrap()

    def action_toggle_fold(self) -> None:
        """Show every log line, or fold repeated library warnings again."""
        self.query_one(LogTail).toggle_fold()

    def action_gpus(self) -> None:
        """Open the GPUs screen."""
        from tunequeue.tui.screens.gpus import GpusScreen

        self.app.push_screen(GpusScreen())

    def action_job_info(self) -> None:
        """Show the job's task file and state history."""
        from tunequeue.tui.screens.job import JobScreen

        self.app.push_screen(JobScreen(self.job_id))

    def action_chat(self) -> None:
        """Chat with the adapter or model a succeeded training job produced; else say why not.

        What the job produced is checked on disk in a thread worker (a slow or network file system
        must not freeze the screen); `ChatChecked` brings the answer back.
        """
        if self._chat_checking:
            return
        self._chat_checking = self._chat_wanted = True
        self._check_chat(self.data.job if self.data else None)

    def on_screen_suspend(self) -> None:
        """Another screen came on top: an answer of the chat check that arrives later opens nothing."""
        self._chat_wanted = False

    @work(thread=True, exit_on_error=False, group="chat-check")
    def _check_chat(self, job: Any) -> None:
        from tunequeue.tui.screens.chat import chat_target

        try:
            target = chat_target(job)
        except Exception as error:  # noqa: BLE001 - e.g. a run dir that may not be read: say so
            self.post_message(self.ChatChecked(str(error), error=True))
            return
        self.post_message(self.ChatChecked(target if isinstance(target, str) else None))

    def on_dashboard_screen_chat_checked(self, message: ChatChecked) -> None:
        """Open the chat, or say why there is none; nothing when another screen came on top meanwhile
        (even if the user is back by now: a chat popping up late would surprise)."""
        wanted = self._chat_wanted
        self._chat_checking = self._chat_wanted = False
        if not wanted:
            return
        if message.error:
            self.notify(message.problem or "", severity="error")
        elif message.problem is not None:
            self.notify(tr(message.problem, self.lang), severity="warning")
        else:
            from tunequeue.tui.screens.chat import ChatScreen

            self.app.push_screen(ChatScreen(self.job_id))

    def action_cancel_job(self) -> None:
        """Ask, then cancel this job."""
        from tunequeue.tui.dialogs import ConfirmDialog

        name = self.data.job.name if self.data and self.data.job else ""
        question = tr("queue.confirm_cancel", self.lang, id=self.job_id, name=name)

        job_id, lang = self.job_id, self.lang

        def cancel(db: Any) -> str:
            from tunequeue.jobqueue import jobs

            jobs.request_cancel(db, job_id)
            return tr("queue.cancelled", lang, id=job_id)

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_action(cancel)

        self.app.push_screen(ConfirmDialog(question), answered)

    def action_retry_job(self) -> None:
        """Queue this failed or cancelled job again."""
        job_id, lang = self.job_id, self.lang

        def retry(db: Any) -> str:
            from tunequeue.jobqueue import jobs

            job = jobs.retry(db, job_id)
            return tr("queue.retried", lang, id=job_id, attempt=job.attempt)

        self.run_action(retry)
