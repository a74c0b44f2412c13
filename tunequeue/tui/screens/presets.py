"""The presets manager: namespaces on the left, their presets on the right, the selected one below.

Keys: ``n`` new, ``e`` edit, ``c`` copy, ``d`` delete (after a confirmation), ``escape`` back. Built-in
presets are marked and read-only: editing or deleting one is refused with a message that suggests
copying it. Create and edit open `PresetEditScreen`, which generates the same field editors as the
wizard for the hyperparameter groups only (hyperparameters, LoRA settings, other settings), plus the
preset's stage, fine-tuning method and description.

The manager never reads or writes preset files on the UI thread: `reload` reads them in a thread
worker that answers with `PresetsScreen.Loaded` (the newest read wins), and copy and delete run in a
worker that answers with `PresetsScreen.Changed` before the list is read again. Files that cannot be
read are left out of the list and named, one line, in the status line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tunequeue.core import i18n
from tunequeue.core.errors import UserError, one_line
from tunequeue.tui.dialogs import ConfirmDialog, TextPrompt, leave_unless_changed
from tunequeue.tui.keys import FORM_BINDINGS, OrderedKeys
from tunequeue.tui.text import TranslatedBindings, tr
from tunequeue.tui.widgets.fields import FieldEditor, field_help, format_value, params_of_group
from tunequeue.tui.widgets.key_footer import KeyFooter
from tunequeue.tui.widgets.row_table import RowTable

EDIT_GROUPS = ("hyper", "lora", "other")
ALL_NAMESPACES = "*"


def presets_text(key: str, lang: str, **fmt: Any) -> str:
    """One of the presets screens' strings in ``lang``."""
    return i18n.text(f"presets.{key}", lang, **fmt)


def _short_time(stamp: str) -> str:
    """'2026-01-01T10:20:30.123+00:00' → '2026-01-01 10:20'."""
    return stamp[:16].replace("T", " ")


# Footer texts of the presets screens' own keys, by action.
_BINDING_TEXTS = {
    "new_preset": "bind.new",
    "edit_preset": "bind.edit",
    "copy_preset": "bind.copy",
    "delete_preset": "bind.delete",
    "back": "bind.back",
    "save": "bind.save",
    "cancel": "bind.cancel",
}


def preset_ref_problem(text: str, lang: str, *, new: bool = True) -> str | None:
    """What is wrong with ``text`` as the NAMESPACE/NAME of a preset (for ``new``: one not taken yet)."""
    from tunequeue.core import presets as presets_api

    try:
        namespace, name = presets_api.parse_ref(text)
    except UserError:
        return tr("preset.bad_ref", lang)
    if "/" not in text:
        return tr("preset.bad_ref", lang)
    if new and presets_api.preset_exists((namespace, name)):  # checked per keystroke: no file is read
        return tr("preset.exists", lang, ref=f"{namespace}/{name}")
    return None


class _PresetTexts(TranslatedBindings):
    """Footer texts of the presets screens from their own table."""

    def binding_description(self, binding: Any, lang: str) -> str:
        """The description of one of this screen's keys in ``lang``."""
        key = _BINDING_TEXTS.get(binding.action)
        if key is not None:
            return presets_text(key, lang)
        return super().binding_description(binding, lang)


