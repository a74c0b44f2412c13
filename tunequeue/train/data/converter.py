"""Turn rows of any supported format into one shape: a system prompt and role/content messages.

Formats (LLaMA-Factory's dataset_info.json schema):

- alpaca: ``instruction`` (+ ``input`` on a new line) is the prompt, ``output`` the answer; optional
  ``system`` and ``history`` ([[prompt, answer], …]). Firefly CSV (category,human,assistant) is alpaca with
  ``columns: {prompt: human, response: assistant}``.
- sharegpt: a message list with role/content tags (``from``/``value`` and human/gpt by default; OpenAI
  ``role``/``content`` through ``tags``). A Firefly JSONL ``conversation`` list of
  ``{"human": …, "assistant": …}`` turns is recognised in the messages column as it is.
- ranking data adds ``chosen`` / ``rejected``; KTO data adds a boolean ``kto_tag``.
- tool calls (glaive_toolcall): ``function_call`` messages become role ``function`` and
  ``observation`` messages role ``observation``; a ``tools`` column becomes the example's ``tools``
  (JSON text), which the template puts into the system prompt.

Every problem is reported with the file, the row (1-based) and the column, before any training starts.
"""

from __future__ import annotations

import json
from typing import Any

from tunequeue.core.errors import UserError
from tunequeue.train.data.loader import DatasetEntry

Example = dict[str, Any]


def _problem(entry: DatasetEntry, row: int, column: str | None, what: str) -> UserError:
    where = f"{entry.path} row {row}" + (f" column '{column}'" if column else "")
    return UserError(f"{where} (dataset '{entry.name}') {what}")


