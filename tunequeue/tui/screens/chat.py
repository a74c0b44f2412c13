"""Chat with the result of a finished training job (opened with `a` from the job dashboard).

The screen reads the job, finds what it produced (a LoRA adapter on the task's base model, or a
full model directory) with `chat_target`, asks the runner's GPU ledger for a GPU no job uses
(`tunequeue.runner.interactive.pick_device`, else the CPU; the title shows which) and loads the model
in a child process (`tunequeue.tui.sidecar`) while a "loading model…" line shows. Each message typed
into the input is sent to the child from a thread worker and the reply streams into the transcript
piece by piece. Generation follows the task's settings (temperature, top_p, do_sample) with
max_new_tokens capped at `UI_MAX_NEW_TOKENS` so that a reply stays short enough to read here.
`ctrl+l` forgets the history. The child ends when the screen closes; the TUI process itself never
imports torch or transformers.
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
from textual.widgets import Input, Static

from tunequeue.tui.messages import LanguageChanged
from tunequeue.tui.text import TranslatedBindings, localize_bindings, tr
from tunequeue.tui.widgets.key_footer import KeyFooter

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

    class DevicePicked(Message):
        """The ledger's answer: the device the model will be loaded on."""

        def __init__(self, device: str) -> None:
            super().__init__()
            self.device = device

    class SessionReady(Message):
        """The model is loaded on `device`, or `error` says why it could not be."""

        def __init__(self, device: str | None, error: str = "") -> None:
            super().__init__()
            self.device = device
            self.error = error

    class ReplyDone(Message):
        """A reply ended (completely, or with `error`); `turns` counts the exchanges kept."""

        def __init__(self, error: str = "", turns: int | None = None) -> None:
            super().__init__()
            self.error = error
            self.turns = turns

    class Cleared(Message):
        """The child forgot the history (or `error` says why it could not)."""

        def __init__(self, error: str = "") -> None:
            super().__init__()
            self.error = error

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self.client: Any | None = None
        self.ready = False
        self.picked_device: str | None = None
        self.device: str | None = None
        self.target: ChatTarget | None = None
        self.replying = False
        self.reply_text = ""
        self.turns = 0
        self._closed = False
        self._reply_widget: Static | None = None

    @property
    def lang(self) -> str:
        """The app's current language."""
        return getattr(self.app, "lang", "en")

    def title_text(self, lang: str) -> str:
        """The title: the job, and the device once the ledger chose one."""
        device = self.device or self.picked_device
        if device is None:
            return tr("chat.title", lang, id=self.job_id)
        index = self._picked_index()
        if device.startswith("cuda") and index is not None:
            label = tr("chat.device_gpu", lang, index=index)
        else:
            label = tr("chat.device_cpu", lang)
        return tr("chat.title_on", lang, id=self.job_id, device=label)

    def _picked_index(self) -> int | None:
        from tunequeue.runner.interactive import gpu_index

        return gpu_index(self.picked_device or "cpu")

    def compose(self) -> ComposeResult:
        """Title, transcript, input, footer."""
        yield Static(self.title_text(self.lang), markup=False, id="chat-title")
        yield VerticalScroll(id="chat-transcript")
        yield Input(placeholder=tr("chat.placeholder", self.lang), id="chat-input", disabled=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        """Start loading the model."""
        localize_bindings(self, self.lang)
        self._note(tr("chat.loading", self.lang))
        self._load_session()

    def on_unmount(self) -> None:
        """End the model's child process with the screen."""
        self._closed = True
        if self.client is not None:
            self.client.stop()

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

    def _update_title(self) -> None:
        self.query_one("#chat-title", Static).update(self.title_text(self.lang))

    # ---- loading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-load")
    def _load_session(self) -> None:
        from tunequeue.jobqueue import jobs
        from tunequeue.jobqueue.db import open_db
        from tunequeue.runner.interactive import device_env, pick_device
        from tunequeue.tui.sidecar import SidecarClient, SidecarError

        lang = self.lang
        try:
            db = open_db()
            try:
                job = jobs.get(db, self.job_id)
                target = chat_target(job)
                device = pick_device(db) if not isinstance(target, str) else "cpu"
            finally:
                db.conn.close()
        except Exception as error:  # noqa: BLE001 - a deleted job or a locked database: say so
            self.post_message(self.SessionReady(None, str(error)))
            return
        if isinstance(target, str):
            self.post_message(self.SessionReady(None, tr(target, lang)))
            return
        self.target = target
        self.post_message(self.DevicePicked(device))
        client = SidecarClient(device_env(device))
        self.client = client
        if self._closed:
            client.stop()
            return
        try:
            answer = client.request(
                "chat.load",
                model=target.model,
                adapter=target.adapter,
                template=target.template,
                max_new_tokens=target.max_new_tokens,
                temperature=target.temperature,
                top_p=target.top_p,
                do_sample=target.do_sample,
                device="cpu" if device == "cpu" else "cuda",
            )
        except SidecarError as error:
            self.post_message(self.SessionReady(None, str(error)))
            return
        self.post_message(self.SessionReady(str(answer.get("device") or "cpu")))

    def on_chat_screen_device_picked(self, message: DevicePicked) -> None:
        """Show the device the ledger gave in the title and say why."""
        self.picked_device = message.device
        self._update_title()
        index = self._picked_index()
        if index is None:
            self._note(tr("chat.picked_cpu", self.lang))
        else:
            self._note(tr("chat.picked_gpu", self.lang, index=index))

    def on_chat_screen_session_ready(self, message: SessionReady) -> None:
        """Enable the input, or say why the model could not be loaded."""
        if message.device is None:
            self._error(tr("chat.load_failed", self.lang, error=message.error))
            return
        self.ready = True
        self.device = message.device
        index = self._picked_index()
        if index is not None and not message.device.startswith("cuda"):
            self._note(tr("chat.no_cuda", self.lang, index=index))
        self._update_title()
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
        if not self.ready:
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

        from tunequeue.tui.sidecar import SidecarError

        worker = get_current_worker()

        def show(piece: str) -> None:
            if not worker.is_cancelled and not self._closed:
                self.app.call_from_thread(self._append_piece, piece)

        try:
            answer = self.client.request("chat.send", on_piece=show, message=message)
        except SidecarError as error:
            if not worker.is_cancelled:
                self.post_message(self.ReplyDone(str(error)))
            return
        self.post_message(self.ReplyDone(turns=int(answer.get("turns", 0))))

    def _append_piece(self, piece: str) -> None:
        if not self.is_attached or self._reply_widget is None:
            return
        self.reply_text += piece
        self._reply_widget.update(tr("chat.assistant", self.lang) + self.reply_text.lstrip())
        self.query_one("#chat-transcript", VerticalScroll).scroll_end(animate=False)

    def on_chat_screen_reply_done(self, message: ReplyDone) -> None:
        """Allow the next message; show an error, or say that the reply was empty."""
        self.replying = False
        if message.turns is not None:
            self.turns = message.turns
        if message.error:
            self._error(tr("chat.reply_failed", self.lang, error=message.error))
        elif not self.reply_text.strip() and self._reply_widget is not None:
            self._reply_widget.update(tr("chat.assistant", self.lang) + tr("chat.empty_reply", self.lang))
        self._reply_widget = None

    # ---- actions ---------------------------------------------------------------------------

    def action_clear_chat(self) -> None:
        """Forget the conversation (in the child) and empty the transcript."""
        if self.replying:
            self.notify(tr("chat.busy", self.lang), severity="warning")
            return
        if not self.ready:
            self.query_one("#chat-transcript", VerticalScroll).remove_children()
            self._note(tr("chat.cleared", self.lang))
            return
        self._clear()

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-clear")
    def _clear(self) -> None:
        from tunequeue.tui.sidecar import SidecarError

        try:
            self.client.request("chat.clear")
        except SidecarError as error:
            self.post_message(self.Cleared(str(error)))
            return
        self.post_message(self.Cleared())

    def on_chat_screen_cleared(self, message: Cleared) -> None:
        """Empty the transcript once the child forgot the history."""
        if message.error:
            self._error(tr("chat.reply_failed", self.lang, error=message.error))
            return
        self.turns = 0
        self.query_one("#chat-transcript", VerticalScroll).remove_children()
        self._note(tr("chat.cleared", self.lang))

    def action_back(self) -> None:
        """Return to the dashboard; a reply still streaming is abandoned with the child process."""
        self.workers.cancel_group(self, "chat-reply")
        self.app.pop_screen()

    def on_language_changed(self, message: LanguageChanged) -> None:
        """Re-label the title, the input and the footer in the new language."""
        localize_bindings(self, message.lang)
        self.query_one("#chat-title", Static).update(self.title_text(message.lang))
        self.query_one("#chat-input", Input).placeholder = tr("chat.placeholder", message.lang)
