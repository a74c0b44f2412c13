"""A job's task file and the history of its state changes (opened with `t` from the dashboard)."""

from __future__ import annotations

import time
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from tunequeue.tui.messages import LanguageChanged
from tunequeue.tui.text import TranslatedBindings, localize_bindings, state_label, tr
from tunequeue.tui.widgets.key_footer import KeyFooter


class JobScreen(TranslatedBindings, Screen):
    """Read-only view of one job's task YAML and its events."""

    DEFAULT_CSS = """
    JobScreen #job-title { height: 1; padding: 0 1; background: $boost; }
    JobScreen #job-body { height: 1fr; padding: 0 1; }
    JobScreen #job-events-title { margin-top: 1; text-style: bold; }
    """

    BINDINGS = [Binding("escape,backspace", "back", "Back"), Binding("q", "quit", "Quit")]

    class Loaded(Message):
        """The job and its events, or the error reading them."""

        def __init__(self, job: Any | None, events: list[dict], error: str = "") -> None:
            super().__init__()
            self.job = job
            self.events = events
            self.error = error

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self.job: Any | None = None
        self.events: list[dict] = []
        self.error = ""

    @property
    def lang(self) -> str:
        """The app's current language."""
        return getattr(self.app, "lang", "en")

    def compose(self) -> ComposeResult:
        """Title, task YAML and events in a scrollable body, footer."""
        yield Static("", markup=False, id="job-title")
        with VerticalScroll(id="job-body"):
            yield Static("", markup=False, id="job-yaml")
            yield Static("", markup=False, id="job-events-title")
            yield Static("", markup=False, id="job-events")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Read the job once."""
        localize_bindings(self, self.lang)
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="job-load")
    def _load(self) -> None:
        from tunequeue.jobqueue import jobs
        from tunequeue.jobqueue.db import open_db

        try:
            db = open_db()
            try:
                job = jobs.get(db, self.job_id)
                events = jobs.events(db, self.job_id)
            finally:
                db.conn.close()
        except Exception as error:  # noqa: BLE001 - a deleted job or a locked database: say so
            self.post_message(self.Loaded(None, [], str(error)))
            return
        self.post_message(self.Loaded(job, events))

    def on_job_screen_loaded(self, message: Loaded) -> None:
        """Show what was read."""
        self.job, self.events, self.error = message.job, message.events, message.error
        self._render_all()

    def _render_all(self) -> None:
        lang = self.lang
        self.query_one("#job-title", Static).update(tr("job.title", lang, id=self.job_id))
        if self.job is None:
            self.query_one("#job-yaml", Static).update(Text(self.error, style="red"))
            return
        self.query_one("#job-yaml", Static).update(Syntax(self.job.task_yaml, "yaml", theme="ansi_dark"))
        self.query_one("#job-events-title", Static).update(tr("job.events", lang))
        lines = Text()
        for event in self.events:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event["time"]))
            before = state_label(event["from_state"], lang) if event.get("from_state") else "-"
            after = state_label(event["to_state"], lang)
            reason = f"  {event['reason']}" if event.get("reason") else ""
            lines.append(f"{when}  #{event['attempt']}  {before} → {after}{reason}\n")
        self.query_one("#job-events", Static).update(lines)

    def on_language_changed(self, message: LanguageChanged) -> None:
        """Re-label in the new language."""
        localize_bindings(self, message.lang)
        self._render_all()

    def action_back(self) -> None:
        """Return to the dashboard."""
        self.app.pop_screen()

    def action_quit(self) -> None:
        """Leave the TUI."""
        self.app.exit()
