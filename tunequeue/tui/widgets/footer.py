"""A key footer that rebuilds its keys only when what it shows changed.

Textual's `Footer` rebuilds all its key widgets after every bindings change: each focus move, each
screen that refreshes its bindings, each row of a form that mounts, even a screen being covered by
another. A form that builds a page and moves focus a few times paid several rebuilds of identical keys.
This footer coalesces the changes of one refresh into one look and rebuilds only when the keys or
their descriptions differ from what it shows: keys that were only enabled, disabled or taken away (a
form holding keys while it builds a page, a text field taking printable keys) are changed in place,
and a screen covered by another one is not looked at (it looks again when back on top). Its keys are
created in the footer's style: Textual's creates them in the default style, then restyles each one.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey, KeyGroup


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
        if not self.is_attached or not self.screen.is_current:
            return
        shown = self._keys_shown()
        if shown == self._shown:
            return
        if self._changed_in_place(shown):
            # The same keys or fewer, some enabled or disabled: a form holding keys while it builds a
            # page, a text field taking the keys of printable characters.
            enabled = {(key, action): on for (key, _d, _t, action, _g, on, _tip) in shown[0]}
            for footer_key in list(self.query(FooterKey)):
                where = (footer_key.key, footer_key.action)
                if where not in enabled:
                    await footer_key.remove()
                    continue
                # What `FooterKey.__init__` does with ``disabled`` (Textual 8.2).
                footer_key._disabled = not enabled[where]
                footer_key.set_class(footer_key._disabled, "-disabled")
            self._shown = shown
            return
        await self.recompose()

    def _changed_in_place(self, shown: tuple[Any, ...] | None) -> bool:
        """Whether ``shown`` is what is shown, less some keys, and with keys enabled or disabled.

        Only for a footer without key groups, where each shown action has one key.
        """
        old = self._shown
        if shown is None or old is None or shown[1:] != old[1:] or self.query(KeyGroup):
            return False
        old_keys = [key[:5] + key[6:] for key in old[0]]
        new_keys = [key[:5] + key[6:] for key in shown[0]]
        for keys in (old_keys, new_keys):
            actions = [key[3] for key in keys]
            if len(set(actions)) != len(actions):
                return False
        remaining = iter(old_keys)
        return all(key in remaining for key in new_keys)
