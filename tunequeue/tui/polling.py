"""The base of the screens that read the queue database in the background and act on jobs.

A `PollingScreen` reads with `start_read(read)`: `read(db)` runs in a thread worker with its own
SQLite connection and its result comes back as `PollingScreen.Loaded` (a failure as `LoadFailed`);
a read never starts while the previous one runs. `run_action(change)` runs `change(db)` in a thread
worker too; the text it returns, or the error it raised, is shown as a notification and the screen
reads again. Subclasses implement `refresh_data`, `show_data` and `show_load_error`.

Timers call `poll`, which reads only while the screen is on top (a covered screen reads again when
shown) and rests after a slow read: when a read took t seconds, the next timed read waits at least
`REST_FACTOR` × t, so a home with thousands of jobs cannot keep the CPU (and the keyboard) busy with
reads. Reads asked for directly (after an action, on returning to the screen) do not wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual import work
from textual.message import Message
from textual.screen import Screen

from tunequeue.tui.text import TranslatedBindings

REST_FACTOR = 3.0


def with_db(use: Callable[[Any], Any]) -> Any:
    """Open this home's queue database, return `use(db)`, and close the connection again."""
    from tunequeue.jobqueue.db import open_db

    db = open_db()
    try:
        return use(db)
    finally:
        db.conn.close()


class PollingScreen(TranslatedBindings, Screen):
    """A screen fed by background reads of the queue database, with job actions run off the UI thread."""

    class Loaded(Message):
        """A fresh read; `final` is False for a first part a read shows before it goes on."""

        def __init__(self, data: Any, final: bool = True) -> None:
            super().__init__()
            self.data = data
            self.final = final

    class LoadFailed(Message):
        """The database could not be read this time (e.g. locked for longer than the timeout)."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    class ActionDone(Message):
        """A job action finished: a message to show, and whether it was an error."""

        def __init__(self, text: str, error: bool = False) -> None:
            super().__init__()
            self.text = text
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self._loading = False
        self._read_seconds = 0.0
        self._rest_until = 0.0

    @property
    def lang(self) -> str:
        """The app's current language."""
        return getattr(self.app, "lang", "en")

    def refresh_data(self) -> None:
        """Start a read of what this screen shows (subclasses call `start_read`)."""
        raise NotImplementedError

    def show_data(self, data: Any) -> None:
        """Show the result of a read."""
        raise NotImplementedError

    def show_load_error(self, error: str) -> None:
        """Say why the read failed; keep what is shown."""
        raise NotImplementedError

    # ---- reading ---------------------------------------------------------------------------

    def poll(self) -> None:
        """A timer tick: read again, unless another screen covers this one (it reads again when
        shown) or the last read was slow and its rest is not over."""
        if self.app.screen is self and time.monotonic() >= self._rest_until:
            self.refresh_data()

    def publish(self, data: Any) -> None:
        """Called inside a read (any thread): show `data` now while the read goes on."""
        self.post_message(self.Loaded(data, final=False))

    def start_read(self, read: Callable[[Any], Any]) -> None:
        """Run `read(db)` in a thread worker unless the previous read still runs."""
        if self._loading:
            return
        self._loading = True
        self._read_in_thread(read)

    @work(thread=True, exclusive=True, exit_on_error=False, group="screen-read")
    def _read_in_thread(self, read: Callable[[Any], Any]) -> None:
        started = time.monotonic()
        try:
            data = with_db(read)
        except Exception as error:  # noqa: BLE001 - shown on screen; the next tick retries
            self.post_message(self.LoadFailed(str(error)))
            return
        finally:
            self._read_seconds = time.monotonic() - started
        self.post_message(self.Loaded(data))

    def on_polling_screen_loaded(self, message: Loaded) -> None:
        """Show a fresh read."""
        if not message.final:
            self.show_data(message.data)
            return
        self._loading = False
        started = time.monotonic()
        self.show_data(message.data)
        # showing it costs the UI thread too: rest for both
        spent = self._read_seconds + time.monotonic() - started
        self._rest_until = time.monotonic() + REST_FACTOR * spent

    def on_polling_screen_load_failed(self, message: LoadFailed) -> None:
        """Report a failed read; the next tick tries again."""
        self._loading = False
        self.show_load_error(message.error)

    # ---- acting ----------------------------------------------------------------------------

    def run_action(self, change: Callable[[Any], str]) -> None:
        """Run `change(db)` in a thread worker and notify the text it returns (or its error)."""
        self._act_in_thread(change)

    @work(thread=True, exit_on_error=False, group="screen-action")
    def _act_in_thread(self, change: Callable[[Any], str]) -> None:
        from tunequeue.core.errors import UserError

        try:
            text = with_db(change)
        except UserError as error:
            self.post_message(self.ActionDone(error.message, error=True))
            return
        except Exception as error:  # noqa: BLE001 - e.g. database locked too long: say so, keep running
            self.post_message(self.ActionDone(str(error), error=True))
            return
        self.post_message(self.ActionDone(text))

    def on_polling_screen_action_done(self, message: ActionDone) -> None:
        """Report the result of an action and show its effect at once."""
        self.notify(message.text, severity="error" if message.error else "information")
        self.refresh_data()
