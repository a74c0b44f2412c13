"""Find datasets in dataset_info.json and read their files into plain Python rows.

A dataset name resolves in ``dataset_dir``'s ``dataset_info.json`` (LLaMA-Factory's schema, read by
`tunequeue.core.dataset_info`, the same reader validation uses), or in the bundled one when
``dataset_dir`` is unset. Local files only: json (a list, or one object per line),
jsonl, csv, parquet and arrow, or a folder of such files. Hub sources cannot be downloaded here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tunequeue.core.dataset_info import (  # noqa: F401 — the loader's public names
    DatasetEntry,
    read_dataset_info,
    resolve_dataset_dir,
)
from tunequeue.core.errors import UserError

FILE_TYPES = {".json", ".jsonl", ".csv", ".parquet", ".arrow"}


def dataset_entry(name: str, dataset_dir: Path, info: dict[str, DatasetEntry]) -> DatasetEntry:
    """The entry ``name`` of a read dataset_info.json, which must point at a local file or folder."""
    if name not in info:
        known = ", ".join(sorted(info)) or "none"
        raise UserError(
            f"dataset '{name}' is not in {dataset_dir / 'dataset_info.json'}; use one of: {known}"
        )
    entry = info[name]
    if entry.path is None:
        raise UserError(
            f"dataset '{name}' comes from {entry.source}, and nothing can be downloaded here; "
            "download it to a local file and set file_name"
        )
    return entry


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
