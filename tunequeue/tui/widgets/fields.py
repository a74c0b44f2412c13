"""Field editors generated from the task model's metadata (`tunequeue.core.spec.ParamInfo`).

One `FieldEditor` is one compact row: the key, an editor chosen by the field's kind (a Select for
choices and for booleans that may be left unset, a Checkbox for other booleans, an Input for numbers
and text, parsed and type-checked here), the recommended range with the short explanation, and a
message line under it that shows the reason when the value is out of bounds (an error, blocking) or
outside the recommended range (a warning, allowed).
`field_help` builds the full explanation shown in the help pane for the focused field.
"""

from __future__ import annotations

import math
import re
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.events import DescendantFocus
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

from tunequeue.core import i18n
from tunequeue.tui.text import localize_bindings


def word(key: str, lang: str, **fmt: Any) -> str:
    """One of this module's UI strings in ``lang``."""
    return i18n.text(f"field.{key}", lang, **fmt)


def field_label(info: Any, lang: str) -> str:
    """The label shown for a field: its key (LLaMA-Factory's name), or the model's own label if it has one."""
    label = getattr(info, "label", None)
    if callable(label):
        return label(lang)
    return info.key


def format_value(value: Any) -> str:
    """Text for an Input holding ``value`` ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_text(info: Any, text: str, lang: str = "en") -> Any:
    """Turn an Input's text into the field's value; raise ValueError with a message in ``lang``."""
    text = text.strip()
    if text == "":
        if info.nullable or (info.kind == "str" and not info.required):
            return None
        raise ValueError(word("need_value", lang))
    if info.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(word("need_int", lang, text=text)) from None
    if info.kind in ("float", "number"):
        try:
            if info.kind == "number" and re.fullmatch(r"[+-]?\d+", text):
                return int(text)
            number = float(text)
        except ValueError:
            raise ValueError(word("need_number", lang, text=text)) from None
        if not math.isfinite(number):
            raise ValueError(word("need_number", lang, text=text))
        return number
    return text


def value_problems(info: Any, value: Any, lang: str = "en") -> tuple[str | None, str | None]:
    """(error, warning) for one field's value judged by its own bounds and recommended range."""
    if value is None:
        if info.required:
            return word("need_value", lang), None
        return None, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        bad = (
            (info.ge is not None and value < info.ge)
            or (info.gt is not None and value <= info.gt)
            or (info.le is not None and value > info.le)
            or (info.lt is not None and value >= info.lt)
        )
        if bad:
            return word("out_of_bounds", lang, bounds=info.bounds_text(lang), value=format_value(value)), None
    if isinstance(value, str) and info.kind == "str":
        if info.pattern and not re.fullmatch(info.pattern, value):
            return word("bad_pattern", lang), None
        max_len = getattr(info, "max_length", None)
        if max_len is not None and len(value) > max_len:
            return word("too_long", lang, n=max_len), None
    if info.choices and value not in info.choices:
        return word("out_of_bounds", lang, bounds=info.bounds_text(lang), value=format_value(value)), None
    if not info.in_recommended(value):
        return None, word("not_recommended", lang, rec=info.recommendation(lang))
    return None, None


def short_hint(info: Any, lang: str) -> str:
    """Recommended range and one-line help, for the row."""
    rec = info.recommendation(lang) if info.rec is not None else ""
    help_text = info.help(lang)
    return f"{word('rec', lang)} {rec} · {help_text}" if rec else help_text


_HELP: dict[tuple[str, str], str] = {}


def field_help(info: Any, lang: str) -> str:
    """The full explanation of a field for the help pane (help, default, bounds, recommendation, choices).

    Computed once per key and language: it only depends on the task model and the catalog.
    """
    text = _HELP.get((info.key, lang))
    if text is None:
        text = _HELP[(info.key, lang)] = _field_help(info, lang)
    return text


def _field_help(info: Any, lang: str) -> str:
    lines = [
        f"[b]{info.key}[/b]  ({word('default', lang)}: {format_value(info.default) or '—'}"
        + (f", {word('required', lang)}" if info.required else "")
        + ")"
    ]
    lines.append(info.help(lang))
    bounds = info.bounds_text(lang)
    if bounds:
        lines.append(f"{word('bounds', lang)}: {bounds}")
    recommendation = info.recommendation(lang)
    if recommendation:
        lines.append(f"{word('recommended', lang)}: {recommendation}")
    for choice in info.choices_help:
        lines.append(f"  {choice} — {info.choice_help(choice, lang)}")
    if info.nullable and info.kind not in ("bool",):
        lines.append(word("empty_ok", lang))
    return "\n".join(lines)


