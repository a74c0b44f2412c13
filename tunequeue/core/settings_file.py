"""settings.yaml of a home: one reader and one atomic writer for every part that keeps a setting there.

The file holds ``language`` (core.i18n) and a ``runner:`` block (runner.settings, runner.backends); each
part changes only its own keys and keeps the others.
"""

from __future__ import annotations

from typing import Any

from tunequeue.core import paths, private_files
from tunequeue.core.errors import UserError


def read_settings() -> dict[str, Any]:
    """The settings mapping ({} when the file is absent or not a mapping); invalid YAML raises `UserError`."""
    import yaml

    path = paths.settings_path()
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML ({err.__class__.__name__}); fix or delete it") from None
    return data if isinstance(data, dict) else {}


def write_settings(data: dict[str, Any]) -> None:
    """Replace settings.yaml with ``data`` atomically (temp file + rename)."""
    import yaml

    path = paths.settings_path()
    private_files.write_text(path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
