"""The five-step task wizard (seed 001) and its review step.

Steps, in order: basic info, task config, hyperparameters, LoRA settings (LoRA rows only for
``finetuning_type: lora``; the advanced quantization / RoPE / booster block always), other settings.
Below the rows of step 5 an "Advanced" area holds one collapsible section per advanced group of the
task model that applies to the chosen method and stage (freeze, LoRA extras, preference, GaLore and
BAdam) plus dataset, output, evaluate/predict and export, which always apply. Then comes a review
with the final YAML, warnings, the VRAM estimate and the GPUs it fits on, and three
ways out: submit to the queue, save as a preset, save as a YAML file.

Every row is generated from the task model (`tunequeue.widgets.fields.FieldEditor`). A value out of
bounds blocks Next with the reason beside the field; a value outside the recommended range shows a
warning and passes. The wizard can start from a preset, from a copy of an earlier job (clone), or edit
a job that is still queued or held. The screen dismisses with the job id it submitted or updated, or
None when cancelled or when it only saved files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.events import DescendantFocus
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import (
    Button,
    Collapsible,
    ContentSwitcher,
    Input,
    LoadingIndicator,
    Select,
    Static,
)
from textual.worker import WorkerCancelled, WorkerFailed

from tunequeue.core import i18n
from tunequeue.core import spec as task_spec
from tunequeue.core.errors import UserError, one_line
from tunequeue.tui.dialogs import TextPrompt, leave_unless_changed
from tunequeue.tui.keys import FORM_BINDINGS, OrderedKeys
from tunequeue.tui.text import TranslatedBindings, tr
from tunequeue.tui.widgets.fields import FieldEditor, field_help, params_of_group, word
from tunequeue.tui.widgets.key_footer import KeyFooter

STEPS = ("basic", "task", "hyper", "lora", "other")
PAGES = (*STEPS, "review")
# Rows of the LoRA step that exist only for finetuning_type lora; the rest is the advanced block.
LORA_ONLY_PREFIXES = ("lora_", "loraplus_")
# Groups of the task model beyond the five steps; step 5 shows the ones that apply as collapsible sections.
ADVANCED_GROUPS = tuple(gid for gid, *_rest in task_spec.GROUPS if gid not in task_spec.WIZARD_GROUPS)
ALWAYS_ADVANCED = ("dataset", "output", "eval", "export")
PREFERENCE_STAGES = ("rm", "ppo", "dpo", "kto")


def wizard_text(key: str, lang: str, **fmt: Any) -> str:
    """One of the wizard's strings in ``lang``."""
    return i18n.text(f"wizard.{key}", lang, **fmt)


def _is_lora_only(key: str) -> bool:
    return key.startswith(LORA_ONLY_PREFIXES)


def advanced_groups_for(finetuning_type: Any, stage: Any) -> tuple[str, ...]:
    """The advanced groups that apply to a task with this method and stage, in the model's order."""
    wanted = set(ALWAYS_ADVANCED)
    if finetuning_type == "freeze":
        wanted.add("freeze")
    elif finetuning_type == "lora":
        wanted.add("lora_extras")
    elif finetuning_type == "full":
        wanted.update(("galore", "badam"))
    if stage in PREFERENCE_STAGES:
        wanted.add("preference")
    return tuple(gid for gid in ADVANCED_GROUPS if gid in wanted)


