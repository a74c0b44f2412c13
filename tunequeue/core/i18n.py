"""English and Chinese texts, and the user's language.

Every text shown to users lives in the catalog files ``tunequeue/locales/en.yaml`` and
``tunequeue/locales/zh.yaml``: one flat mapping per language from a dotted key (``queue.title``,
``param.learning_rate.help``, ``rules.pissa_quantization`` …) to the text, with ``{name}`` format
placeholders. No module keeps a table of its own. `text(key, lang, **values)` looks a key up and fills
the placeholders; `t` is the lenient form for screens (an unknown key shows as itself); `lookup` and
`has_text` serve optional texts (a parameter's recommendation in words, per-choice help). The files are
read once, on the first lookup, so commands that print no text never parse them.

Key prefixes by area: ``group.`` (task groups), ``label.`` (shared labels), ``validate.``/``params.``
(commands), ``rules.`` (validation messages), ``param.<key>.help|rec|bounds|choice.<value>`` (the task
parameters), ``bind.``/``queue.``/``dash.``/``gpu.``/``gpus.``/``state.``/``job.``/``chat.``/``cluster.``
(screens), ``wizard.``, ``presets.``, ``field.``, ``dialog.``.

The language is, in order: an explicit choice (``--lang``), the ``TUNEQUEUE_LANG`` environment variable,
the ``language`` saved in the home's settings.yaml by `set_language`, then ``LANG``/``LC_ALL`` starting
with ``zh`` → Chinese, else English.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("en", "zh")
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"


@cache
def catalog(lang: str) -> dict[str, str]:
    """Every text of ``lang`` ("en" or "zh"), read from ``tunequeue/locales/<lang>.yaml`` once."""
    import yaml

    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}; got {lang!r}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(LOCALES_DIR / f"{lang}.yaml", encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=loader)
    return {str(key): str(value) for key, value in (data or {}).items()}


def _lang(lang: str) -> str:
    return "zh" if lang == "zh" else "en"


def has_text(key: str) -> bool:
    """Whether the catalog holds ``key`` (optional texts such as ``param.<key>.rec``)."""
    return key in catalog("en")


def lookup(key: str, lang: str) -> str | None:
    """The unformatted ``lang`` text of ``key``; None when the catalog lacks the key."""
    return catalog(_lang(lang)).get(key)


def text(key: str, lang: str = "en", /, **values: Any) -> str:
    """The ``lang`` text of ``key`` with its placeholders filled from ``values``.

    An unknown key raises KeyError: code asks only for keys the catalog holds (the catalog test scans
    the source for them).
    """
    template = catalog(_lang(lang))[key]
    return template.format(**values) if values else template


def t(key: str, lang: str = "en", /, **fmt: Any) -> str:
    """Like `text`, but an unknown key returns the key itself (a missing text shows up plainly instead of
    crashing a screen)."""
    template = lookup(key, lang)
    if template is None:
        return key
    return template.format(**fmt) if fmt else template


def piece(key: str, /, **values: Any) -> Callable[[str], str]:
    """A text that `both` fills in per language: ``hint=piece("rules.unknown_key_near", near=near)``."""

    def fill(lang: str) -> str:
        return text(key, lang, **values)

    return fill


def both(key: str, /, **values: Any) -> tuple[str, str]:
    """The (English, Chinese) texts of ``key`` with ``values`` filled in (messages kept in both languages).

    A callable value is a piece that differs by language: it is called with ``"en"`` or ``"zh"``
    (``help=info.help``).
    """

    def filled(lang: str) -> str:
        return text(key, lang, **{name: v(lang) if callable(v) else v for name, v in values.items()})

    return filled("en"), filled("zh")


def normalize_language(value: str | None) -> str | None:
    """``"zh"``/``"en"`` for values like ``zh_CN.UTF-8``, ``zh-TW``, ``EN``; None when unrecognised."""
    if not value:
        return None
    lowered = value.strip().lower()
    if lowered.startswith("zh"):
        return "zh"
    if lowered.startswith("en"):
        return "en"
    return None


def _saved_language() -> str | None:
    from tunequeue.core.settings_file import read_settings

    try:
        data = read_settings()
    except OSError:
        return None
    return normalize_language(data.get("language"))


def current_language(explicit: str | None = None) -> str:
    """The language to use: ``explicit`` (--lang), TUNEQUEUE_LANG, the saved setting, LANG, else en."""
    for candidate in (explicit, os.environ.get("TUNEQUEUE_LANG")):
        lang = normalize_language(candidate)
        if lang:
            return lang
    saved = _saved_language()
    if saved:
        return saved
    for var in ("LC_ALL", "LANG"):
        if normalize_language(os.environ.get(var)) == "zh":
            return "zh"
    return "en"


def set_language(lang: str) -> None:
    """Save ``lang`` ("en" or "zh") in settings.yaml, keeping the file's other settings."""
    chosen = normalize_language(lang)
    if chosen is None:
        from tunequeue.core.errors import UserError

        raise UserError(f"language must be en or zh; got '{lang}'")
    from tunequeue.core.settings_file import read_settings, write_settings

    data = read_settings()  # a file that cannot be parsed is reported, never overwritten
    data["language"] = chosen
    write_settings(data)
