"""The tunequeue Textual app: the queue screen at home, dashboards, GPUs, wizard and presets on top.

`make_app()` builds the one app used by `tunequeue ui`, `tunequeue demo` and every test. The app owns
the interface language (`app.lang`, switched with `l` from any screen and remembered through
`tunequeue.core.i18n`) and the clock used for elapsed times (tests fix it for snapshots).
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from textual import events
from textual.app import App
from textual.binding import Binding

from tunequeue.tui.messages import LanguageChanged
from tunequeue.tui.text import localize_bindings, tr

LANGUAGES = ("en", "zh")
# Seconds without input on the queue after which the wizard is imported in the background (about
# 0.2 s of work that a quick `n` would otherwise wait for), and how often that is looked at.
WARM_AFTER_IDLE_SECONDS = 0.5
WARM_CHECK_SECONDS = 0.25
_FROZEN: set[str] = set()


class TuneQueueApp(App):
    """Queue, dashboards and GPUs of one tunequeue home."""

    TITLE = "tunequeue"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("l", "switch_language", "Language", priority=False),
        Binding("question_mark", "show_help", "Keys", key_display="?", show=False),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        *,
        lang: str = "en",
        open_job: int | None = None,
        clock: Callable[[], float] = time.time,
        refresh_seconds: float = 1.0,
    ) -> None:
        super().__init__()
        self.lang = lang if lang in LANGUAGES else "en"
        self.open_job = open_job
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self._last_input = time.monotonic()

    def on_mount(self) -> None:
        """Show the queue, and the dashboard of `open_job` on top of it when one was asked for."""
        from tunequeue.tui.screens.queue import QueueScreen

        localize_bindings(self, self.lang)
        self.push_screen(QueueScreen())
        if self.open_job is not None:
            from tunequeue.tui.screens.dashboard import DashboardScreen

            self.push_screen(DashboardScreen(self.open_job))
        freeze_collected_objects("start")
        self._warm_timer = self.set_interval(WARM_CHECK_SECONDS, self._warm_when_idle)

    async def on_event(self, event: events.Event) -> None:
        """Note the time of the last input (the background warm-up waits for a quiet moment)."""
        if isinstance(event, (events.Key, events.Paste, events.MouseDown)):
            self._last_input = time.monotonic()
        await super().on_event(event)

    def _warm_when_idle(self) -> None:
        """Once the queue sat without input for a moment, import the wizard in a background thread,
        so that opening it runs no import on the event loop."""
        from tunequeue.tui.screens.queue import QueueScreen

        if not isinstance(self.screen, QueueScreen):
            return
        if time.monotonic() - self._last_input < WARM_AFTER_IDLE_SECONDS:
            return
        self._warm_timer.stop()
        threading.Thread(target=_warm_wizard, name="tunequeue-warm-up", daemon=True).start()

    def on_unmount(self) -> None:
        """End the child processes started for previews and chats."""
        from tunequeue.tui.sidecar import stop_all

        stop_all()

    def t(self, key: str, **fmt: object) -> str:
        """Translate `key` into the current language."""
        return tr(key, self.lang, **fmt)

    def action_show_help(self) -> None:
        """List the keys of the current screen (the app's own first); `?` again closes the list."""
        from tunequeue.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(self.screen))

    def action_switch_language(self) -> None:
        """Toggle between English and Chinese, remember the choice, and tell every screen."""
        self.set_language("zh" if self.lang == "en" else "en")

    def set_language(self, lang: str, *, remember: bool = True) -> None:
        """Switch the interface to `lang` and re-render every screen on the stack."""
        self.lang = lang
        localize_bindings(self, lang)
        if remember:
            _remember_language(lang)
        for screen in self.screen_stack:
            screen.post_message(LanguageChanged(lang))
        self.refresh_bindings()


def _warm_wizard() -> None:
    """Import the wizard and what it needs first (in a background thread; a failure changes nothing,
    the wizard then imports it when opened)."""
    with contextlib.suppress(Exception):
        from tunequeue.tui.screens.wizard import warm_up

        warm_up()
        freeze_collected_objects("wizard")


def freeze_collected_objects(stage: str) -> None:
    """Let the garbage collector skip the objects alive now (imported modules, mostly), once per stage
    and process.

    A full collection otherwise walks every object of Textual, pydantic and the task model, a pause of
    50-90 ms in the middle of opening a screen or typing.
    """
    if stage not in _FROZEN:
        _FROZEN.add(stage)
        gc.freeze()


def _remember_language(lang: str) -> None:
    """Persist the language for the next start (best effort: the switch itself always happens)."""
    try:
        from tunequeue.core import i18n
    except ImportError:
        return
    from tunequeue.core.errors import UserError

    # A settings.yaml that cannot be parsed is left alone (never overwritten); the switch still happens.
    with contextlib.suppress(OSError, UserError):
        i18n.set_language(lang)


def _initial_language(lang: str | None) -> str:
    if lang in LANGUAGES:
        return lang
    try:
        from tunequeue.core import i18n
    except ImportError:
        return "en"
    chosen = i18n.current_language()
    return chosen if chosen in LANGUAGES else "en"


def make_app(
    *,
    home: Path | str | None = None,
    lang: str | None = None,
    open_job: int | None = None,
    clock: Callable[[], float] | None = None,
    refresh_seconds: float = 1.0,
) -> TuneQueueApp:
    """Build the tunequeue TUI.

    `home` sets TUNEQUEUE_HOME for this process (the queue database, runs and presets live there);
    `lang` ("en" / "zh") overrides the remembered language for this session; `open_job` opens that
    job's dashboard on top of the queue; `clock` replaces `time.time` for elapsed times (snapshots).
    """
    if home is not None:
        os.environ["TUNEQUEUE_HOME"] = str(Path(home).expanduser())
    return TuneQueueApp(
        lang=_initial_language(lang),
        open_job=open_job,
        clock=clock or time.time,
        refresh_seconds=refresh_seconds,
    )


def run_dashboard(job_id: int, *, lang: str | None = None) -> None:
    """Run the TUI in this terminal with the dashboard of `job_id` open (used by `tunequeue demo`)."""
    make_app(lang=lang, open_job=job_id).run()