def _text(value: Any) -> str | None:
    """A cell as text; None for missing cells (numbers from JSON/CSV become their text)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return None


def _required(entry: DatasetEntry, row: dict, number: int, key: str) -> str:
    column = entry.column(key)
    if column is None:
        raise UserError(
            f"dataset '{entry.name}' maps no column to '{key}'; add it under columns in dataset_info.json"
        )
    if column not in row:
        raise _problem(entry, number, column, "is missing; add it or map another column in dataset_info.json")
    value = _text(row[column])
    if not value or not value.strip():
        raise _problem(entry, number, column, "is empty; fill it in or remove the row")
    return value


def _optional(entry: DatasetEntry, row: dict, key: str) -> str | None:
    column = entry.column(key)
    if column is None:
        return None
    value = _text(row.get(column))
    return value if value and value.strip() else None


def _label(entry: DatasetEntry, row: dict, number: int) -> bool | None:
    column = entry.column("kto_tag")
    if column is None:
        return None
    if column not in row:
        raise _problem(entry, number, column, "is missing; KTO data needs a true/false kto_tag in every row")
    value = row[column]
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if not isinstance(value, bool | int):
        raise _problem(entry, number, column, "must be true or false")
    return bool(value)


def _alpaca(entry: DatasetEntry, row: dict, number: int, stage: str) -> Example:
    prompt = _required(entry, row, number, "prompt")
    query = _optional(entry, row, "query")
    if query:
        prompt = f"{prompt}\n{query}"
    messages: list[dict[str, str]] = []
    history_column = entry.column("history")
    if history_column and row.get(history_column):
        history = row[history_column]
        if not isinstance(history, list) or not all(
            isinstance(pair, list | tuple) and len(pair) == 2 for pair in history
        ):
            raise _problem(entry, number, history_column, "must be a list of [prompt, answer] pairs")
        for old_prompt, old_answer in history:
            messages += [
                {"role": "user", "content": _text(old_prompt) or ""},
                {"role": "assistant", "content": _text(old_answer) or ""},
            ]
    messages.append({"role": "user", "content": prompt})
    example: Example = {"system": _optional(entry, row, "system"), "messages": messages}
    tools = _tools(entry, row, number)
    if tools is not None:
        example["tools"] = tools
    if stage == "pt":
        return example
    if entry.ranking:
        example["chosen"] = _required(entry, row, number, "chosen")
        example["rejected"] = _required(entry, row, number, "rejected")
        return example
    messages.append({"role": "assistant", "content": _required(entry, row, number, "response")})
    example["label"] = _label(entry, row, number)
    return example


def _firefly_turns(entry: DatasetEntry, items: list, number: int, column: str) -> list[dict[str, str]]:
    messages = []
    for turn_number, turn in enumerate(items, start=1):
        if not isinstance(turn, dict) or "human" not in turn or "assistant" not in turn:
            raise _problem(entry, number, column, f"turn {turn_number} needs both 'human' and 'assistant'")
        messages += [
            {"role": "user", "content": _text(turn["human"]) or ""},
            {"role": "assistant", "content": _text(turn["assistant"]) or ""},
        ]
    return messages


def _sharegpt_message(entry: DatasetEntry, value: Any, number: int, column: str) -> str:
    """Content of a chosen/rejected cell: a message object or plain text."""
    if isinstance(value, dict):
        value = value.get(entry.all_tags["content_tag"])
    text = _text(value)
    if not text or not text.strip():
        raise _problem(entry, number, column, "is missing or empty; fill it in or remove the row")
    return text


# What each sharegpt tag becomes: tool calls ("function") and tool results ("observation") keep their
# own roles, so templates with tool-call slots format them (glaive_toolcall data).
ROLE_OF_TAG = {
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "observation",
    "function_tag": "function",
}


def _tag_kind(tags: dict[str, str], role: Any) -> str:
    for kind in ROLE_OF_TAG:
        if tags[kind] == role:
            return kind
    raise KeyError(role)


def _tools(entry: DatasetEntry, row: dict, number: int) -> str | None:
    """The tools column as JSON text (a list or object cell is serialised), or None."""
    column = entry.column("tools")
    if column is None or row.get(column) in (None, "", []):
        return None
    value = row[column]
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    raise _problem(entry, number, column, "must be a JSON list of tool descriptions (or its text)")


def _sharegpt(entry: DatasetEntry, row: dict, number: int, stage: str) -> Example:
    column = entry.column("messages") or "conversations"
    items = row.get(column)
    if column not in row:
        raise _problem(entry, number, column, "is missing; add it or map another column in dataset_info.json")
    if not isinstance(items, list) or not items:
        raise _problem(entry, number, column, "must be a non-empty list of messages")
    tags = entry.all_tags
    system = _optional(entry, row, "system")
    first = items[0]
    if isinstance(first, dict) and tags["role_tag"] not in first and "human" in first:
        messages = _firefly_turns(entry, items, number, column)
        system = system or _text(row.get("system"))
    else:
        if isinstance(first, dict) and first.get(tags["role_tag"]) == tags["system_tag"]:
            system = _text(first.get(tags["content_tag"])) or system
            items = items[1:]
        user_roles = {tags["user_tag"], tags["observation_tag"]}
        assistant_roles = {tags["assistant_tag"], tags["function_tag"]}
        messages = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise _problem(entry, number, column, f"message {index + 1} must be an object")
            role = item.get(tags["role_tag"])
            expected = user_roles if index % 2 == 0 else assistant_roles
            if role not in expected:
                want = tags["user_tag"] if index % 2 == 0 else tags["assistant_tag"]
                raise _problem(
                    entry,
                    number,
                    column,
                    f"message {index + 1} has {tags['role_tag']}='{role}' where '{want}' belongs; "
                    "messages must alternate user and assistant (tags in dataset_info.json rename them)",
                )
            content = _text(item.get(tags["content_tag"]))
            if content is None:
                raise _problem(
                    entry, number, column, f"message {index + 1} has no '{tags['content_tag']}' text"
                )
            messages.append({"role": ROLE_OF_TAG[_tag_kind(tags, role)], "content": content})
    if not messages:
        raise _problem(entry, number, column, "holds no user message")
    example: Example = {"system": system, "messages": messages}
    tools = _tools(entry, row, number)
    if tools is not None:
        example["tools"] = tools
    if stage == "pt":
        return example
    if entry.ranking:
        if len(messages) % 2 == 0:
            raise _problem(entry, number, column, "must end with a user message in ranking data")
        for key in ("chosen", "rejected"):
            target = entry.column(key) or key
            if target not in row:
                raise _problem(entry, number, target, "is missing; ranking data needs chosen and rejected")
            example[key] = _sharegpt_message(entry, row[target], number, target)
        return example
    if len(messages) % 2 != 0:
        raise _problem(entry, number, column, "must end with an assistant message")
    example["label"] = _label(entry, row, number)
    return example


def convert_rows(entry: DatasetEntry, rows: list[Any], stage: str) -> list[Example]:
    """Convert every row of one dataset; the first bad row raises a `UserError` naming it."""
    convert = _alpaca if entry.formatting == "alpaca" else _sharegpt
    examples = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise _problem(entry, number, None, "is not an object with named columns")
        examples.append(convert(entry, row, number, stage))
    return examples


def pretrain_text(example: Example) -> str:
    """The text a pre-training example contributes: its first message (LLaMA-Factory's rule)."""
    return example["messages"][0]["content"]
