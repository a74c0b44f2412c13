"""Keys that reach the right field, in the order they were typed, even in a burst.

Textual hands a key to the widget focused when the key is *dispatched*, while a focus change made by
a key (Tab, Enter in a form, Next) only happens once that key is *handled*. Keys arriving in one burst
(a paste, SSH latency, a busy app) could therefore land in a field that had already lost focus, and keys
typed while a screen is still building were dropped.

`OrderedKeys` is a screen mixin that fixes both:

* Tab, Shift+Tab and Enter in a form field are priority bindings, so focus moves at dispatch time,
  in order with the keys around them.
* `hold_keys` parks every key (and paste) that arrives while the screen is not ready (building a page,
  checking a step) and `release_keys` focuses the next field and replays them, oldest first, through
  the app as if they were typed then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import events
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input

# Actions that move focus or change the page: while keys are held they fall through to the screen and
# are parked with the rest, so they keep their place among the keys typed around them.
ORDERED_ACTIONS = frozenset({"next_field", "previous_field", "enter_field"})

FORM_BINDINGS = [
    Binding("tab", "next_field", "Next field", show=False, priority=True),
    Binding("shift+tab", "previous_field", "Previous field", show=False, priority=True),
    Binding("enter", "enter_field", "Next field", show=False, priority=True),
]


class OrderedKeys:
    """Screen mixin: ordered focus moves, and keys held while the screen is busy (see module doc)."""

    # Nothing takes focus by itself: the screen focuses its first field once it is ready.
    AUTO_FOCUS = ""
    # Further actions of the screen that must keep their place among held keys.
    HELD_ACTIONS: frozenset[str] = frozenset()

    _keys_held: bool = True
    _keys_replaying: bool = False

    def _held_events(self) -> list[events.Event]:
        held = self.__dict__.get("_held_key_events")
        if held is None:
            held = self.__dict__["_held_key_events"] = []
        return held

    @property
    def keys_held(self) -> bool:
        """Whether keys are being parked (the screen is building or checking)."""
        return self._keys_held

    def hold_keys(self) -> None:
        """Park keys from now on; focus leaves the form so no field takes them."""
        self._keys_held = True
        self._keys_replaying = False
        self.set_focus(None)

    def release_keys(self, target: Widget | None) -> None:
        """Focus ``target`` and replay the parked keys, once every key already dispatched is parked."""
        # A key the app dispatched before this call may still wait in a queue: first let the app hand
        # out what it holds, then let this screen park it, and only then move focus and replay.
        self.app.call_later(self.call_later, self._finish_release, target)

    def _finish_release(self, target: Widget | None) -> None:
        if target is not None and target.is_attached:
            # Focus is given through the app's queue, ahead of the replayed keys posted just after.
            target.focus()
        self._keys_replaying = True
        held = self._held_events()
        for event in held:
            self.app.post_message(event)
        held.clear()
        # Keys already on their way to this screen (dispatched while nothing had focus) are replayed
        # after these; the hold ends once they have passed.
        self.call_later(self._end_hold)

    def _end_hold(self) -> None:
        self._keys_held = False
        self._keys_replaying = False

    def after_pending_keys(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` on this screen once the focused widget handled the keys it already got."""
        focused = self.app.focused
        if focused is None:
            self.call_later(callback)
        else:
            focused.call_later(self.call_later, callback)

    def _park(self, event: events.Event, copy: events.Event) -> None:
        event.stop()
        event.prevent_default()
        if self._keys_replaying:
            self.app.post_message(copy)
        else:
            self._held_events().append(copy)

    def on_key(self, event: events.Key) -> None:
        """A key reached the screen while keys are held: park it."""
        if self._keys_held:
            self._park(event, events.Key(event.key, event.character))

    def on_paste(self, event: events.Paste) -> None:
        """A paste reached the screen while keys are held: park it."""
        if self._keys_held:
            self._park(event, events.Paste(event.text))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While keys are held, focus and page moves wait their turn (their key is parked)."""
        if self._keys_held and (action in ORDERED_ACTIONS or action in self.HELD_ACTIONS):
            return None
        if action == "enter_field":
            return self.is_form_input(self.app.focused)
        return True

    def is_form_input(self, widget: Widget | None) -> bool:
        """Whether Enter in ``widget`` moves to the next field (a text field of the form)."""
        return isinstance(widget, Input)

    def action_next_field(self) -> None:
        """Focus the next field (at dispatch time, so later keys follow the focus)."""
        self.focus_next()

    def action_previous_field(self) -> None:
        """Focus the previous field."""
        self.focus_previous()

    def action_enter_field(self) -> None:
        """Enter in a text field moves to the next field."""
        self.focus_next()
