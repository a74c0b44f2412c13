"""Pickers for the model, dataset and template fields: a filtered list in a modal, opened with F2 or ctrl+o.

`PickerScreen` shows a list that is read in a thread worker (model directories, dataset files and
templates are read from disk, never on the event loop), filters it as the user types (every word must
occur in an entry), and dismisses with the chosen value (Enter) or None (Esc). `open_picker` opens the
right picker for a `FieldEditor` and writes the answer into it:

- ``model_name_or_path``: the bundled model, the model roots and the Hugging Face cache, with
  architecture, parameter count and the template to suggest (`tunequeue.core.model_catalog`);
- ``dataset``: the entries of the task's dataset_info.json with format and row count
  (`tunequeue.core.dataset_catalog`); the chosen name is added to the comma-separated value, or taken
  out when it was already there;
- ``template``: every template, the one suggested for the task's model first.

Typing into the field itself keeps working; the picker only fills it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tunequeue.core.errors import UserError
from tunequeue.tui.text import tr


@dataclass(frozen=True)
class PickerItem:
    """One entry of a picker: the value it fills in, its two display lines, the text the filter searches."""

    value: str
    title: str
    detail: str = ""
    search: str = ""

    def prompt(self) -> Text:
        """The option's text: the title, and the detail dimmed on a second line."""
        text = Text(self.title, style="bold")
        if self.detail:
            text.append("\n  " + self.detail, style="dim")
        return text

    def matches(self, words: list[str]) -> bool:
        """Every filter word occurs in the title, detail or search text (case-insensitive)."""
        haystack = f"{self.title} {self.detail} {self.search}".lower()
        return all(word in haystack for word in words)


class PickerScreen(ModalScreen["str | None"]):
    """A filtered list to pick one value from; dismisses with the value, or None when cancelled."""

    DEFAULT_CSS = """
    PickerScreen { align: center middle; }
    PickerScreen > Vertical {
        width: 90%; max-width: 100; height: 80%; padding: 0 1;
        border: thick $accent; background: $surface;
    }
    PickerScreen #picker-title { width: 100%; text-style: bold; }
    PickerScreen #picker-filter { margin: 0 0 1 0; }
    PickerScreen OptionList { height: 1fr; }
    PickerScreen #picker-status { width: 100%; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
        Binding("pagedown", "move(10)", show=False),
        Binding("pageup", "move(-10)", show=False),
    ]

    def __init__(self, title: str, load: Callable[[], list[PickerItem]], *, lang: str = "en") -> None:
        """``load`` runs in a thread and returns the entries (a `UserError` is shown in the status line)."""
        super().__init__()
        self.title_text = title
        self.load = load
        self.lang = lang
        self.items: list[PickerItem] | None = None
        self.shown: list[PickerItem] = []

    def compose(self) -> ComposeResult:
        """Title, filter input, the list and a status line."""
        with Vertical():
            yield Label(self.title_text, id="picker-title", markup=False)
            yield Input(placeholder=tr("picker.filter", self.lang), compact=True, id="picker-filter")
            yield OptionList(id="picker-list")
            yield Static(tr("picker.loading", self.lang), id="picker-status", markup=False)

    def on_mount(self) -> None:
        """Focus the filter and read the entries in a thread."""
        self.query_one("#picker-filter", Input).focus()
        self.run_worker(self._read, thread=True, exclusive=True, group="picker")

    def _read(self) -> None:
        try:
            items = self.load()
        except UserError as err:
            self.app.call_from_thread(self._show_error, str(err))
            return
        self.app.call_from_thread(self._show_items, items)

    def _show_error(self, message: str) -> None:
        self.items = []
        self.shown = []
        self.query_one("#picker-status", Static).update("✗ " + message)

    def _show_items(self, items: list[PickerItem]) -> None:
        self.items = items
        self._refilter()

    def _refilter(self) -> None:
        if self.items is None:
            return
        words = self.query_one("#picker-filter", Input).value.lower().split()
        self.shown = [item for item in self.items if item.matches(words)]
        options = self.query_one("#picker-list", OptionList)
        options.clear_options()
        options.add_options([Option(item.prompt()) for item in self.shown])
        if self.shown:
            options.highlighted = 0
        status = "picker.count" if self.shown or not self.items else "picker.no_match"
        self.query_one("#picker-status", Static).update(
            tr(status, self.lang, shown=len(self.shown), total=len(self.items))
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filter as the user types."""
        event.stop()
        self._refilter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the filter picks the highlighted entry."""
        event.stop()
        highlighted = self.query_one("#picker-list", OptionList).highlighted
        if highlighted is not None and highlighted < len(self.shown):
            self.dismiss(self.shown[highlighted].value)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter or a click on an entry picks it."""
        event.stop()
        if event.option_index < len(self.shown):
            self.dismiss(self.shown[event.option_index].value)

    def action_move(self, delta: int) -> None:
        """Move the highlight while the filter keeps the focus."""
        options = self.query_one("#picker-list", OptionList)
        if not self.shown:
            return
        current = options.highlighted if options.highlighted is not None else 0
        options.highlighted = max(0, min(len(self.shown) - 1, current + delta))

    def action_cancel(self) -> None:
        """Close without changing the field."""
        self.dismiss(None)


