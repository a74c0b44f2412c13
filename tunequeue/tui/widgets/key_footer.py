"""The footer every screen shows: Textual's own, rebuilt only when the keys it shows change.

Textual's footer rebuilds all its key widgets each time a screen's bindings may have changed: every
focus move, every `refresh_bindings`, and each rebuild restyles every key twice. Opening the wizard
rebuilt it four times while the keys it shows stayed the same.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

ShownKeys = tuple[tuple[str, str | None, str, bool, str], ...]


def shown_keys(screen: Screen) -> ShownKeys:
    """What a footer on `screen` would show now: key, its display, description, enabled and tooltip
    of each binding marked to be shown."""
    return tuple(
        (binding.key, binding.key_display, binding.description, enabled, tooltip)
        for _node, binding, enabled, tooltip in screen.active_bindings.values()
        if binding.show
    )


class KeyFooter(Footer):
    """A footer that rebuilds its keys only when the shown keys differ from the last rebuild's."""

    def __init__(self) -> None:
        super().__init__()
        self._last_shown: ShownKeys | None = None

    def bindings_changed(self, screen: Screen) -> None:
        """Rebuild as Textual's footer does, unless the keys shown would be the same as now."""
        shown = shown_keys(screen)
        if shown == self._last_shown:
            return
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            # the same conditions under which Textual's footer rebuilds
            self._last_shown = shown
        super().bindings_changed(screen)
