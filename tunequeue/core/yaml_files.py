"""Reading a YAML file the user named into a mapping; every problem is a one-line `UserError`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunequeue.core.errors import UserError


def read_yaml_mapping(
    path: Path, *, expected: str = "a task YAML", keys: str = "task keys"
) -> dict[str, Any]:
    """The top-level mapping of the YAML file at `path`.

    A missing file, a syntax error (with its line) or a document that is not a mapping raises `UserError`;
    `expected` names what the user should give instead ("a task YAML") and `keys` what the mapping holds.
    """
    import yaml

    if not path.is_file():
        raise UserError(f"file {path} does not exist; give the path of {expected}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path} is not valid YAML{where}; fix the syntax there") from err
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a mapping of {keys} (key: value per line)")
    return data
