"""Parsing the YAML and JSON files a user names, safely: every problem is a one-line `UserError`.

Hostile input never hangs or eats memory: files are limited in size, YAML aliases in number (an alias
bomb is refused before it is expanded) and documents in depth; NUL bytes, duplicate keys and keys that
are not plain strings are refused with the line they are on. `parse_text` is used for task files,
presets and stored task YAML alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunequeue.core.errors import UserError

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_ALIASES = 64
MAX_DEPTH = 32


def _loader_class() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """SafeLoader that counts aliases, limits depth and refuses duplicate or non-string keys."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.aliases = 0
            self.depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    mark = self.peek_event().start_mark
                    raise _Refused(
                        f"uses more than {MAX_ALIASES} aliases (line {mark.line + 1}); write the values out"
                    )
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    mark = self.peek_event().start_mark
                    raise _Refused(
                        f"is nested more than {MAX_DEPTH} levels deep (line {mark.line + 1}); flatten it"
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[str, int] = {}
            for key_node, _value_node in node.value:
                line = key_node.start_mark.line + 1
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                    shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a nested value"
                    raise _Refused(
                        f"has a key that is not text ({str(shown)[:40]!r}, line {line}); "
                        "write keys as plain names"
                    )
                if key_node.value in seen:
                    raise _Refused(
                        f"sets key '{key_node.value[:60]}' twice (lines {seen[key_node.value]} and {line}); "
                        "keep one"
                    )
                seen[key_node.value] = line
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


class _Refused(Exception):
    """A structural problem found while parsing; becomes a `UserError` naming the file."""


def _no_nul(text: str, source: str) -> None:
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise UserError(f"{source} contains a NUL byte (line {line}); save it as plain UTF-8 text")


def parse_yaml(text: str, source: str) -> Any:
    """The document of YAML ``text`` (``source`` names it in errors), parsed under the limits above."""
    import yaml

    _no_nul(text, source)
    loader = _loader_class()(text)
    try:
        return loader.get_single_data()
    except _Refused as refused:
        raise UserError(f"{source} {refused}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark is not None else "somewhere"
        problem = getattr(err, "problem", None) or "syntax error"
        raise UserError(f"{source} is not valid YAML ({line}: {problem}); fix that line") from None
    except RecursionError:
        raise UserError(f"{source} is nested too deeply; flatten it") from None
    finally:
        loader.dispose()


def _depth(value: Any, limit: int) -> bool:
    """True when ``value`` nests deeper than ``limit`` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def parse_json(text: str, source: str) -> Any:
    """The value of JSON ``text``, refusing duplicate keys, NaN/Infinity and deep nesting."""
    _no_nul(text, source)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise _Refused(f"sets key '{key[:60]}' twice; keep one")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise _Refused(f"contains {name}, which is not a number; write a finite number")

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except _Refused as refused:
        raise UserError(f"{source} {refused}") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{source} is not valid JSON (line {err.lineno}: {err.msg}); fix that line") from None
    except RecursionError:
        raise UserError(f"{source} is nested too deeply; flatten it") from None
    if _depth(data, MAX_DEPTH):
        raise UserError(f"{source} is nested more than {MAX_DEPTH} levels deep; flatten it")
    return data


def read_text(path: Path, expected: str = "a task YAML") -> str:
    """The UTF-8 text of a user's file (at most 4 MiB); missing, unreadable or binary is a `UserError`."""
    try:
        if not path.is_file():
            raise UserError(f"file {path} does not exist; give the path of {expected}")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UserError(f"{path} is larger than 4 MiB; give {expected}, not a data file")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}; check its permissions") from None


def parse_file(path: Path, expected: str = "a task YAML") -> Any:
    """Parse a user's file: JSON when it ends in .json, YAML otherwise."""
    text = read_text(path, expected)
    if path.suffix.lower() == ".json":
        return parse_json(text, str(path))
    return parse_yaml(text, str(path))


def read_yaml_mapping(
    path: Path, *, expected: str = "a task YAML", keys: str = "task keys"
) -> dict[str, Any]:
    """The top-level mapping of the YAML file at `path`.

    A missing file, a syntax error (with its line), a hostile document or one that is not a mapping
    raises `UserError`; `expected` names what the user should give instead and `keys` what it holds.
    """
    data = parse_yaml(read_text(path, expected), str(path))
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a mapping of {keys} (key: value per line)")
    return data