def select_values(info: Any) -> tuple[Any, ...] | None:
    """The values a Select offers for ``info``, or None when the field is not edited with a Select.

    A boolean that may stay unset (``packing``: empty means "decided by the stage") gets true/false
    and a blank, since a checkbox could not say "unset".
    """
    if info.kind == "choice":
        return tuple(info.choices)
    if info.kind == "bool" and info.nullable:
        return (True, False)
    return None


class _EditorMessage(Message):
    """A message about one `FieldEditor` row, which is its `control`."""

    def __init__(self, editor: FieldEditor) -> None:
        super().__init__()
        self.editor = editor

    @property
    def control(self) -> FieldEditor:
        """The row the message is about."""
        return self.editor


class FieldEditor(Widget):
    """One generated row editing one task key (model, dataset and template rows also open a picker)."""

    BINDINGS = [Binding("f2,ctrl+o", "pick", "Pick")]

    DEFAULT_CSS = """
    FieldEditor { height: auto; width: 100%; }
    FieldEditor > Horizontal { height: 1; width: 100%; }
    FieldEditor .field-label {
        width: 24; height: 1; padding: 0 1 0 0; text-wrap: nowrap; text-overflow: ellipsis;
    }
    FieldEditor .field-editor { width: 20; height: 1; }
    FieldEditor Input.field-editor { background: $boost; }
    FieldEditor Input.field-editor:focus { background: $primary 30%; }
    FieldEditor .field-hint {
        width: 1fr; height: 1; padding: 0 0 0 1; color: $text-muted;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    FieldEditor .field-message { height: auto; padding: 0 0 0 24; display: none; }
    FieldEditor .field-message.-error { display: block; color: $error; }
    FieldEditor .field-message.-warning { display: block; color: $warning; }
    FieldEditor:focus-within .field-label { text-style: bold; color: $accent; }
    """

    class Changed(_EditorMessage):
        """The user changed the value (posted after the row re-checked itself)."""

    class Focused(_EditorMessage):
        """The row's editor got focus (the help pane follows it)."""

    def __init__(self, info: Any, value: Any = None, *, lang: str = "en") -> None:
        """Build a row for ``info`` holding ``value``."""
        super().__init__(id=f"field-{info.key}")
        self.info = info
        self.key = info.key
        self.lang = lang
        self._initial = value
        self.error: str | None = None
        self.warning: str | None = None
        self._quiet = True
        self._message: Static | None = None
        self._editor: Widget | None = None
        # A Select announces the value it starts with once mounted; that is no change.
        self._select_started = False
        self._message_shown = ("", "")
        # An empty required field is only flagged once the user typed something or tried to go on.
        self._strict = value is not None

    def compose(self) -> ComposeResult:
        """Label, the editor for this field's kind and hint (the message line comes when first needed)."""
        info = self.info
        with Horizontal():
            yield Label(field_label(info, self.lang), classes="field-label")
            choices = select_values(info)
            if choices is not None:
                options = [(format_value(c), c) for c in choices]
                initial = next((c for c in choices if _same(c, self._initial)), Select.NULL)
                yield Select(
                    options,
                    value=initial,
                    allow_blank=info.nullable or initial is Select.NULL,
                    prompt=word("none", self.lang),
                    compact=True,
                    classes="field-editor",
                    id=f"edit-{info.key}",
                )
            elif info.kind == "bool":
                yield Checkbox(
                    "", bool(self._initial), compact=True, classes="field-editor", id=f"edit-{info.key}"
                )
            else:
                yield Input(
                    format_value(self._initial),
                    placeholder=PLACEHOLDERS.get(info.key, ""),
                    compact=True,
                    classes="field-editor",
                    id=f"edit-{info.key}",
                )
            yield Static(short_hint(info, self.lang), classes="field-hint", markup=False)

    def on_mount(self) -> None:
        """Show the initial value's problems without announcing a change."""
        # No bindings refresh here: the footer shows a row's keys once it has focus, and a focus
        # move refreshes them anyway (a refresh per mounted row rebuilt the footer once per row).
        self.check()
        self._quiet = False

    @property
    def editor(self) -> Widget:
        """The input widget of this row (found once: a row is composed once)."""
        if self._editor is None:
            self._editor = self.query_one(".field-editor")
        return self._editor

    def read(self) -> Any:
        """The current value; raises ValueError (message in the row's language) when it cannot be parsed."""
        editor = self.editor
        if isinstance(editor, Select):
            return None if editor.is_blank() else editor.value
        if isinstance(editor, Checkbox):
            return editor.value
        return parse_text(self.info, editor.value, self.lang)

    def raw_text(self) -> str:
        """The editor's text as typed ('' for Select and Checkbox rows)."""
        editor = self.editor
        return editor.value.strip() if isinstance(editor, Input) else "-"

    def write(self, value: Any) -> None:
        """Set the editor to ``value`` (None clears it)."""
        editor = self.editor
        if isinstance(editor, Select):
            choices = select_values(self.info) or ()
            matches = [c for c in choices if _same(c, value)]
            if matches:
                editor.value = matches[0]
            elif self.info.nullable or value is None:
                editor.clear()
        elif isinstance(editor, Checkbox):
            editor.value = bool(value)
        else:
            editor.value = format_value(value)
        self.check()

    def check(self, *, strict: bool = False) -> bool:
        """Re-check the value and update the message line; return True when there is no error.

        ``strict`` also flags an empty required field (done when the user tries to leave the step).
        """
        self._strict = self._strict or strict
        try:
            value = self.read()
        except ValueError as exc:
            self.error, self.warning = str(exc), None
            value = None if self.raw_text() == "" else ""
        else:
            self.error, self.warning = value_problems(self.info, value, self.lang)
        if value is None and not self._strict:
            self.error = None
        self._show_message()
        return self.error is None or (value is None and not strict and not self._strict)

    def set_problem(self, error: str | None = None, warning: str | None = None) -> None:
        """Show a problem found outside the row (cross-field rules)."""
        if error:
            self.error = error
        if warning and not self.warning:
            self.warning = warning
        self._show_message()

    def _show_message(self) -> None:
        """Show the error or warning on the message line under the row (hidden when there is none).

        The line is created the first time there is something to show, and only touched when what it
        shows changes: re-rendering it on every keystroke re-laid out the whole screen.
        """
        if self.error:
            shown = ("-error", "✗ " + self.error)
        elif self.warning:
            shown = ("-warning", "! " + self.warning)
        else:
            shown = ("", "")
        if shown == self._message_shown:
            return
        self._message_shown = shown
        kind, text = shown
        if self._message is None:
            self._message = Static(text, classes=f"field-message {kind}".strip(), markup=False)
            self.mount(self._message)
            return
        self._message.update(text)
        self._message.update_classes({"-error": kind == "-error", "-warning": kind == "-warning"})

    def set_language(self, lang: str) -> None:
        """Re-render label, hint and message in ``lang``."""
        self.lang = lang
        localize_bindings(self, lang)
        self.query_one(".field-label", Label).update(field_label(self.info, lang))
        self.query_one(".field-hint", Static).update(short_hint(self.info, lang))
        self.check()

    def _changed(self) -> None:
        editor = self.editor
        if isinstance(editor, Input) and editor.value != format_value(self._initial):
            self._strict = True
        self.check()
        if not self._quiet:
            self.post_message(self.Changed(self))

    def on_input_changed(self, event: Input.Changed) -> None:
        """Text typed: re-check and announce."""
        event.stop()
        self._changed()

    def on_select_changed(self, event: Select.Changed) -> None:
        """Option chosen: re-check and announce (not the Select showing its first value)."""
        event.stop()
        first, self._select_started = not self._select_started, True
        value = None if event.value is Select.NULL else event.value
        if first and _same(value, self._initial):
            return
        self._changed()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        """Box toggled: re-check and announce."""
        event.stop()
        self._changed()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer the picker only on the rows that have one."""
        if action == "pick":
            return self.key in PICKER_KEYS
        return True

    def action_pick(self) -> None:
        """Open the model, dataset or template picker (F2 / ctrl+o); the row keeps accepting typing."""
        from tunequeue.tui.widgets.pickers import open_picker

        open_picker(self)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        """Tell the screen which field is focused, for the help pane."""
        self.post_message(self.Focused(self))


def _same(choice: Any, value: Any) -> bool:
    """``value`` is ``choice`` (True is not taken for 1, nor False for 0)."""
    return choice == value and isinstance(choice, bool) == isinstance(value, bool)


# Shown greyed in empty inputs; the "e.g." keeps an example from reading as a value already filled in.
PLACEHOLDERS = {
    "task_name": "e.g. my-first-task",
    "model_name_or_path": "/path/to/model",
    "dataset": "e.g. demo_alpaca",
    "template": "auto",
    "dataset_dir": "bundled demo data",
}

# Rows with a picker (F2 / ctrl+o; `tunequeue.tui.widgets.pickers`).
PICKER_KEYS = ("model_name_or_path", "dataset", "template")

# Keys that follow from another row (booster sets them), so the generated forms leave them out.
DERIVED_KEYS = frozenset({"flash_attn", "use_unsloth", "enable_liger_kernel"})


def params_of_group(group_id: str) -> list[Any]:
    """The ParamInfo of every user-editable key in one task-model group, in declaration order."""
    from tunequeue.core import spec

    return [info for info in spec.params_of_group(group_id) if info.editable and info.key not in DERIVED_KEYS]
