"""The list of keys opened with `?`: the current screen's own keys first, grouped, then Textual's.

The app's keys are the bindings declared by tunequeue's own classes (the screen under this list, and
the app: language, help, quit); they are grouped by what they act on (jobs, screens, the log, the
app) and labelled in the interface language. Below them come the generic keys Textual adds (moving
the cursor in a table, scrolling, focus), with Textual's own descriptions.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tunequeue.tui.text import tr

GROUPS: dict[str, tuple[str, ...]] = {
    "jobs": (
        "open_job",
        "new_task",
        "edit_job",
        "clone_job",
        "cancel_job",
        "retry_job",
        "delete_job",
        "toggle_hold",
        "priority_up",
        "priority_down",
        "job_info",
        "chat",
    ),
    "views": ("cycle_filter", "gpus", "presets", "back"),
    "log": ("toggle_wrap", "toggle_fold"),
    "app": ("start_runner", "switch_language", "show_help", "quit"),
}
GROUP_OF = {action: group for group, actions in GROUPS.items() for action in actions}
GROUP_ORDER = ("jobs", "views", "log", "screen", "app")


def _own_bindings(node: Any) -> list[Binding]:
    """Bindings declared by tunequeue's classes in `node`'s class hierarchy (most derived first)."""
    seen: set[tuple[str, str]] = set()
    found: list[Binding] = []
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("tunequeue."):
            continue
        for item in cls.__dict__.get("BINDINGS", []):
            binding = item if isinstance(item, Binding) else Binding(*item)
            if (binding.key, binding.action) not in seen:
                seen.add((binding.key, binding.action))
                found.append(binding)
    return found


def _action_name(binding: Binding) -> str:
    """The action without its namespace ("app.show_help" is "show_help")."""
    return binding.action.removeprefix("app.").removeprefix("screen.")


def _keys_of(app: Any, binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    return "/".join(app.get_key_display(Binding(key, binding.action)) for key in binding.key.split(","))


def app_key_groups(screen: Any, app: Any, lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(group title, [(keys, description)]) of the app's own keys on `screen`, in display order."""
    groups: dict[str, list[tuple[str, str]]] = {}
    seen: set[str] = set()
    for binding in [*_own_bindings(screen), *_own_bindings(app)]:
        action = _action_name(binding)
        if action in seen:
            continue
        seen.add(action)
        group = GROUP_OF.get(action, "screen")
        description = tr(f"bind.{action}", lang, binding.description or action)
        groups.setdefault(group, []).append((_keys_of(app, binding), description))
    return [(tr(f"help.group.{group}", lang), groups[group]) for group in GROUP_ORDER if group in groups]


def generic_keys(screen: Any, app: Any) -> list[tuple[str, str]]:
    """(keys, description) of the keys Textual's widgets add on `screen` (the focused widget's first)."""
    own = {binding.action for binding in [*_own_bindings(screen), *_own_bindings(app)]}
    own |= {_action_name(Binding("x", action)) for action in own}
    found: dict[str, str] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.action in own or binding.system or not binding.description:
            continue
        display = binding.key_display or app.get_key_display(Binding(key, binding.action))
        found.setdefault(binding.description, display)
    return [(keys, description) for description, keys in found.items()]


class HelpScreen(ModalScreen[None]):
    """Every key of the screen below, the app's first; Esc or `?` closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help-box {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    HelpScreen #help-body { height: auto; max-height: 100%; }
    HelpScreen #help-close { color: $text-muted; }
    """

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", key_display="esc")]

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target

    @property
    def lang(self) -> str:
        """The app's current language."""
        return getattr(self.app, "lang", "en")

    def compose(self) -> ComposeResult:
        """Title, the key tables in a scrollable body, how to close."""
        with Vertical(id="help-box"):
            yield Static(Text(tr("help.title", self.lang), style="bold"), id="help-title")
            with VerticalScroll(id="help-body"):
                yield Static(self._key_table(), id="help-keys")
            yield Static(tr("help.close", self.lang), markup=False, id="help-close")

    def _key_table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right", style="bold cyan", no_wrap=True)
        table.add_column()
        sections = app_key_groups(self.target, self.app, self.lang)
        generic = generic_keys(self.target, self.app)
        if generic:
            sections.append((tr("help.group.generic", self.lang), generic))
        for index, (title, keys) in enumerate(sections):
            if index:
                table.add_row("", "")
            table.add_row("", Text(title, style="bold underline"))
            for key, description in keys:
                table.add_row(key, description)
        return table

    def action_close(self) -> None:
        """Back to the screen below."""
        self.dismiss(None)
