"""Text lookups of the screens: `tr` over the catalog in ``tunequeue/locales`` (see `tunequeue.core.i18n`).

`tr(key, lang)` returns a screen's text in the current language. Screens that mix in `TranslatedBindings`
show their key bindings (the footer) in the app's language from the ``bind.<action>`` texts;
`localize_bindings` redraws them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tunequeue.core.i18n import lookup


def tr(key: str, lang: str, default: str | None = None, **fmt: Any) -> str:
    """Return the `lang` text of `key` formatted with `fmt`; `default` (else the key) when the catalog
    lacks it."""
    text = lookup(key, lang)
    if text is None:
        text = default if default is not None else key
    return text.format(**fmt) if fmt else text


def state_label(state: str, lang: str) -> str:
    """The job state in `lang`."""
    return tr(f"state.{state}", lang, default=state)


class TranslatedBindings:
    """Screen mixin: the footer shows every key binding's description in the app's language.

    The descriptions come from `binding_description` (by default the catalog's ``bind.<action>``),
    applied to `active_bindings`, which is what the footer reads; the bindings themselves stay as
    declared.
    """

    def binding_description(self, binding: Any, lang: str) -> str:
        """The footer text of ``binding`` in ``lang``."""
        return tr(f"bind.{binding.action}", lang, binding.description)

    @property
    def active_bindings(self) -> dict[str, Any]:
        """The screen's active bindings with their descriptions in the app's language."""
        from textual.binding import ActiveBinding

        lang = getattr(self.app, "lang", "en")
        describe = self.binding_description
        return {
            key: ActiveBinding(
                active.node,
                dataclasses.replace(active.binding, description=describe(active.binding, lang)),
                active.enabled,
                active.tooltip,
            )
            for key, active in super().active_bindings.items()
        }


def localize_bindings(node: Any, lang: str) -> None:
    """Show the key bindings of a screen or the app in `lang` (the footer re-reads them).

    Screens translate their footer through `TranslatedBindings`; this only asks for a redraw.
    """
    node.refresh_bindings()
