"""A key footer that rebuilds its keys only when what it shows changed.

Textual's `Footer` rebuilds all its key widgets after every bindings change: each focus move, each
screen that refreshes its bindings, each row of a form that mounts, even a screen being covered by
another. A form that builds a page and moves focus a few times paid several rebuilds of identical keys.
This footer coalesces the changes of one refresh into one look, rebuilds only when the keys, their
descriptions or their state differ from what it shows, and does not look while its screen is hidden
under another one (it looks again when the screen is back on top). Its keys are created in the
footer's style: a key created in the default style and switched once mounted restyled itself twice.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey


class Footer(TextualFooter):
    """`textual.widgets.Footer` without rebuilds that would show the same keys."""

    _shown: tuple[Any, ...] | None = None
    _look_pending = False

    def _keys_shown(self) -> tuple[Any, ...] | None:
        """What the footer would show now (None before the bindings are ready)."""
        if not self._bindings_ready:
            return None
        app = self.app
        keys = tuple(
            (binding.key, app.get_key_display(binding), binding.description, binding.action,
             binding.group, enabled, tooltip)
            for (_node, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show
        )
        return keys, self.show_command_palette and app.ENABLE_COMMAND_PALETTE, self.compact

    def compose(self) -> ComposeResult:
        """The keys of the screen's active bindings (remembered, to skip identical rebuilds)."""
        self._shown = self._keys_shown()
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                widget.set_reactive(FooterKey.compact, self.compact)
            yield widget

    def bindings_changed(self, screen: Screen) -> None:
        """The screen's bindings may have changed: look once after this refresh."""
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._look_pending:
            self._look_pending = True
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        self._look_pending = False
        # A screen under another one is not looked at: it refreshes its bindings when it is back on top.
        if self.is_attached and self.screen.is_current and self._keys_shown() != self._shown:
            await self.recompose()