class PresetsScreen(_PresetTexts, Screen[None]):
    """Browse, create, edit, copy and delete presets."""

    DEFAULT_CSS = """
    PresetsScreen #presets-title { height: 1; background: $primary; color: $text; padding: 0 1; }
    PresetsScreen #presets-main { height: 1fr; }
    PresetsScreen #namespaces { width: 18; height: 100%; border: round $primary-darken-2; }
    PresetsScreen #namespaces:focus-within { border: round $accent; }
    PresetsScreen #preset-table { width: 1fr; height: 100%; border: round $primary-darken-2; }
    PresetsScreen #preset-table:focus { border: round $accent; }
    PresetsScreen #preset-details { height: 8; border-top: solid $primary; padding: 0 1; }
    PresetsScreen #presets-status { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    PresetsScreen #presets-status.-error { color: $error; }
    """

    BINDINGS = [
        Binding("n", "new_preset", "New"),
        Binding("e", "edit_preset", "Edit"),
        Binding("c", "copy_preset", "Copy"),
        Binding("d", "delete_preset", "Delete"),
        Binding("escape", "back", "Back"),
    ]

    class Loaded(Message):
        """A read of the presets: what could be read, what could not, or why nothing could."""

        def __init__(
            self, generation: int, presets: list[Any], problems: list[str], error: str = ""
        ) -> None:
            super().__init__()
            self.generation = generation
            self.presets = presets
            self.problems = problems
            self.error = error

    class Changed(Message):
        """A copy or delete finished: the text for the status line, and the preset to select."""

        def __init__(self, text: str, *, error: bool = False, select: str | None = None) -> None:
            super().__init__()
            self.text = text
            self.error = error
            self.select = select

    def __init__(self) -> None:
        """An empty manager; it reads the presets when mounted."""
        super().__init__()
        self.lang = "en"
        self.namespace = ALL_NAMESPACES
        self.presets: list[Any] = []
        self._generation = 0  # of the newest read asked for; older answers are dropped
        self._shown_generation = 0
        self._select: str | None = None
        self._quiet = False
        self._problem_shown = False

    def compose(self) -> ComposeResult:
        """Title, namespaces list, presets table, details and status line."""
        self.lang = getattr(self.app, "lang", "en")
        yield Static("", id="presets-title")
        with Horizontal(id="presets-main"):
            yield OptionList(id="namespaces")
            table: DataTable = RowTable(id="preset-table")
            yield table
        with VerticalScroll(id="preset-details"):
            yield Static("", id="details-text", markup=False)
        yield Static("", id="presets-status", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        """Read the presets and show them in the current language."""
        self.render_language()
        self.reload()
        self.query_one("#preset-table", DataTable).focus()

    # ------------------------------------------------------------------ rendering

    def t(self, key: str, **fmt: Any) -> str:
        """A string of this screen in the current language."""
        return presets_text(key, self.lang, **fmt)

    def render_language(self) -> None:
        """(Re)render labels, table headers and footer in ``self.lang``."""
        self.query_one("#presets-title", Static).update(self.t("title"))
        self.query_one("#namespaces", OptionList).border_title = self.t("namespaces")
        self.refresh_bindings()

    def on_language_changed(self, message: Message) -> None:
        """The app switched language: re-render everything."""
        self.lang = getattr(message, "lang", self.lang)
        self.render_language()
        self.reload()

    def reload(self, select: str | None = None, *, quiet: bool = False) -> None:
        """Read presets and namespaces again in the background; then keep (or move to ``select``) the cursor.

        With ``quiet`` the status line keeps what it says (the result of an action) even when some
        preset cannot be read. A read asked for while another is pending replaces it and keeps its
        ``select`` and ``quiet``.
        """
        pending = self.read_pending
        self._select = select or (self._select if pending else None)
        self._quiet = quiet or (self._quiet and pending)
        self._generation += 1
        self._read(self._generation)

    @property
    def read_pending(self) -> bool:
        """True from the moment a read is asked for until its answer is shown."""
        return self._shown_generation != self._generation

    @work(thread=True, exit_on_error=False, group="presets-read")
    def _read(self, generation: int) -> None:
        from tunequeue.core import presets as presets_api

        problems: list[str] = []
        try:
            found = presets_api.list_presets(problems=problems)
        except Exception as error:  # noqa: BLE001 - shown in the status line; the list stays as it was
            self.post_message(self.Loaded(generation, [], [], error=one_line(error)))
            return
        self.post_message(self.Loaded(generation, found, problems))

    def on_presets_screen_loaded(self, message: Loaded) -> None:
        """Show the newest read: namespaces, the table and the details; problems go to the status line."""
        if message.generation != self._generation:
            return
        self._shown_generation = message.generation
        if message.error:
            self.set_status(message.error, error=True)
            self._problem_shown = True
            return
        self.show_presets(message.presets, self._select)
        if message.problems and not self._quiet:
            first = " ".join(message.problems[0].split())
            more = len(message.problems) - 1
            self.set_status(self.t("read_problems", first=first, more=more) if more else first, error=True)
            self._problem_shown = True
        elif self._problem_shown and not self._quiet:
            self.set_status("")
            self._problem_shown = False

    def show_presets(self, all_presets: list[Any], select: str | None) -> None:
        """Fill the namespaces list and the table; the cursor goes to ``select`` or stays on its preset."""
        current = select or (self.selected.ref if self.selected is not None else None)
        namespaces = sorted({p.namespace for p in all_presets})
        if self.namespace not in namespaces:
            self.namespace = ALL_NAMESPACES
        options = self.query_one("#namespaces", OptionList)
        options.clear_options()
        options.add_options(
            [Option(self.t("all"), id=ALL_NAMESPACES)] + [Option(ns, id=ns) for ns in namespaces]
        )
        options.highlighted = ([ALL_NAMESPACES, *namespaces]).index(self.namespace)
        self.presets = [p for p in all_presets if self.namespace in (ALL_NAMESPACES, p.namespace)]

        rows: list[list[Text]] = []
        for preset in self.presets:
            kind = ("🔒 " + self.t("builtin")) if preset.builtin else self.t("user")
            description = preset.description
            if len(description) > 40:
                description = description[:39] + "…"
            cells = (preset.ref, preset.stage, preset.finetuning_type, kind, description)
            # plain Text: a description may hold brackets that are not markup
            rows.append([Text(cell, no_wrap=True, end="") for cell in cells])
        table = self.query_one("#preset-table", DataTable)
        table.clear(columns=True)
        # Each column as wide as its widest cell, given here: a width the table measures itself is
        # only applied when it next idles, and rows drawn before that keep the headers' widths.
        for index, key in enumerate(("ref", "stage", "method", "kind", "description")):
            label = self.t(f"col.{'name' if key == 'ref' else key}")
            width = max([Text.from_markup(label).cell_len, *(row[index].cell_len for row in rows)])
            table.add_column(label, key=key, width=width)
        for preset, row in zip(self.presets, rows, strict=True):
            table.add_row(*row, key=preset.ref)
        refs = [p.ref for p in self.presets]
        if current in refs:
            table.move_cursor(row=refs.index(current))
        self.show_details()

    @property
    def selected(self) -> Any:
        """The preset under the table's cursor (None when the table is empty)."""
        try:
            table = self.query_one("#preset-table", DataTable)
        except Exception:  # noqa: BLE001 - not composed yet
            return None
        if not self.presets or table.cursor_row is None or table.cursor_row >= len(self.presets):
            return None
        return self.presets[table.cursor_row]

    def show_details(self) -> None:
        """Values of the selected preset, marking built-ins read-only."""
        details = self.query_one("#details-text", Static)
        preset = self.selected
        if preset is None:
            details.update(self.t("empty") if not self.presets else self.t("details.none"))
            return
        head = f"{preset.ref} · {preset.stage} · {preset.finetuning_type}"
        if preset.updated_at:
            head += " · " + self.t("details.updated", time=_short_time(preset.updated_at))
        lines = [head]
        if preset.builtin:
            lines.append(self.t("details.readonly"))
        if preset.description:
            lines.append(preset.description)
        lines.append("  ".join(f"{k}={format_value(v) or 'null'}" for k, v in preset.values.items()))
        details.update("\n".join(lines))

    def set_status(self, text: str, *, error: bool = False) -> None:
        """One line above the footer."""
        status = self.query_one("#presets-status", Static)
        status.update(text)
        status.set_class(error, "-error")
        self._problem_shown = False

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self.show_details()

    @on(OptionList.OptionSelected, "#namespaces")
    def _namespace_chosen(self, event: OptionList.OptionSelected) -> None:
        self.namespace = event.option.id or ALL_NAMESPACES
        self.reload()
        self.query_one("#preset-table", DataTable).focus()

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        """Return to the previous screen."""
        self.dismiss(None)

    def action_new_preset(self) -> None:
        """Ask for namespace/name, then open the editor for a new preset."""
        namespace = self.namespace if self.namespace != ALL_NAMESPACES else "default"

        def named(ref: str | None) -> None:
            if ref:
                self.app.push_screen(PresetEditScreen(ref=ref), self._after_edit)

        lang = self.lang
        self.app.push_screen(
            TextPrompt(
                self.t("prompt.new"), f"{namespace}/", check=lambda text: preset_ref_problem(text, lang)
            ),
            named,
        )

    def action_edit_preset(self) -> None:
        """Open the editor for the selected user preset (built-ins are refused)."""
        preset = self.selected
        if preset is None:
            self.set_status(self.t("none_selected"), error=True)
            return
        if preset.builtin:
            message = self.t("refuse.edit", ref=preset.ref)
            self.set_status(message, error=True)
            self.notify(message, severity="warning")
            return
        self.app.push_screen(PresetEditScreen(ref=preset.ref, preset=preset), self._after_edit)

    def _after_edit(self, ref: str | None) -> None:
        if ref:
            self.set_status(self.t("done.saved", ref=ref))
            self.reload(select=ref, quiet=True)

    @work(thread=True, exit_on_error=False, group="presets-change")
    def run_change(self, change: Callable[[], tuple[str, str | None]]) -> None:
        """Run ``change()`` (a file operation) in a thread worker; it returns (status text, ref to select).

        Its text, or the one line of the error it raised, goes to the status line and the list is read
        again.
        """
        try:
            text, select = change()
        except UserError as error:
            self.post_message(self.Changed(error.message, error=True))
            return
        except Exception as error:  # noqa: BLE001 - e.g. a full disk: say so in one line, keep running
            self.post_message(self.Changed(one_line(error), error=True))
            return
        self.post_message(self.Changed(text, select=select))

    def on_presets_screen_changed(self, message: Changed) -> None:
        """Say how a copy or delete went and show its effect."""
        self.set_status(message.text, error=message.error)
        self.reload(select=message.select, quiet=True)

    def action_copy_preset(self) -> None:
        """Ask for the new namespace/name and copy the selected preset there."""
        preset = self.selected
        if preset is None:
            self.set_status(self.t("none_selected"), error=True)
            return

        lang = self.lang

        def copy(target: str) -> tuple[str, str | None]:
            from tunequeue.core import presets as presets_api

            made = presets_api.copy_preset(preset.ref, target)
            return presets_text("done.copied", lang, ref=made.ref), made.ref

        def named(ref: str | None) -> None:
            if ref:
                self.run_change(lambda: copy(ref))

        self.app.push_screen(
            TextPrompt(
                self.t("prompt.copy", ref=preset.ref),
                f"{preset.ref}-copy",
                check=lambda text: preset_ref_problem(text, lang),
            ),
            named,
        )

    def action_delete_preset(self) -> None:
        """Delete the selected user preset after a confirmation (built-ins are refused)."""
        preset = self.selected
        if preset is None:
            self.set_status(self.t("none_selected"), error=True)
            return
        if preset.builtin:
            message = self.t("refuse.delete", ref=preset.ref)
            self.set_status(message, error=True)
            self.notify(message, severity="warning")
            return

        lang = self.lang

        def delete() -> tuple[str, str | None]:
            from tunequeue.core import presets as presets_api

            presets_api.delete_preset(preset.ref)
            return presets_text("done.deleted", lang, ref=preset.ref), None

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_change(delete)

        self.app.push_screen(ConfirmDialog(self.t("confirm.delete", ref=preset.ref)), confirmed)


class PresetEditScreen(OrderedKeys, _PresetTexts, Screen["str | None"]):
    """Create or edit one user preset with generated editors of the hyperparameter groups.

    Dismisses with the preset's reference when saved, None when cancelled (after asking, when
    something was changed).
    """

    DEFAULT_CSS = """
    PresetEditScreen #edit-title { height: 1; background: $primary; color: $text; padding: 0 1; }
    PresetEditScreen #edit-form { height: 1fr; padding: 0 1; }
    PresetEditScreen .section { height: 1; margin-top: 1; text-style: bold; color: $accent; }
    PresetEditScreen #description-row { height: 1; }
    PresetEditScreen #description-row Label { width: 24; }
    PresetEditScreen #description { width: 1fr; background: $boost; }
    PresetEditScreen #edit-help { height: 6; border-top: solid $primary; padding: 0 1; }
    PresetEditScreen #edit-status { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    PresetEditScreen #edit-status.-error { color: $error; }
    """

    BINDINGS = [
        *FORM_BINDINGS,
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]
    HELD_ACTIONS = frozenset({"save"})

    def __init__(self, *, ref: str, preset: Any = None) -> None:
        """Edit ``preset`` (a user preset), or create a new one named ``ref`` when ``preset`` is None."""
        super().__init__()
        self.ref = ref
        self.preset = preset
        self.lang = "en"
        self._start_state: list[tuple[str, Any]] | None = None
        self._blocked: list[str] = []
        self._focus_before_save: Widget | None = None

    def _start_values(self) -> dict[str, Any]:
        from tunequeue.core import spec

        values = spec.defaults()
        if self.preset is not None:
            values.update(self.preset.values)
            values["stage"] = self.preset.stage
            values["finetuning_type"] = self.preset.finetuning_type
        return values

    def compose(self) -> ComposeResult:
        """Title, header rows (stage, method, description), generated groups, help and status."""
        from tunequeue.core import spec

        self.lang = getattr(self.app, "lang", "en")
        values = self._start_values()
        yield Static("", id="edit-title")
        with VerticalScroll(id="edit-form"):
            yield Static("", id="header-title", classes="section")
            for key in ("stage", "finetuning_type"):
                yield FieldEditor(spec.param_info(key), values.get(key), lang=self.lang)
            with Horizontal(id="description-row"):
                yield Label("", id="description-label")
                yield Input(self.preset.description if self.preset else "", id="description", compact=True)
            for group_id in EDIT_GROUPS:
                yield Static(spec.group_title(group_id, self.lang), classes="section", id=f"title-{group_id}")
                for info in params_of_group(group_id):
                    yield FieldEditor(info, values.get(info.key), lang=self.lang)
        yield Static("", id="edit-help")
        yield Static("", id="edit-status", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        """Render labels, remember the start values and hand the first field the keys typed so far."""
        self.render_language()
        self._start_state = self.form_state()
        self.release_keys(self.query_one("#field-stage", FieldEditor).editor)

    def form_state(self) -> list[tuple[str, Any]]:
        """What the form shows now, as typed (to tell whether anything was changed)."""
        state: list[tuple[str, Any]] = [(row.key, row.editor.value) for row in self.query(FieldEditor)]
        state.append(("description", self.query_one("#description", Input).value))
        return state

    def t(self, key: str, **fmt: Any) -> str:
        """A string of this screen in the current language."""
        return presets_text(key, self.lang, **fmt)

    def render_language(self) -> None:
        """(Re)render every label in ``self.lang``."""
        from tunequeue.core import spec

        title = self.t("edit.title" if self.preset is not None else "edit.title_new", ref=self.ref)
        self.query_one("#edit-title", Static).update(title)
        self.query_one("#header-title", Static).update(self.t("edit.header"))
        self.query_one("#description-label", Label).update(self.t("edit.description"))
        for group_id in EDIT_GROUPS:
            self.query_one(f"#title-{group_id}", Static).update(spec.group_title(group_id, self.lang))
        for editor in self.query(FieldEditor):
            editor.set_language(self.lang)
        self.query_one("#edit-help", Static).update(self.t("edit.help"))
        self.refresh_bindings()

    def on_language_changed(self, message: Message) -> None:
        """The app switched language: re-render."""
        self.lang = getattr(message, "lang", self.lang)
        self.render_language()

    def on_field_editor_focused(self, message: FieldEditor.Focused) -> None:
        """Explain the focused field in the help pane."""
        self.query_one("#edit-help", Static).update(field_help(message.editor.info, self.lang))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter moves to the next field."""
        event.stop()
        self.focus_next()

    def on_field_editor_changed(self, message: FieldEditor.Changed) -> None:
        """A field marked by a refused save was changed: drop the message once every mark is fixed."""
        if self._blocked and message.editor.key in self._blocked:
            still = [key for key in self._blocked if self.query_one(f"#field-{key}", FieldEditor).error]
            if still:
                self._block(still)
            else:
                self.set_status("")

    def _block(self, bad: list[str]) -> None:
        self.set_status(self.t("edit.blocked", keys=", ".join(bad)), error=True)
        self._blocked = list(bad)

    def set_status(self, text: str, *, error: bool = False) -> None:
        """One line above the footer."""
        if not error:
            self._blocked = []
        status = self.query_one("#edit-status", Static)
        status.update(text)
        status.set_class(error, "-error")

    def collect(self) -> tuple[dict[str, Any], list[str]]:
        """(values that differ from the defaults or were in the preset, keys with errors)."""
        from tunequeue.core import spec

        before = self.preset.values if self.preset is not None else {}
        form_keys = {editor.key for editor in self.query(FieldEditor)}
        # Keys of groups this form does not show (preference, LoRA extras, …) are kept as they are.
        values: dict[str, Any] = {k: v for k, v in before.items() if k not in form_keys}
        bad: list[str] = []
        for editor in self.query(FieldEditor):
            if not editor.check(strict=True):
                bad.append(editor.key)
                continue
            value = editor.read()
            header = editor.key in ("stage", "finetuning_type")
            if header or editor.key in before or value != spec.param_info(editor.key).default:
                values[editor.key] = value
        return values, bad

    def action_save(self) -> None:
        """Validate and store the preset (after the keys already typed); dismiss with its reference."""
        self._focus_before_save = self.app.focused
        self.after_pending_keys(self._save_now)
        self.hold_keys()

    def _save_now(self) -> None:
        from tunequeue.core import presets as presets_api

        back_to = self._focus_before_save
        values, bad = self.collect()
        if bad:
            self._block(bad)
            self.release_keys(self.query_one(f"#field-{bad[0]}", FieldEditor).editor)
            return
        stage = values.pop("stage")
        method = values.pop("finetuning_type")
        description = self.query_one("#description", Input).value.strip()
        try:
            if self.preset is None:
                saved = presets_api.create_preset(
                    self.ref, values=values, stage=stage, finetuning_type=method, description=description
                )
            else:
                saved = presets_api.edit_preset(
                    self.ref,
                    values=values,
                    replace_values=True,
                    stage=stage,
                    finetuning_type=method,
                    description=description,
                    expected_updated_at=self.preset.updated_at or None,
                )
        except UserError as exc:
            self.set_status(str(exc), error=True)
            self.release_keys(back_to)
            return
        self.dismiss(saved.ref)

    def action_cancel(self) -> None:
        """Leave without saving; when something was changed, ask first."""
        changed = self._start_state is not None and self.form_state() != self._start_state
        leave_unless_changed(self, changed, tr("form.discard", self.lang))