def dump_yaml(data: dict[str, Any]) -> str:
    """Task YAML text as the queue stores it (key order kept, unicode as is)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


class PreviewReady(Message):
    """The dataset preview worker finished (text to show, or an error)."""

    def __init__(self, text: str, ok: bool) -> None:
        super().__init__()
        self.text = text
        self.ok = ok


class StartLoaded(Message):
    """The values the rows begin with are known (read by the start worker from a job or a preset)."""

    def __init__(self, values: dict[str, Any], preset_ref: str | None, error: str) -> None:
        super().__init__()
        self.values = values
        self.preset_ref = preset_ref
        self.error = error


class ReviewReady(Message):
    """The review worker checked the task: report, estimate lines, and what to do next."""

    def __init__(self, serial: int, report: Any, estimate: str, failure: str, then: str | None) -> None:
        super().__init__()
        self.serial = serial
        self.report = report
        self.estimate = estimate
        self.failure = failure
        self.then = then


class TaskStored(Message):
    """The store worker wrote the job (its id), or says in one line why it could not."""

    def __init__(self, job_id: int | None, failure: str = "") -> None:
        super().__init__()
        self.job_id = job_id
        self.failure = failure


_ROWS: dict[str, tuple[Any, str]] | None = None


def wizard_rows() -> dict[str, tuple[Any, str]]:
    """Every row of the wizard in display order: key → (ParamInfo, step or advanced group)."""
    global _ROWS
    if _ROWS is None:
        rows: dict[str, tuple[Any, str]] = {}
        for place in (*STEPS, *ADVANCED_GROUPS):
            for info in params_of_group(place):
                rows.setdefault(info.key, (info, place))
        # Published whole: `warm_up` may build it in another thread.
        _ROWS = rows
    return _ROWS


def warm_up() -> None:
    """Import and compute, ahead of time, what opening the wizard and its first steps needs.

    The app calls it in a background thread while the queue is idle, so that pressing ``n`` imports
    nothing on the event loop: the task model's rows and validator, the rules, the presets and the
    pickers.
    """
    wizard_rows()
    task_spec.TaskSpec.model_rebuild()  # the validator is built on first use (``defer_build``)
    from tunequeue.core import presets, rules  # noqa: F401 - imported for the cache
    from tunequeue.tui.widgets import pickers  # noqa: F401 - imported for the cache


def _start_value(info: Any, values: dict[str, Any]) -> Any:
    return values.get(info.key, info.default if not info.required else None)


class WizardScreen(OrderedKeys, TranslatedBindings, Screen["int | None"]):
    """Build, check and submit one task in five steps plus a review.

    A step's page and rows are created when the step is first shown (a new task's step 1 with the
    screen; later steps under a loading indicator), the review's blocks when the review is, an
    advanced section's rows when it is first opened. Rows not built yet keep their start value in
    `row_start`, so `collect` always sees the whole task. The start values (a job to clone or edit, a
    preset), the preset list and the review's checks (preflight, VRAM estimate, GPUs) are read in
    worker threads.
    """

    DEFAULT_CSS = """
    WizardScreen { layout: vertical; }
    WizardScreen #wizard-title { height: 1; background: $primary; color: $text; padding: 0 1; }
    WizardScreen #wizard-steps { height: 1; padding: 0 1; color: $text-muted; }
    WizardScreen #wizard-body { height: 1fr; }
    WizardScreen #wizard-pages { height: 1fr; }
    WizardScreen .page { height: 1fr; padding: 0 1; }
    WizardScreen #wizard-help {
        height: 6; border-top: solid $primary; padding: 0 1; color: $text;
    }
    WizardScreen.-wide #wizard-body { layout: horizontal; }
    WizardScreen.-wide #wizard-help { height: 1fr; width: 44; border-top: none; border-left: solid $primary; }
    WizardScreen #wizard-nav { height: 1; padding: 0 1; }
    WizardScreen #wizard-nav Button { margin-right: 1; }
    WizardScreen #wizard-status {
        width: 1fr; height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    WizardScreen #wizard-status.-error { color: $error; }
    WizardScreen .section { height: 1; margin-top: 1; text-style: bold; color: $accent; }
    WizardScreen .note { height: auto; color: $text-muted; }
    WizardScreen #advanced-area-title { height: auto; }
    WizardScreen Collapsible.advanced { border-top: none; padding: 0; background: $surface; }
    WizardScreen Collapsible.advanced Contents { padding: 0 0 1 2; }
    WizardScreen Collapsible.advanced CollapsibleTitle { padding: 0 1 0 0; }
    WizardScreen #preset-bar { height: 1; margin-bottom: 1; }
    WizardScreen #preset-bar Static { width: auto; padding: 0 1 0 0; }
    WizardScreen #preset-select { width: 32; }
    WizardScreen #preview-bar { height: 1; margin-top: 1; }
    WizardScreen #preview {
        display: none; height: auto; color: $text-muted; border-left: solid $primary-darken-2;
    }
    WizardScreen #review-actions { height: 1; margin-top: 1; }
    WizardScreen #review-actions Button { margin-right: 2; }
    WizardScreen .review-block { height: auto; margin-top: 1; }
    WizardScreen #review-errors { color: $error; }
    WizardScreen #review-warnings { color: $warning; }
    WizardScreen .loading { height: 3; }
    """

    BINDINGS = [
        *FORM_BINDINGS,
        Binding("ctrl+n", "next", "Next", priority=True),
        Binding("ctrl+p", "back", "Back", priority=True),
        Binding("ctrl+r", "preview", "Preview"),
        Binding("ctrl+s", "submit", "Submit", show=False),
        Binding("escape", "cancel", "Cancel"),
    ]
    HELD_ACTIONS = frozenset({"next", "back"})

    def __init__(
        self,
        *,
        edit_job_id: int | None = None,
        clone_job_id: int | None = None,
        preset: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        """Start empty, from ``preset`` ("ns/name"), from ``values``, or from a job to clone or edit."""
        super().__init__()
        self.edit_job_id = edit_job_id
        self.clone_job_id = clone_job_id
        self.start_preset = preset
        self.start_values = dict(values or {})
        self.base_values: dict[str, Any] = {}
        self.row_start: dict[str, Any] = {}
        self.preset_ref: str | None = None
        # The presets offered on step 3, read when that step is first built.
        self.preset_refs: list[str] | None = None
        self.page = 0
        self.lang = "en"
        self.ready = False
        self._built: set[str] = set()
        # Built rows by key: looking a row up in the DOM on every read made each `collect` cost a
        # query per key of the task.
        self._rows: dict[str, FieldEditor] = {}
        self._suggested_lr: float | None = None
        self._lr_basis: tuple[Any, Any] | None = None
        self._help_for: FieldEditor | None = None
        self._advanced_keys = {
            key for key, (_info, place) in wizard_rows().items() if place in ADVANCED_GROUPS
        }
        self._snapshot: dict[str, Any] | None = None
        self._blocked: list[str] = []
        self._review_serial = 0
        self._storing = False  # a submit is being written (see _store)
        self.last_report: Any = None

    # ------------------------------------------------------------------ building

    def _reads_at_start(self) -> bool:
        """Whether the start values come from disk (a job to clone or edit, a preset)."""
        return self.edit_job_id is not None or self.clone_job_id is not None or bool(self.start_preset)

    def _read_start(self) -> tuple[dict[str, Any], str | None]:
        """Values the rows start with: job (clone/edit) < preset < explicit values.

        Runs in the start worker (it reads SQLite and preset files).
        """
        values: dict[str, Any] = {}
        preset_ref: str | None = None
        job_id = self.edit_job_id if self.edit_job_id is not None else self.clone_job_id
        if job_id is not None:
            from tunequeue.jobqueue import db as jobdb
            from tunequeue.jobqueue import jobs

            database = jobdb.open_db()
            try:
                job = jobs.get(database, job_id)
            finally:
                database.conn.close()
            values.update(yaml.safe_load(job.task_yaml) or {})
            if self.clone_job_id is not None and values.get("task_name"):
                values["task_name"] = f"{values['task_name']}-copy"[:63]
            preset_ref = values.get("preset_ref")
        if self.start_preset:
            values.update(self._preset_values(self.start_preset))
            preset_ref = self.start_preset
        values.update(self.start_values)
        return values, preset_ref

    def compose(self) -> ComposeResult:
        """Title, step strip, step 1's page, help pane, navigation, footer.

        The other pages are created when first shown; step 1 is filled at once when its start values
        need no reading (a new task), else a loading indicator stands there until the worker read them.
        """
        self.lang = getattr(self.app, "lang", "en")
        reads = self._reads_at_start()
        if not reads:
            self._set_start(dict(self.start_values), None)
            self._built.add("basic")
        yield Static("", id="wizard-title")
        yield Static("", id="wizard-steps")
        with (
            Horizontal(id="wizard-body"),
            ContentSwitcher(initial="page-basic", id="wizard-pages"),
            VerticalScroll(id="page-basic", classes="page"),
        ):
            if reads:
                yield LoadingIndicator(id="wizard-loading", classes="loading")
            else:
                rows = self._page_widgets("basic")
                self._register_rows(rows)
                yield from rows
        yield Static("", id="wizard-help")
        with Horizontal(id="wizard-nav"):
            yield Button("", id="back", compact=True)
            yield Button("", id="next", variant="primary", compact=True)
            yield Static("", id="wizard-status", markup=False)
        yield KeyFooter()

    def _row(self, info: Any) -> FieldEditor:
        return FieldEditor(info, self.row_start.get(info.key), lang=self.lang)

    def _review_widgets(self) -> list[Widget]:
        """The review page: loading indicator, errors, warnings, estimate, the three ways out, the YAML."""
        return [
            LoadingIndicator(id="review-loading", classes="loading"),
            Static("", id="review-errors", classes="review-block", markup=False),
            Static("", id="review-warnings", classes="review-block", markup=False),
            Static("", id="review-estimate", classes="review-block", markup=False),
            Horizontal(
                *(
                    Button(label, id=button_id, variant="success" if button_id == "submit" else "default",
                           compact=True)
                    for button_id, label in self._review_button_labels().items()
                ),
                id="review-actions",
            ),
            Static("", id="review-yaml", classes="review-block", markup=False),
        ]

    def _review_button_labels(self) -> dict[str, str]:
        """The review's three ways out, by button id, in the current language."""
        return {
            "submit": self.t("save_changes" if self.edit_job_id else "submit"),
            "save-preset": self.t("save_preset"),
            "save-yaml": self.t("save_yaml"),
        }

    def _page_widgets(self, step: str) -> list[Widget]:
        """The widgets of one step's page, in order (rows, notes, preset bar, preview, advanced area)."""
        widgets: list[Widget] = []
        if step == "review":
            return self._review_widgets()
        if step == "hyper":
            refs = self.preset_refs or []
            select: Select[str] = Select(
                [(ref, ref) for ref in refs],
                value=self.preset_ref if self.preset_ref in refs else Select.NULL,
                allow_blank=True,
                prompt=self.t("preset.none"),
                compact=True,
                id="preset-select",
            )
            widgets.append(Horizontal(Static(self.t("preset"), id="preset-label"), select, id="preset-bar"))
        lora_block_started = False
        for info in params_of_group(step):
            if step == "lora" and not _is_lora_only(info.key) and not lora_block_started:
                widgets.append(Static("", id="lora-hidden-note", classes="note"))
                widgets.append(Static(self.t("advanced"), id="advanced-title", classes="section"))
                lora_block_started = True
            widgets.append(self._row(info))
        if step == "other":
            widgets.append(Static("", id="advanced-area-title", classes="section"))
            for group_id in ADVANCED_GROUPS:
                widgets.append(Collapsible(
                    title=task_spec.group_title(group_id, self.lang), collapsed=True,
                    id=f"advanced-{group_id}", classes="advanced",
                ))
        if step == "basic":
            widgets.append(Horizontal(
                Button(self.t("preview") + " ^r", id="preview-button", compact=True), id="preview-bar"
            ))
            widgets.append(Static("", id="preview", markup=False))
        return widgets

    async def build_page(self, step: str) -> None:
        """Create the page of ``step`` with its rows (once; or the review's blocks); rows start from
        `row_start`."""
        if step in self._built or step not in PAGES:
            return
        self._built.add(step)
        if step == "hyper" and self.preset_refs is None:
            self.preset_refs = await self._read_preset_refs()
        widgets = self._page_widgets(step)
        await (await self._page(step)).mount_all(widgets)
        self._register_rows(widgets)
        if step == "lora":
            self._update_lora_visibility()
        if step == "other":
            self._update_advanced_visibility()

    async def _page(self, name: str) -> Widget:
        """The page container of ``name``, created (empty, hidden) when it does not exist yet."""
        pages = self.query_one(ContentSwitcher)
        found = list(pages.query_children(f"#page-{name}"))
        if found:
            return found[0]
        page = VerticalScroll(id=f"page-{name}", classes="page")
        await pages.add_content(page)
        return page

    async def build_section(self, group_id: str) -> None:
        """Create the rows of one advanced section of step 5 (once; builds step 5 first if needed)."""
        await self.build_page("other")
        if f"section:{group_id}" in self._built:
            return
        self._built.add(f"section:{group_id}")
        section = self.query_one(f"#advanced-{group_id}", Collapsible)
        rows = [self._row(info) for info in params_of_group(group_id)]
        await section.query_one(Collapsible.Contents).mount_all(rows)
        self._register_rows(rows)
        self._update_advanced_visibility()

    def _register_rows(self, widgets: list[Widget]) -> None:
        """Remember the rows just mounted, so reading a value needs no DOM query."""
        for widget in widgets:
            if isinstance(widget, FieldEditor):
                self._rows[widget.key] = widget

    async def on_collapsible_expanded(self, event: Collapsible.Expanded) -> None:
        """An advanced section was opened: build its rows now."""
        section_id = event.collapsible.id or ""
        if section_id.startswith("advanced-"):
            await self.build_section(section_id.removeprefix("advanced-"))

    def on_mount(self) -> None:
        """Show the frame and step 1, or read the start values of a job or preset in a worker first
        (a loading indicator shows meanwhile)."""
        self.render_language(rows=False)
        if self._reads_at_start():
            self._load_start()
        else:
            self._start_ready("")

    @work(thread=True, exclusive=True, exit_on_error=False, group="start")
    def _load_start(self) -> None:
        try:
            values, preset_ref = self._read_start()
        except Exception as exc:  # noqa: BLE001 - any failure is shown and the wizard starts empty
            self.post_message(StartLoaded(dict(self.start_values), None, one_line(exc)))
            return
        self.post_message(StartLoaded(values, preset_ref, ""))

    async def _read_preset_refs(self) -> list[str]:
        """The presets offered on step 3, read in a worker thread (they are files)."""
        worker = self.run_worker(_preset_refs, thread=True, exit_on_error=False, group="presets")
        try:
            return await worker.wait()
        except (WorkerFailed, WorkerCancelled):
            return []

    def _set_start(self, values: dict[str, Any], preset_ref: str | None) -> None:
        """Take the values the rows start with."""
        self.base_values = dict(values)
        self.row_start = {key: _start_value(info, values) for key, (info, _) in wizard_rows().items()}
        self.preset_ref = preset_ref

    async def on_start_loaded(self, message: StartLoaded) -> None:
        """Fill in the start values, build step 1 and hand it the keys typed so far."""
        self._set_start(message.values, message.preset_ref)
        await self.build_page("basic")
        for loading in self.query("#wizard-loading"):
            await loading.remove()
        self._start_ready(message.error)

    def _start_ready(self, error: str) -> None:
        """Step 1 is built: remember the start state, show it and hand it the keys typed so far."""
        self._suggested_lr = self._current_lr()
        self._lr_basis = self._method_and_stage()
        self._snapshot = self.collect()
        self.ready = True
        self.show_page(0)
        if error:
            self.set_status(tr("form.load_failed", self.lang, error=error), error=True)
        self.release_keys(self._first_focus())

    def on_resize(self) -> None:
        """Help pane beside the form on wide terminals, under it on narrow ones."""
        self.set_class(self.size.width >= 120, "-wide")

    # ------------------------------------------------------------------ language

    def t(self, key: str, **fmt: Any) -> str:
        """A wizard string in the current language."""
        return wizard_text(key, self.lang, **fmt)

    def binding_description(self, binding: Any, lang: str) -> str:
        """Footer texts of the wizard's own keys come from its ``wizard.bind.*`` texts."""
        if i18n.has_text(f"wizard.bind.{binding.action}"):
            return wizard_text(f"bind.{binding.action}", lang)
        return super().binding_description(binding, lang)

    def render_language(self, *, rows: bool = True) -> None:
        """(Re)render every label of the screen in ``self.lang`` (``rows``: the built rows too; rows
        just built are already in it)."""
        if rows:
            for editor in self._rows.values():
                editor.set_language(self.lang)
        self.query_one("#back", Button).label = "◀ " + self.t("back") + " ^p"
        for button_id, label in self._review_button_labels().items():
            for button in self.query(f"#{button_id}").results(Button):
                button.label = label
        for button in self.query("#preview-button").results(Button):
            button.label = self.t("preview") + " ^r"
        for label in self.query("#preset-label").results(Static):
            label.update(self.t("preset"))
        for select in self.query("#preset-select").results(Select):
            select.prompt = self.t("preset.none")
        for title in self.query("#advanced-title").results(Static):
            title.update(self.t("advanced"))
        for section in self.query(Collapsible).results(Collapsible):
            if section.id and section.id.startswith("advanced-"):
                section.title = task_spec.group_title(section.id.removeprefix("advanced-"), self.lang)
        self.query_one("#wizard-help", Static).update(self.t("help.start"))
        self.refresh_bindings()
        self._update_lora_visibility()
        self._update_advanced_visibility()
        self.show_page(self.page)
        if self._help_for is not None and PAGES[self.page] != "review":
            self.query_one("#wizard-help", Static).update(field_help(self._help_for.info, self.lang))

    def on_language_changed(self, message: Message) -> None:
        """The app switched language: re-render."""
        self.lang = getattr(message, "lang", self.lang)
        self.render_language()
        if PAGES[self.page] == "review":
            self.refresh_review()

    # ------------------------------------------------------------------ navigation

    def show_page(self, index: int) -> None:
        """Switch to page ``index`` (0–4 steps, 5 review) and update title, strip and buttons.

        The page must exist: `goto_page` creates and builds it.
        """
        self.page = index
        name = PAGES[index]
        self.query_one(ContentSwitcher).current = f"page-{name}"
        if self.edit_job_id is not None:
            title = self.t("title.edit", id=self.edit_job_id)
        elif self.clone_job_id is not None:
            title = self.t("title.clone", id=self.clone_job_id)
        else:
            title = self.t("title.new")
        self.query_one("#wizard-title", Static).update(
            f"{title} · {index + 1}/{len(PAGES)} {self.t('step.' + name)}"
        )
        strip = []
        for i, page in enumerate(PAGES):
            label = f"{i + 1} {self.t('short.' + page)}"
            strip.append(f"[b reverse] {label} [/]" if i == index else f" {label} ")
        self.query_one("#wizard-steps", Static).update("›".join(strip))
        self.query_one("#back", Button).disabled = index == 0
        next_button = self.query_one("#next", Button)
        next_button.disabled = index == len(PAGES) - 1
        next_button.label = self.t("next") + " ▶ ^n"
        if name == "review":
            self.query_one("#wizard-help", Static).update(self.t("help.review"))
        self.set_status("")

    async def goto_page(self, index: int) -> None:
        """Show page ``index``, start the review's checks there, focus its first field.

        The first time, the page shows a loading indicator, painted before its rows are built.
        """
        name = PAGES[index]
        if name in self._built:
            self.show_page(index)
            self._page_shown(index)
            return
        page = await self._page(name)
        await page.mount(LoadingIndicator(classes="loading page-loading"))
        self.show_page(index)
        self.call_after_refresh(self._build_shown_page, index)

    async def _build_shown_page(self, index: int) -> None:
        """Build page ``index`` (shown with its loading indicator), then hand it the keys."""
        await self.build_page(PAGES[index])
        await self.query(".page-loading").remove()
        if self.page == index:
            self._page_shown(index)

    def _page_shown(self, index: int) -> None:
        if PAGES[index] == "review":
            self.refresh_review()
        self.release_keys(self._first_focus())

    def _first_focus(self) -> Widget | None:
        """The first shown field of the page, else its first button."""
        page = self.query_one(f"#page-{PAGES[self.page]}")
        for editor in page.query(FieldEditor):
            if editor.display:
                return editor.editor
        for button in page.query(Button):
            if button.display and not button.disabled:
                return button
        return None

    def set_status(self, text: str, *, error: bool = False) -> None:
        """One line beside the navigation buttons."""
        if not error:
            self._blocked = []
        status = self.query_one("#wizard-status", Static)
        status.update(text)
        status.set_class(error, "-error")

    def action_next(self) -> None:
        """Check this step (after the keys typed into it); go on only when it has no error."""
        if self.page >= len(PAGES) - 1 or not self.ready:
            return
        self.after_pending_keys(self._next_now)
        self.hold_keys()

    async def _next_now(self) -> None:
        bad = await self.check_step(PAGES[self.page])
        if bad:
            self._block(bad)
            editor = await self._reveal(bad[0])
            self.release_keys(editor.editor if editor is not None else self._first_focus())
            return
        await self.goto_page(self.page + 1)

    def _block(self, bad: list[str]) -> None:
        self.set_status(self.t("blocked", keys=", ".join(bad)), error=True)
        self._blocked = list(bad)

    def _editor(self, key: str) -> FieldEditor | None:
        """The row of ``key`` if it is built."""
        return self._rows.get(key)

    async def _reveal(self, key: str) -> FieldEditor | None:
        """Build and open the section holding ``key`` (if any) and return its row."""
        place = wizard_rows()[key][1] if key in wizard_rows() else None
        if place in ADVANCED_GROUPS:
            await self.build_section(place)
            self.query_one(f"#advanced-{place}", Collapsible).collapsed = False
        return self._editor(key)

    def action_back(self) -> None:
        """Previous step (no checks)."""
        if self.page > 0 and self.ready:
            self.after_pending_keys(self._back_now)
            self.hold_keys()

    async def _back_now(self) -> None:
        await self.goto_page(self.page - 1)

    def action_cancel(self) -> None:
        """Leave; when something was changed, ask first."""
        changed = self._snapshot is not None and self.collect() != self._snapshot
        leave_unless_changed(self, changed, tr("form.discard", self.lang))

    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_back()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field moves to the next one."""
        event.stop()
        self.focus_next()

    # ------------------------------------------------------------------ values and checks

    def visible_editors(self, step: str | None = None) -> list[FieldEditor]:
        """Built rows that take part in the task (hidden LoRA rows do not), optionally of one step."""
        pages = [step] if step else STEPS
        editors = []
        for page in pages:
            for built in self.query(f"#page-{page}"):
                editors.extend(e for e in built.query(FieldEditor) if e.display)
        return editors

    def row_value(self, key: str) -> Any:
        """The value of row ``key``: its editor's when built (may raise ValueError), else its start value."""
        editor = self._editor(key)
        if editor is not None:
            return editor.read()
        return self.row_start.get(key)

    def set_row(self, key: str, value: Any) -> None:
        """Set row ``key`` to ``value`` (the editor when built, else the value it will start with)."""
        editor = self._editor(key)
        if editor is not None:
            editor.write(value)
        else:
            self.row_start[key] = value

    def collect(self) -> dict[str, Any]:
        """The task as a mapping: carried-over keys plus every row that takes part and parses.

        Rows of the Advanced area count only when they differ from the default or the task came with
        the key, so the stored YAML does not spell out every advanced default.
        """
        hidden = self._hidden_keys()
        values = {k: v for k, v in self.base_values.items() if k not in hidden}
        for key, (info, _place) in wizard_rows().items():
            if key in hidden:
                continue
            try:
                value = self.row_value(key)
            except ValueError:
                values.pop(key, None)
                continue
            if key in self._advanced_keys and key not in self.base_values and value == info.default:
                continue
            values[key] = value
        for key in [k for k, v in values.items() if v is None]:
            del values[key]
        if self.preset_ref:
            values["preset_ref"] = self.preset_ref
        return values

    def _hidden_keys(self) -> set[str]:
        """Keys of rows that take no part in the task: LoRA rows of a non-LoRA task, advanced groups
        that do not apply to its method and stage."""
        method, stage = self._raw_method_and_stage()
        shown = advanced_groups_for(method, stage)
        hidden = set()
        for key, (_info, place) in wizard_rows().items():
            if (place == "lora" and _is_lora_only(key) and method != "lora") or (
                place in ADVANCED_GROUPS and place not in shown
            ):
                hidden.add(key)
        return hidden

    def _raw_method_and_stage(self) -> tuple[Any, Any]:
        try:
            return self.row_value("finetuning_type"), self.row_value("stage")
        except ValueError:
            return None, None

    async def check_step(self, step: str) -> list[str]:
        """Check the rows of ``step`` and the model's rules on them; return keys with errors.

        On step 5, advanced sections that hold a value the task came with are built first, and a rule
        broken by a row of an unopened section builds that section, so every error has its row.
        """
        if step == "other":
            method, stage = self._raw_method_and_stage()
            for group_id in advanced_groups_for(method, stage):
                if any(info.key in self.base_values for info in params_of_group(group_id)):
                    await self.build_section(group_id)
        editors = {e.key: e for e in self.visible_editors(step)}
        bad = [key for key, editor in editors.items() if not editor.check(strict=True)]
        report = _check(self.collect(), partial=True)
        hidden = self._hidden_keys()
        for problem in report.errors:
            key = problem.key
            if step == "other" and key not in editors and key in self._advanced_keys and key not in hidden:
                await self.build_section(wizard_rows()[key][1])
                editors = {e.key: e for e in self.visible_editors(step)}
            if key in editors:
                editors[key].set_problem(error=problem.message(self.lang))
                if key not in bad:
                    bad.append(key)
        if "dataset" in editors and "dataset" not in bad:
            # dataset has no default, yet every task but an export-only one needs it: the whole task tells
            whole = _check(self.collect(), partial=False)
            if whole.errors_for("dataset"):
                editors["dataset"].set_problem(error=word("need_value", self.lang))
                bad.append("dataset")
        return bad

    def _method_and_stage(self) -> tuple[Any, Any]:
        values = self.collect()
        return values.get("finetuning_type", "lora"), values.get("stage", "sft")

    def _current_lr(self) -> float | None:
        try:
            return self.row_value("learning_rate")
        except ValueError:
            return None

    def on_field_editor_focused(self, message: FieldEditor.Focused) -> None:
        """Explain the focused field in the help pane."""
        self._help_for = message.editor
        self.query_one("#wizard-help", Static).update(field_help(message.editor.info, self.lang))

    def on_field_editor_changed(self, message: FieldEditor.Changed) -> None:
        """Follow method/stage changes (LoRA rows, suggested learning rate); clear a fixed block."""
        if message.editor.key in ("finetuning_type", "stage"):
            self._update_lora_visibility()
            self._update_advanced_visibility()
            self._resuggest_learning_rate()
        if self._blocked and message.editor.key in self._blocked:
            still = [key for key in self._blocked if (row := self._editor(key)) is not None and row.error]
            if still:
                self._block(still)
            else:
                self.set_status("")

    def _update_lora_visibility(self) -> None:
        if "lora" not in self._built:
            return
        method = self._raw_method_and_stage()[0]
        is_lora = method == "lora"
        for editor in self.query_one("#page-lora").query(FieldEditor):
            if _is_lora_only(editor.key):
                editor.display = is_lora
        note = self.query_one("#lora-hidden-note", Static)
        note.display = not is_lora
        note.update(self.t("lora.hidden", ft=method))

    def _update_advanced_visibility(self) -> None:
        """Show the advanced sections that apply to the chosen method and stage; hide (and drop) the rest."""
        if "other" not in self._built:
            return
        method, stage = self._raw_method_and_stage()
        shown = advanced_groups_for(method, stage)
        for group_id in ADVANCED_GROUPS:
            section = self.query_one(f"#advanced-{group_id}", Collapsible)
            section.display = group_id in shown
            # Hidden rows take no part in the task, as the LoRA rows of a non-LoRA task.
            for editor in section.query(FieldEditor):
                editor.display = group_id in shown
        self.query_one("#advanced-area-title", Static).update(self.t("advanced.area", ft=method, stage=stage))

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        """A section title got focus: say what the section holds in the help pane."""
        # A section's title is its only direct child that takes focus; rows sit inside its Contents.
        section = event.widget.parent
        if not isinstance(section, Collapsible):
            return
        section_id = section.id or ""
        if not section_id.startswith("advanced-"):
            return
        group_id = section_id.removeprefix("advanced-")
        keys = ", ".join(info.key for info in params_of_group(group_id))
        self.query_one("#wizard-help", Static).update(
            f"[b]{task_spec.group_title(group_id, self.lang)}[/b]\n" + self.t("advanced.section", keys=keys)
        )

    def _resuggest_learning_rate(self) -> None:
        """An untouched learning rate follows the method and stage (1e-4 LoRA, 1e-5 full, 5e-6 dpo/kto)."""
        values = self.collect()
        basis = (values.get("finetuning_type", "lora"), values.get("stage", "sft"))
        if basis == self._lr_basis:
            return
        try:
            from tunequeue.core.rules import suggested_learning_rate
        except ImportError:
            return
        self._lr_basis = basis
        current = self._current_lr()
        if current is not None and self._suggested_lr is not None and current != self._suggested_lr:
            return
        suggestion = suggested_learning_rate(
            values.get("finetuning_type", "lora"), values.get("stage", "sft")
        )
        self._suggested_lr = suggestion
        self.set_row("learning_rate", suggestion)

    # ------------------------------------------------------------------ presets

    def _preset_values(self, ref: str) -> dict[str, Any]:
        from tunequeue.core import presets

        preset = presets.get_preset(ref)
        values = dict(presets.apply_preset(preset, {}))
        values.pop("preset_ref", None)
        return values

    @on(Select.Changed, "#preset-select")
    def _preset_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is Select.NULL or not isinstance(event.value, str) or event.value == self.preset_ref:
            return
        self.apply_preset(event.value)

    def apply_preset(self, ref: str) -> None:
        """Fill the rows with the preset's values (they stay editable) and remember the reference."""
        try:
            values = self._preset_values(ref)
        except (UserError, ImportError) as exc:
            self.set_status(str(exc), error=True)
            return
        rows = wizard_rows()
        for key, value in values.items():
            if key in rows:
                self.set_row(key, value)
            else:
                self.base_values[key] = value
        self.preset_ref = ref
        self._update_lora_visibility()
        self._update_advanced_visibility()
        self._suggested_lr = self._current_lr()
        self._lr_basis = self._method_and_stage()
        self.set_status(self.t("preset.applied", ref=ref))

    # ------------------------------------------------------------------ review and exits

    def refresh_review(self, then: str | None = None) -> None:
        """Check the whole task in a worker (preflight, VRAM estimate, GPUs); the review shows it when
        ready, and ``then`` ("submit") follows once it passed."""
        self._review_serial += 1
        self.query_one("#review-loading").display = True
        self.query_one("#review-estimate", Static).update(tr("review.checking", self.lang))
        self.query_one("#submit", Button).disabled = True
        self._run_review(self.collect(), self.lang, self._review_serial, then)

    @work(thread=True, exclusive=True, exit_on_error=False, group="review")
    def _run_review(self, values: dict[str, Any], lang: str, serial: int, then: str | None) -> None:
        try:
            from tunequeue.core.validate import preflight, steps_line

            checked = preflight(values)
            report = checked.report
            estimate_text = _estimate_text(report, lang)
            steps = steps_line(checked, on_gpu=_has_gpus(), lang=lang)
        except Exception as exc:  # noqa: BLE001 - shown in the review instead of the estimate
            self.post_message(ReviewReady(serial, None, "", one_line(exc), None))
            return
        estimate = estimate_text + ("\n" + steps if steps and estimate_text else steps or "")
        self.post_message(ReviewReady(serial, report, estimate, "", then))

    def on_review_ready(self, message: ReviewReady) -> None:
        """Show the checked task's YAML, errors, warnings and estimate; go on with what waited for it."""
        if message.serial != self._review_serial:
            return
        self.query_one("#review-loading").display = False
        if message.report is None:
            self.query_one("#review-estimate", Static).update(message.failure)
            self.set_status(message.failure, error=True)
            return
        report = message.report
        self.last_report = report
        errors = report.errors
        warnings = report.warnings
        error_box = self.query_one("#review-errors", Static)
        error_box.display = bool(errors)
        error_box.update(
            self.t("review.errors") + "\n" + "\n".join(_problem_line(p, self.lang) for p in errors)
        )
        self.query_one("#review-warnings", Static).update(
            self.t("review.warnings") + "\n" + "\n".join(_problem_line(p, self.lang) for p in warnings)
            if warnings
            else self.t("review.no_warnings")
        )
        self.query_one("#review-yaml", Static).update(
            self.t("review.yaml") + "\n" + dump_yaml(self.task_mapping(report, self.collect()))
        )
        self.query_one("#review-estimate", Static).update(message.estimate)
        self.query_one("#submit", Button).disabled = bool(errors)
        if message.then == "submit":
            self._submit(report)

    def task_mapping(self, report: Any, values: dict[str, Any]) -> dict[str, Any]:
        """The task as it will be stored: the resolved spec's YAML mapping, or the raw values on errors."""
        if report.spec is not None:
            return report.spec.to_yaml_dict()
        return values

    @on(Button.Pressed, "#submit")
    def action_submit(self) -> None:
        """Check the task again, then insert the job (or update the queued job being edited)."""
        if PAGES[self.page] != "review" or not self.ready or self._storing:
            return
        self.refresh_review(then="submit")

    def _submit(self, report: Any) -> None:
        """Write the checked task (or update the job being edited) in a worker; dismiss with its id.

        Writing may wait on the queue's lock or copy a registered dataset: the review keeps its
        loading indicator and the submit button stays off until the worker answers.
        """
        if report.errors or report.spec is None:
            first = report.errors[0].message(self.lang) if report.errors else ""
            self.set_status(first, error=True)
            return
        self._storing = True
        self.query_one("#review-loading").display = True
        self.query_one("#submit", Button).disabled = True
        self._store(report.spec, self.edit_job_id, self.preset_ref)

    @work(thread=True, exclusive=True, exit_on_error=False, group="store")
    def _store(self, spec: Any, edit_job_id: int | None, preset_ref: str | None) -> None:
        from tunequeue.jobqueue import db as jobdb
        from tunequeue.jobqueue import submission

        try:
            database = jobdb.open_db()
            try:
                if edit_job_id is not None:
                    job = submission.update_task(database, edit_job_id, spec, preset_ref=preset_ref)
                else:
                    job = submission.submit_task(database, spec, preset_ref=preset_ref)
            finally:
                database.conn.close()
        except UserError as exc:
            self.post_message(TaskStored(None, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a locked or damaged queue: one line, the task stays
            self.post_message(TaskStored(None, one_line(exc)))
            return
        self.post_message(TaskStored(job.id))

    def on_task_stored(self, message: TaskStored) -> None:
        """Leave with the job's id, or say why it was not written and keep every value."""
        self._storing = False
        if message.job_id is None:
            self.query_one("#review-loading").display = False
            self.query_one("#submit", Button).disabled = False
            self.set_status(message.failure, error=True)
            return
        done = "updated" if self.edit_job_id is not None else "submitted"
        # The screen underneath (the queue) announces the job; the message is kept for the log.
        self.log(self.t(done, id=message.job_id))
        self.dismiss(message.job_id)

    @on(Button.Pressed, "#save-preset")
    def _save_preset_pressed(self) -> None:
        from tunequeue.tui.screens.presets import preset_ref_problem

        values = self.collect()
        initial = self.preset_ref if self.preset_ref and not self.preset_ref.startswith("default/") else ""
        initial = initial or f"{values.get('namespace', 'default')}/{values.get('task_name', '')}"
        lang = self.lang
        self.app.push_screen(
            TextPrompt(self.t("prompt.preset"), initial, check=lambda text: preset_ref_problem(text, lang)),
            self._save_preset,
        )

    def _save_preset(self, ref: str | None) -> None:
        if not ref:
            return
        from tunequeue.core import presets, spec

        values = self.collect()
        allowed = presets.preset_keys()
        preset_values = {
            key: value
            for key, value in values.items()
            if key in allowed and value != spec.param_info(key).default
        }
        try:
            saved = presets.create_preset(
                ref,
                values=preset_values,
                stage=values.get("stage", "sft"),
                finetuning_type=values.get("finetuning_type", "lora"),
            )
        except UserError as exc:
            self.set_status(str(exc), error=True)
            return
        self.set_status(self.t("saved.preset", ref=saved.ref))
        self.app.notify(self.t("saved.preset", ref=saved.ref))

    @on(Button.Pressed, "#save-yaml")
    def _save_yaml_pressed(self) -> None:
        name = self.collect().get("task_name") or "task"
        self.app.push_screen(TextPrompt(self.t("prompt.yaml"), f"{name}.yaml"), self._save_yaml)

    def _save_yaml(self, path_text: str | None) -> None:
        if not path_text:
            return
        values = self.collect()
        report = _check(values, partial=False)
        path = Path(path_text).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dump_yaml(self.task_mapping(report, values)), encoding="utf-8")
        except OSError as exc:
            self.set_status(str(exc), error=True)
            return
        self.set_status(self.t("saved.yaml", path=str(path)))
        self.app.notify(self.t("saved.yaml", path=str(path)))


    # ------------------------------------------------------------------ dataset preview

    @on(Button.Pressed, "#preview-button")
    def action_preview(self) -> None:
        """Render the first example of the dataset with the chosen template (in a thread)."""
        values = self.collect()
        preview = self.query_one("#preview", Static)
        if not values.get("model_name_or_path") or not values.get("dataset"):
            preview.display = True
            preview.update(self.t("preview.need"))
            return
        preview.display = True
        preview.update(self.t("preview.loading"))
        self._render_preview(values, self.lang)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def _render_preview(self, values: dict[str, Any], lang: str) -> None:
        try:
            from tunequeue.tui.sidecar import preview_first_example

            text = preview_first_example(values)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message in the pane
            self.post_message(PreviewReady(wizard_text("preview.failed", lang, error=one_line(exc)), False))
            return
        header = wizard_text(
            "preview.title",
            lang,
            dataset=values["dataset"].split(",")[0].strip(),
            template=values.get("template") or "auto",
        )
        self.post_message(PreviewReady(header + "\n" + text, True))

    def on_preview_ready(self, message: PreviewReady) -> None:
        """Show the rendered example (or why it could not be rendered)."""
        preview = self.query_one("#preview", Static)
        preview.update(message.text)
        preview.scroll_visible()


def _estimate_text(report: Any, lang: str) -> str:
    """The review's VRAM estimate and the GPUs it fits on (reads the model config and NVML)."""
    if report.spec is None:
        return ""
    lines = []
    heading = wizard_text("review.estimate", lang)
    try:
        from tunequeue.core import estimate as estimate_mod

        model_config = estimate_mod.read_model_config(report.spec.model_name_or_path)
        result = estimate_mod.estimate_vram(report.spec, model_config)
    except (UserError, ImportError, OSError, ValueError, KeyError) as exc:
        return heading + ": " + wizard_text("review.no_estimate", lang, error=str(exc))
    lines.append(heading + ": " + wizard_text("review.per_gpu", lang, gib=result.total_gib))
    try:
        from tunequeue.gpus import read_gpus

        snapshot = read_gpus()
    except (ImportError, UserError, OSError) as exc:
        lines.append(wizard_text("review.no_gpus", lang, error=str(exc)))
        return "\n".join(lines)
    if snapshot.error and not snapshot.gpus:
        lines.append(wizard_text("review.no_gpus", lang, error=snapshot.error))
        return "\n".join(lines)
    fits = estimate_mod.fits_on(result, snapshot.gpus)
    simulated = wizard_text("review.simulated", lang) if snapshot.simulated else ""
    if fits:
        lines.append(wizard_text("review.fits", lang, gpus=", ".join(str(i) for i in fits)) + simulated)
    else:
        lines.append(wizard_text("review.fits_none", lang) + simulated)
    return "\n".join(lines)


def _has_gpus() -> bool:
    """Whether this machine shows a GPU (the review's time estimate assumes one then)."""
    try:
        from tunequeue.gpus import read_gpus

        return bool(read_gpus().gpus)
    except (ImportError, UserError, OSError):
        return False


def _preset_refs() -> list[str]:
    """Every preset as "namespace/name", sorted (empty when they cannot be read)."""
    try:
        from tunequeue.core import presets

        return sorted(p.ref for p in presets.list_presets())
    except (ImportError, UserError, OSError):
        return []


def _problem_line(problem: Any, lang: str) -> str:
    key = f"{problem.key}: " if problem.key else ""
    return f"• {key}{problem.message(lang)}"


def _check(values: dict[str, Any], *, partial: bool) -> Any:
    """The model's rules on ``values``."""
    from tunequeue.core.rules import check_task

    return check_task(values, partial=partial)