# ----- the three pickers ------------------------------------------------------------------------------


def model_items(lang: str) -> list[PickerItem]:
    """The local models (bundled, model roots, Hugging Face cache) as picker entries."""
    from tunequeue.core.model_catalog import list_models

    items = []
    for choice in list_models():
        parts = [
            choice.architecture or choice.model_type or "?",
            tr("picker.params", lang, count=choice.params_text),
            tr("picker.template", lang, name=choice.template or "—"),
            tr(f"picker.source.{choice.source}", lang),
        ]
        if choice.source != "bundled" and choice.value != str(choice.directory):
            parts.append(str(choice.directory))
        items.append(PickerItem(choice.value, choice.value, " · ".join(parts), choice.model_type or ""))
    return items


def dataset_items(dataset_dir: Any, chosen: list[str], lang: str) -> list[PickerItem]:
    """The entries of ``dataset_dir``'s dataset_info.json; those already in the field are ticked."""
    from tunequeue.core.dataset_catalog import list_datasets

    items = []
    for choice in list_datasets(dataset_dir or None):
        rows = "?" if choice.rows is None else str(choice.rows)
        detail = " · ".join(
            [choice.kind, tr("picker.rows", lang, rows=rows), f"{choice.source}: {choice.location}"]
        )
        mark = "✓ " if choice.name in chosen else "  "
        items.append(PickerItem(choice.name, mark + choice.name, detail))
    return items


def template_items(model: Any, lang: str) -> list[PickerItem]:
    """Every template, the one suggested for ``model`` first and marked."""
    from tunequeue.core.model_catalog import suggested_template_for
    from tunequeue.train.templates import template_names

    suggested = suggested_template_for(str(model)) if model else None
    names = template_names()
    if suggested in names:
        names = [suggested, *(name for name in names if name != suggested)]
    items = []
    for name in names:
        detail = tr("picker.template_auto", lang) if name == "auto" else ""
        if name == suggested:
            detail = tr("picker.suggested", lang) + (f" · {detail}" if detail else "")
        items.append(PickerItem(name, name, detail))
    return items


def _task_value(editor: Any, key: str) -> Any:
    """Another key's current value in the editor's screen (the wizard's collected task, else its row)."""
    screen = editor.screen
    collect = getattr(screen, "collect", None)
    if callable(collect):
        try:
            return collect().get(key)
        except Exception:  # noqa: BLE001 - a half-filled form may not collect; fall back to the row
            pass
    for row in screen.query(f"#field-{key}"):
        try:
            return row.read()
        except ValueError:
            return None
    return None


def merge_dataset(current: str, name: str) -> str:
    """Add ``name`` to a comma-separated dataset value, or take it out when it is already there."""
    names = [part.strip() for part in current.split(",") if part.strip()]
    if name in names:
        names.remove(name)
    else:
        names.append(name)
    return ",".join(names)


def open_picker(editor: Any) -> None:
    """Open the picker for ``editor``'s key and write the chosen value into it."""
    lang = editor.lang
    key = editor.key
    current = editor.raw_text() if editor.raw_text() != "-" else ""
    if key == "model_name_or_path":
        title, load = tr("picker.title.model", lang), lambda: model_items(lang)
    elif key == "dataset":
        chosen = [part.strip() for part in current.split(",") if part.strip()]
        dataset_dir = _task_value(editor, "dataset_dir")
        title = tr("picker.title.dataset", lang)

        def load() -> list[PickerItem]:
            return dataset_items(dataset_dir, chosen, lang)
    elif key == "template":
        model = _task_value(editor, "model_name_or_path")
        title, load = tr("picker.title.template", lang), lambda: template_items(model, lang)
    else:
        return

    def done(value: str | None) -> None:
        if value is None:
            return
        editor.write(merge_dataset(current, value) if key == "dataset" else value)
        editor.editor.focus()

    editor.app.push_screen(PickerScreen(title, load, lang=lang), done)
