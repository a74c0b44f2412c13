"""The datasets a task can name: the entries of a ``dataset_info.json`` with their format and row count.

`list_datasets(dataset_dir)` reads ``dataset_dir``/dataset_info.json (the bundled demo datasets when
``dataset_dir`` is empty) through `tunequeue.core.dataset_info` and counts the rows of each local file
(JSON arrays, JSON lines, CSV, Parquet from its footer). Counts are cached by path, size and
modification time, so opening the picker again costs only a ``stat`` per file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from tunequeue.core.dataset_info import DatasetEntry, read_dataset_info

MAX_COUNTED_BYTES = 512 * 1024 * 1024  # larger files are not parsed just to show a count
DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet")
_ROW_CACHE: dict[tuple[str, int, int], int | None] = {}


@dataclass(frozen=True)
class DatasetChoice:
    """One dataset_info.json entry as the picker shows it."""

    name: str
    formatting: str  # "alpaca" or "sharegpt"
    ranking: bool  # preference pairs (chosen/rejected)
    kto: bool  # has a KTO good/bad label column
    source: str  # "file_name", "hf_hub_url", ...
    location: str
    rows: int | None  # None: not a local file, unreadable, or too large to count

    @property
    def kind(self) -> str:
        """``alpaca``, ``sharegpt``, ``alpaca pairwise``, ``sharegpt kto``…"""
        extra = " pairwise" if self.ranking else (" kto" if self.kto else "")
        return self.formatting + extra


def count_rows(path: Path) -> int | None:
    """Rows in one data file, or None when it cannot be counted (cached by size and mtime)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _ROW_CACHE:
        _ROW_CACHE[key] = _count_uncached(path, stat.st_size)
    return _ROW_CACHE[key]


def _count_uncached(path: Path, size: int) -> int | None:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        except Exception:  # noqa: BLE001 - pyarrow raises its own error types for bad files
            return None
    if size > MAX_COUNTED_BYTES:
        return None
    try:
        if suffix == ".jsonl":
            with path.open("rb") as handle:
                return sum(1 for line in handle if line.strip())
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                return max(sum(1 for _ in csv.reader(handle)) - 1, 0)
        if suffix == ".json":
            data = json.loads(path.read_bytes().decode("utf-8"))
            return len(data) if isinstance(data, list) else None
    except (OSError, ValueError, csv.Error, RecursionError):
        return None
    return None


def entry_rows(entry: DatasetEntry) -> int | None:
    """Rows of a local dataset: one file, or the data files of a folder; None for hub datasets."""
    path = entry.path
    if path is None:
        return None
    if path.is_file():
        return count_rows(path)
    if path.is_dir():
        try:
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
        except OSError:
            return None
        counts = [count_rows(p) for p in files]
        if not counts or any(c is None for c in counts):
            return None
        return sum(c for c in counts if c is not None)
    return None


def list_datasets(dataset_dir: str | Path | None) -> list[DatasetChoice]:
    """Every entry of ``dataset_dir``/dataset_info.json (bundled demos when empty), in file order.

    A missing or broken dataset_info.json is the `UserError` that `read_dataset_info` raises.
    """
    entries = read_dataset_info(dataset_dir)
    return [
        DatasetChoice(
            name=name,
            formatting=entry.formatting,
            ranking=entry.ranking,
            kto=entry.kto_tag is not None,
            source=entry.source,
            location=entry.location,
            rows=entry_rows(entry),
        )
        for name, entry in entries.items()
    ]
