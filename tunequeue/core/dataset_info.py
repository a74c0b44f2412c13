"""The one reader of ``dataset_info.json`` (LLaMA-Factory's schema), used by validation and training alike.

`read_dataset_info(dataset_dir)` reads a folder's file into `DatasetEntry`s, checking every field's type;
`dataset_entries(dataset, dataset_dir)` resolves a task's comma-separated ``dataset`` value;
`register_datasets` adds entries to a file atomically. A ``dataset_dir`` of None (or "") means the
demo datasets bundled with tunequeue. Every problem is a one-line `UserError` naming the file, the
dataset and the field.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunequeue.core import private_files
from tunequeue.core.errors import UserError

# In LLaMA-Factory's order of preference: a Hugging Face hub id wins over ModelScope and Modelers.
SOURCE_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name", "file_name")
COLUMN_KEYS = (
    "prompt",
    "query",
    "response",
    "history",
    "messages",
    "system",
    "tools",
    "images",
    "videos",
    "audios",
    "chosen",
    "rejected",
    "kto_tag",
)
TAG_KEYS = (
    "role_tag",
    "content_tag",
    "user_tag",
    "assistant_tag",
    "observation_tag",
    "function_tag",
    "system_tag",
)
ENTRY_KEYS = SOURCE_KEYS + (
    "formatting",
    "ranking",
    "subset",
    "split",
    "folder",
    "num_samples",
    "columns",
    "tags",
)
FORMATTINGS = ("alpaca", "sharegpt")

# LLaMA-Factory's column and tag defaults per formatting (data/parser.py).
ALPACA_COLUMNS: dict[str, str | None] = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": None,
}
SHAREGPT_COLUMNS: dict[str, str | None] = {"messages": "conversations"}
SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
MAX_INFO_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of a dataset_info.json, as written there (defaults are applied by `column`/`tag`)."""

    name: str
    source: str  # which of SOURCE_KEYS locates the data ("file_name" for local files)
    location: str  # that key's value
    formatting: str = "alpaca"
    ranking: bool = False
    subset: str | None = None
    split: str = "train"
    folder: str | None = None
    num_samples: int | None = None
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    base_dir: Path | None = field(default=None, compare=False)  # the folder of the dataset_info.json

    @property
    def kto_tag(self) -> str | None:
        """Column holding KTO's good/bad label, when the dataset has one."""
        return self.columns.get("kto_tag")

    @property
    def path(self) -> Path | None:
        """The local file or folder of a ``file_name`` dataset (None for hub and script sources)."""
        if self.source != "file_name":
            return None
        location = Path(self.location).expanduser()
        if location.is_absolute() or self.base_dir is None:
            return location
        return self.base_dir / location

    def column(self, key: str) -> str | None:
        """The file column that holds ``key`` (prompt, response, messages, kto_tag…), defaults applied."""
        defaults = dict(ALPACA_COLUMNS if self.formatting == "alpaca" else SHAREGPT_COLUMNS)
        if self.formatting == "alpaca" and self.ranking:
            defaults.pop("response")
        return {**defaults, **self.columns}.get(key)

    @property
    def all_tags(self) -> dict[str, str]:
        """The sharegpt role/content tags with LLaMA-Factory's defaults filled in."""
        return {**SHAREGPT_TAGS, **self.tags}

    def to_json(self) -> dict[str, Any]:
        """The entry as dataset_info.json writes it (defaults left out)."""
        out: dict[str, Any] = {self.source: self.location}
        if self.formatting != "alpaca":
            out["formatting"] = self.formatting
        if self.ranking:
            out["ranking"] = True
        for key in ("subset", "folder", "num_samples"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.split != "train":
            out["split"] = self.split
        if self.columns:
            out["columns"] = dict(self.columns)
        if self.tags:
            out["tags"] = dict(self.tags)
        return out


def bundled_dataset_dir() -> Path:
    """The demo datasets shipped with tunequeue (used when ``dataset_dir`` is unset)."""
    from tunequeue.core.paths import DATA_DIR

    return DATA_DIR / "datasets"


def closest_hint(name: str, options: Any) -> str:
    """``; did you mean 'x'?`` for the option closest to ``name``, or "" when none is close."""
    near = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    return f"; did you mean '{near[0]}'?" if near else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _string_field(name: str, raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UserError(
            f"'{key}' of dataset '{name}' in {where} must be a non-empty string, not {_short(value)}; fix it"
        )
    return value


def _mapping_of_strings(name: str, raw: Mapping[str, Any], group: str, allowed: tuple, where: str) -> dict:
    value = raw.get(group)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(f"'{group}' of dataset '{name}' in {where} must be a JSON object; fix it")
    out = {}
    for key, item in value.items():
        if key not in allowed:
            raise UserError(
                f"unknown {group} key '{key}' in dataset '{name}' of {where}{closest_hint(key, allowed)}"
            )
        if not isinstance(item, str) or not item:
            raise UserError(
                f"{group}.{key} of dataset '{name}' in {where} must be a column name (a string), "
                f"not {_short(item)}; fix it"
            )
        out[str(key)] = item
    return out


def parse_dataset_entry(
    name: str, raw: Any, where: str = "dataset_info.json", base_dir: Path | None = None
) -> DatasetEntry:
    """Check one dataset_info.json entry (fields and their types) and turn it into a `DatasetEntry`."""
    if not isinstance(raw, Mapping):
        raise UserError(f"dataset '{name}' in {where} must be a JSON object with a file_name or hub URL.")
    for key in raw:
        if key not in ENTRY_KEYS:
            hint = closest_hint(key, ENTRY_KEYS)
            raise UserError(f"unknown field '{key}' in dataset '{name}' of {where}{hint}")
    source = next((k for k in SOURCE_KEYS if raw.get(k) is not None), None)
    if source is None:
        raise UserError(f"dataset '{name}' in {where} needs one of {', '.join(SOURCE_KEYS)}.")
    location = _string_field(name, raw, source, where)
    formatting = raw.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        raise UserError(
            f"dataset '{name}' in {where} has formatting {_short(formatting)}; use alpaca or sharegpt."
        )
    ranking = raw.get("ranking", False)
    if not isinstance(ranking, bool):
        raise UserError(
            f"'ranking' of dataset '{name}' in {where} must be true or false, not {_short(ranking)}"
        )
    num_samples = raw.get("num_samples")
    if num_samples is not None and (
        isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1
    ):
        raise UserError(
            f"'num_samples' of dataset '{name}' in {where} must be a positive whole number, "
            f"not {_short(num_samples)}; write e.g. 1000"
        )
    return DatasetEntry(
        name=name,
        source=source,
        location=str(location),
        formatting=formatting,
        ranking=ranking,
        subset=_string_field(name, raw, "subset", where),
        split=_string_field(name, raw, "split", where) or "train",
        folder=_string_field(name, raw, "folder", where),
        num_samples=num_samples,
        columns=_mapping_of_strings(name, raw, "columns", COLUMN_KEYS, where),
        tags=_mapping_of_strings(name, raw, "tags", TAG_KEYS, where),
        base_dir=base_dir,
    )


def resolve_dataset_dir(dataset_dir: str | Path | None) -> Path:
    """The folder holding dataset_info.json: ``dataset_dir`` or the bundled demo datasets."""
    if dataset_dir in (None, ""):
        return bundled_dataset_dir()
    return Path(dataset_dir).expanduser().resolve()


def dataset_info_path(dataset_dir: str | Path | None) -> Path:
    """Path of the dataset_info.json of ``dataset_dir`` (the bundled one when None)."""
    return resolve_dataset_dir(dataset_dir) / "dataset_info.json"


def read_info_json(path: Path) -> dict[str, Any]:
    """The raw top-level object of a dataset_info.json; unreadable, non-UTF-8 or bad JSON is a `UserError`."""
    if not path.parent.is_dir():
        raise UserError(
            f"dataset_dir '{path.parent}' is not a directory; give the folder holding dataset_info.json"
        )
    try:
        if path.stat().st_size > MAX_INFO_BYTES:
            raise UserError(f"{path} is larger than 64 MiB; a dataset_info.json only describes datasets")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(
            f"no dataset_info.json in {path.parent}; set dataset_dir to the folder that holds it."
        ) from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8.") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}; check its permissions.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON (line {err.lineno}: {err.msg}); fix that line.") from None
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to be a dataset_info.json; fix the file.") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object mapping dataset names to their descriptions.")
    return data


