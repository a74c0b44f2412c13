"""Find datasets in dataset_info.json and read their files into plain Python rows.

A dataset name resolves in ``dataset_dir``'s ``dataset_info.json`` (LLaMA-Factory's schema), or in the
bundled one when ``dataset_dir`` is unset. Local files only: json (a list, or one object per line),
jsonl, csv, parquet and arrow, or a folder of such files. Hub sources cannot be downloaded here.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunequeue.core.errors import UserError

FILE_TYPES = {".json", ".jsonl", ".csv", ".parquet", ".arrow"}
REMOTE_SOURCES = ("hf_hub_url", "ms_hub_url", "script_url", "cloud_file_name")

ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "history": None}
SHAREGPT_COLUMNS = {"messages": "conversations"}
SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}


@dataclass
class DatasetEntry:
    """One dataset_info.json entry with LLaMA-Factory's defaults filled in."""

    name: str
    path: Path
    formatting: str = "alpaca"
    ranking: bool = False
    columns: dict[str, str | None] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    num_samples: int | None = None

    def column(self, key: str) -> str | None:
        """The file column that holds ``key`` (prompt, response, messages, system, …), if any."""
        return self.columns.get(key)


def resolve_dataset_dir(dataset_dir: str | None) -> Path:
    """The folder holding dataset_info.json: ``dataset_dir`` or the bundled demo datasets."""
    if not dataset_dir:
        from tunequeue.train.assets import bundled_dataset_dir

        return bundled_dataset_dir()
    path = Path(dataset_dir).expanduser().resolve()
    if not path.is_dir():
        raise UserError(
            f"dataset_dir '{dataset_dir}' is not a directory; give the folder holding dataset_info.json"
        )
    return path


def read_dataset_info(dataset_dir: Path) -> dict[str, Any]:
    """The parsed dataset_info.json of a folder."""
    info_path = dataset_dir / "dataset_info.json"
    if not info_path.is_file():
        raise UserError(f"{info_path} does not exist; add a dataset_info.json describing your datasets")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{info_path} is not valid JSON (line {exc.lineno}: {exc.msg}); fix it") from exc
    if not isinstance(info, dict):
        raise UserError(f"{info_path} must map dataset names to descriptions; fix the file")
    return info


def dataset_entry(name: str, dataset_dir: Path, info: dict[str, Any]) -> DatasetEntry:
    """Resolve one dataset name into a `DatasetEntry` pointing at a local file."""
    if name not in info:
        known = ", ".join(sorted(info)) or "none"
        raise UserError(
            f"dataset '{name}' is not in {dataset_dir / 'dataset_info.json'}; use one of: {known}"
        )
    raw = info[name]
    if not isinstance(raw, dict):
        raise UserError(f"dataset '{name}' in {dataset_dir / 'dataset_info.json'} must be an object; fix it")
    if "file_name" not in raw:
        remote = next((key for key in REMOTE_SOURCES if key in raw), None)
        if remote:
            raise UserError(
                f"dataset '{name}' comes from {remote}, and nothing can be downloaded here; "
                "download it to a local file and set file_name"
            )
        raise UserError(f"dataset '{name}' in {dataset_dir / 'dataset_info.json'} has no file_name; add one")
    formatting = raw.get("formatting", "alpaca")
    if formatting not in ("alpaca", "sharegpt"):
        raise UserError(f"dataset '{name}' has formatting '{formatting}'; use alpaca or sharegpt")
    ranking = bool(raw.get("ranking", False))
    defaults = dict(ALPACA_COLUMNS if formatting == "alpaca" else SHAREGPT_COLUMNS)
    if formatting == "alpaca" and ranking:
        defaults.pop("response")
    columns = {**defaults, **(raw.get("columns") or {})}
    tags = {**SHAREGPT_TAGS, **(raw.get("tags") or {})}
    path = Path(raw["file_name"])
    if not path.is_absolute():
        path = dataset_dir / path
    return DatasetEntry(
        name=name,
        path=path,
        formatting=formatting,
        ranking=ranking,
        columns=columns,
        tags=tags,
        num_samples=raw.get("num_samples"),
    )


def _read_json(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            return data
        if isinstance(data, dict):
            raise UserError(f"{path} holds one JSON object; make it a list of examples or one per line")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} line {number} is not valid JSON ({exc.msg}); fix that line") from exc
    return rows


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def _read_table(path: Path) -> list[dict[str, Any]]:
    from datasets import Dataset

    dataset = Dataset.from_parquet(str(path)) if path.suffix == ".parquet" else Dataset.from_file(str(path))
    return dataset.to_list()


def read_rows(path: Path) -> list[Any]:
    """All rows of a dataset file, or of every data file in a folder (sorted by name)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in FILE_TYPES)
        if not files:
            raise UserError(f"folder {path} holds no json, jsonl, csv, parquet or arrow file; add data files")
        rows: list[Any] = []
        for file in files:
            rows += read_rows(file)
        return rows
    if not path.is_file():
        raise UserError(f"dataset file {path} does not exist; check file_name in dataset_info.json")
    if path.suffix not in FILE_TYPES:
        raise UserError(f"dataset file {path} has an unsupported type; use json, jsonl, csv, parquet, arrow")
    if path.suffix in (".json", ".jsonl"):
        rows = _read_json(path)
    elif path.suffix == ".csv":
        rows = _read_csv(path)
    else:
        rows = _read_table(path)
    if not rows:
        raise UserError(f"dataset file {path} is empty; add examples or remove it from dataset")
    return rows
