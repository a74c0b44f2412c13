"""Chat with the result of a finished training job (opened with `a` from the job dashboard).

The screen reads the job, finds what it produced (a LoRA adapter on the task's base model, or a
full model directory) with `chat_target`, and loads a `tunequeue.train.chat.ChatSession` in a
thread worker while a "loading model…" line shows. Each message typed into the input is answered
by another thread worker that streams the reply into the transcript piece by piece. Generation
follows the task's settings (temperature, top_p, do_sample) with max_new_tokens capped at
`UI_MAX_NEW_TOKENS` so that a reply stays short enough to read here. `ctrl+l` forgets the history.
torch and transformers are imported only inside the workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tunequeue.tui.messages import LanguageChanged
from tunequeue.tui.text import TranslatedBindings, localize_bindings, tr

UI_MAX_NEW_TOKENS = 128


@dataclass
class ChatTarget:
    """What to load for a chat: a model path, an optional adapter dir and the generation settings."""

    model: str
    adapter: str | None
    template: str | None
    max_new_tokens: int
    temperature: float
    top_p: float
    do_sample: bool


def _generation_default(name: str) -> Any:
    from tunequeue.core.spec import EvalPredictSettings

    return EvalPredictSettings.model_fields[name].default


def chat_target(job: Any) -> ChatTarget | str:
    """The chat target of a finished job, or the text key of the reason it has none."""
    if job is None:
        return "chat.no_job"
    if str(getattr(job.state, "value", job.state)) != "succeeded":
        return "chat.not_succeeded"
    if job.kind != "train":
        return "chat.not_train"
    from tunequeue.tui.data import output_dir_of

    try:
        task = yaml.safe_load(job.task_yaml) or {}
    except yaml.YAMLError:
        task = {}
    if not isinstance(task, dict):
        task = {}
    out = output_dir_of(job)
    if not out or not os.path.isdir(out):
        return "chat.no_output"
    out_path = Path(out)
    if (out_path / "adapter_config.json").is_file():
        model, adapter = task.get("model_name_or_path"), str(out_path)
        if not model:
            return "chat.no_output"
    elif (out_path / "config.json").is_file():
        model, adapter = str(out_path), None
    else:
        return "chat.no_output"

    def setting(name: str) -> Any:
        value = task.get(name)
        return _generation_default(name) if value is None else value

    return ChatTarget(
        model=str(model),
        adapter=adapter,
        template=task.get("template") or None,
        max_new_tokens=min(int(setting("max_new_tokens")), UI_MAX_NEW_TOKENS),
        temperature=float(setting("temperature")),
        top_p=float(setting("top_p")),
        do_sample=bool(setting("do_sample")),
    )


class ChatScreen(TranslatedBindings, Screen):
    """A transcript of the conversation above an input line."""

    DEFAULT_CSS = """
    ChatScreen #chat-title { height: 1; padding: 0 1; background: $boost; }
    ChatScreen #chat-transcript { height: 1fr; padding: 0 1; }
    ChatScreen .chat-user { margin-top: 1; color: $accent; }
    ChatScreen .chat-assistant { color: $text; }
    ChatScreen .chat-note { color: $text-muted; }
    ChatScreen .chat-error { color: $error; }
    ChatScreen #chat-input { dock: bottom; margin-bottom: 1; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+l", "clear_chat", "Clear", priority=True),
    ]

    class SessionReady(Message):
        """The model is loaded, or `error` says why it could not be."""

        def __init__(self, session: Any | None, error: str = "") -> None:
            super().__init__()
            self.session = session
            self.error = error

    class ReplyDone(Message):
        """A reply ended (completely, or with `error`)."""

        def __init__(self, error: str = "") -> None:
            super().__init__()
            self.error = error

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self.session: Any | None = None
        self.target: ChatTarget | None = None
        self.replying = False
        self.reply_text = ""
        self._reply_widget: Static | None = None

    @property
    def lang(self) -> str:
        """The app's current language."""
        return getattr(self.app, "lang", "en")

    def compose(self) -> ComposeResult:
        """Title, transcript, input, footer."""
        yield Static(tr("chat.title", self.lang, id=self.job_id), markup=False, id="chat-title")
        yield VerticalScroll(id="chat-transcript")
        yield Input(placeholder=tr("chat.placeholder", self.lang), id="chat-input", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        """Start loading the model."""
        localize_bindings(self, self.lang)
        self._note(tr("chat.loading", self.lang))
        self._load_session()

    # ---- transcript ------------------------------------------------------------------------

    def _add_line(self, text: Text | str, classes: str) -> Static:
        line = Static(text, markup=False, classes=classes)
        transcript = self.query_one("#chat-transcript", VerticalScroll)
        transcript.mount(line)
        transcript.scroll_end(animate=False)
        return line

    def _note(self, text: str) -> None:
        self._add_line(text, "chat-note")

    def _error(self, text: str) -> None:
        self._add_line(text, "chat-error")

    def transcript_lines(self) -> list[str]:
        """The transcript as plain text, one entry per line widget (for tests and copying)."""
        return [str(line.render()) for line in self.query("#chat-transcript Static")]

    # ---- loading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-load")
    def _load_session(self) -> None:
        from tunequeue.jobqueue import jobs
        from tunequeue.jobqueue.db import open_db

        lang = self.lang
        try:
            db = open_db()
            try:
                job = jobs.get(db, self.job_id)
            finally:
                db.conn.close()
        except Exception as error:  # noqa: BLE001 - a deleted job or a locked database: say so
            self.post_message(self.SessionReady(None, str(error)))
            return
        target = chat_target(job)
        if isinstance(target, str):
            self.post_message(self.SessionReady(None, tr(target, lang)))
            return
        self.target = target
        try:
            from tunequeue.train.chat import ChatSession

            session = ChatSession(
                target.model,
                target.adapter,
                template=target.template,
                max_new_tokens=target.max_new_tokens,
                temperature=target.temperature,
                top_p=target.top_p,
                do_sample=target.do_sample,
            )
        except Exception as error:  # noqa: BLE001 - a missing model dir or a broken adapter: say so
            self.post_message(self.SessionReady(None, str(error)))
            return
        self.post_message(self.SessionReady(session))

    def on_chat_screen_session_ready(self, message: SessionReady) -> None:
        """Enable the input, or say why the model could not be loaded."""
        if message.session is None:
            self._error(tr("chat.load_failed", self.lang, error=message.error))
            return
        self.session = message.session
        target = self.target
        source = target.adapter or target.model if target else ""
        self._note(tr("chat.ready", self.lang, path=source))
        field = self.query_one("#chat-input", Input)
        field.disabled = False
        field.focus()

    # ---- replying --------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Send the typed message."""
        message = event.value.strip()
        if not message:
            return
        if self.session is None:
            self.notify(tr("chat.still_loading", self.lang), severity="warning")
            return
        if self.replying:
            self.notify(tr("chat.busy", self.lang), severity="warning")
            return
        event.input.value = ""
        self._add_line(Text(tr("chat.user", self.lang) + message), "chat-user")
        self.replying = True
        self.reply_text = ""
        self._reply_widget = self._add_line(tr("chat.assistant", self.lang), "chat-assistant")
        self._reply(message)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-reply")
    def _reply(self, message: str) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        try:
            for piece in self.session.stream_reply(message):
                if worker.is_cancelled:
                    return
                self.app.call_from_thread(self._append_piece, piece)
        except Exception as error:  # noqa: BLE001 - shown in the transcript instead of ending the app
            self.post_message(self.ReplyDone(str(error) or type(error).__name__))
            return
        self.post_message(self.ReplyDone())

    def _append_piece(self, piece: str) -> None:
        if not self.is_attached or self._reply_widget is None:
            return
        self.reply_text += piece
        self._reply_widget.update(tr("chat.assistant", self.lang) + self.reply_text.lstrip())
        self.query_one("#chat-transcript", VerticalScroll).scroll_end(animate=False)

    def on_chat_screen_reply_done(self, message: ReplyDone) -> None:
        """Allow the next message; show an error, or say that the reply was empty."""
        self.replying = False
        if message.error:
            self._error(tr("chat.reply_failed", self.lang, error=message.error))
        elif not self.reply_text.strip() and self._reply_widget is not None:
            self._reply_widget.update(tr("chat.assistant", self.lang) + tr("chat.empty_reply", self.lang))
        self._reply_widget = None

    # ---- actions ---------------------------------------------------------------------------

    def action_clear_chat(self) -> None:
        """Forget the conversation and empty the transcript."""
        if self.replying:
            self.notify(tr("chat.busy", self.lang), severity="warning")
            return
        if self.session is not None:
            self.session.clear()
        self.query_one("#chat-transcript", VerticalScroll).remove_children()
        self._note(tr("chat.cleared", self.lang))

    def action_back(self) -> None:
        """Return to the dashboard; a reply still streaming is abandoned."""
        self.workers.cancel_group(self, "chat-reply")
        self.app.pop_screen()

    def on_language_changed(self, message: LanguageChanged) -> None:
        """Re-label the title, the input and the footer in the new language."""
        localize_bindings(self, message.lang)
        self.query_one("#chat-title", Static).update(tr("chat.title", message.lang, id=self.job_id))
        self.query_one("#chat-input", Input).placeholder = tr("chat.placeholder", message.lang)