def read_dataset_info(dataset_dir: str | Path | None) -> dict[str, DatasetEntry]:
    """Read every entry of ``dataset_dir``/dataset_info.json (the bundled demo datasets when None)."""
    path = dataset_info_path(dataset_dir)
    raw = read_info_json(path)
    return {
        name: parse_dataset_entry(name, entry, str(path), base_dir=path.parent) for name, entry in raw.items()
    }


def dataset_names(dataset: Any) -> list[str]:
    """The names of a comma-separated ``dataset`` value, blanks dropped."""
    return [name.strip() for name in str(dataset or "").split(",") if name.strip()]


def dataset_entries(dataset: str, dataset_dir: str | Path | None) -> dict[str, DatasetEntry]:
    """The entries named in a comma-separated ``dataset`` value; an unknown name names the closest."""
    info = read_dataset_info(dataset_dir)
    out = {}
    for name in dataset_names(dataset):
        if name not in info:
            where = dataset_info_path(dataset_dir)
            hint = closest_hint(name, list(info)) or "; add it there"
            raise UserError(f"dataset '{name}' is not in {where}{hint}")
        out[name] = info[name]
    return out


def register_datasets(entries: Mapping[str, Mapping[str, Any]], folder: str | Path) -> Path:
    """Add ``entries`` to ``folder``/dataset_info.json (created if missing), written atomically.

    An existing entry of the same name is kept when identical; a different one is an error.
    """
    path = Path(folder) / "dataset_info.json"
    current = read_info_json(path) if path.exists() else {}
    for name, entry in entries.items():
        if name in current and current[name] != dict(entry):
            raise UserError(
                f"dataset '{name}' already exists in {path} with a different description; "
                "remove it there or write the import somewhere else with -o."
            )
        current[name] = dict(entry)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return private_files.write_text(path, json.dumps(current, indent=2, ensure_ascii=False) + "\n")
