"""Text lookups of the screens: `tr` over the catalog in ``tunequeue/locales`` (see `tunequeue.core.i18n`).

`tr(key, lang)` returns a screen's text in the current language; `localize_bindings` re-labels a screen's
key bindings (the footer) in the current language from the ``bind.<action>`` texts.
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


def localize_bindings(node: Any, lang: str) -> None:
    """Re-label the key bindings of a screen or widget in `lang` (descriptions shown by the footer)."""
    from textual.binding import BindingsMap

    merged = type(node)._merge_bindings()
    keys = {
        key: [
            dataclasses.replace(binding, description=tr(f"bind.{binding.action}", lang, binding.description))
            for binding in bindings
        ]
        for key, bindings in merged.key_to_bindings.items()
    }
    node._bindings = BindingsMap.from_keys(keys)
