"""Find datasets in dataset_info.json and read them into plain Python rows.

A dataset name resolves in ``dataset_dir``'s ``dataset_info.json`` (LLaMA-Factory's schema, read by
`tunequeue.core.dataset_info`, the same reader validation uses), or in the bundled one when
``dataset_dir`` is unset. Sources, as LLaMA-Factory reads them (`read_entry_rows`):

- ``file_name``: json (a list, or one object per line), jsonl, csv, parquet, arrow or txt (one
  ``text`` row per line), or a folder of such files;
- ``hf_hub_url``: ``datasets.load_dataset(id, name=subset, data_dir=folder, split=split)`` — from the
  local Hugging Face cache, or from the hub when the training process may go online
  (``HF_DATASETS_OFFLINE=0``); otherwise a one-line error says to download it or set file_name;
- ``script_url``: a folder under ``dataset_dir`` (or any path) loaded the same way;
- ``ms_hub_url`` / ``om_hub_url``: through ModelScope's / Modelers' clients when they are installed;
- ``cloud_file_name``: an s3:// or gs:// file, which cannot be reached from a training process here.

``num_samples`` then draws that many rows at random (with repeats when it exceeds the rows there are).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import random
from pathlib import Path
from typing import Any

from tunequeue.core.dataset_info import (  # noqa: F401 — the loader's public names
    DatasetEntry,
    read_dataset_info,
    resolve_dataset_dir,
)
from tunequeue.core.errors import UserError

FILE_TYPES = {".json", ".jsonl", ".csv", ".parquet", ".arrow", ".txt"}


def dataset_entry(name: str, dataset_dir: Path, info: dict[str, DatasetEntry]) -> DatasetEntry:
    """The entry ``name`` of a read dataset_info.json, which must point at a local file or folder."""
    if name not in info:
        known = ", ".join(sorted(info)) or "none"
        raise UserError(
            f"dataset '{name}' is not in {dataset_dir / 'dataset_info.json'}; use one of: {known}"
        )
    return info[name]


def read_entry_rows(entry: DatasetEntry, dataset_dir: Path, seed: int = 42) -> list[Any]:
    """The rows of one dataset from wherever its entry says, with ``num_samples`` drawn from them."""
    if entry.source == "file_name":
        rows = read_rows(entry.path)
    elif entry.source in ("hf_hub_url", "script_url"):
        rows = _load_with_datasets(entry, dataset_dir)
    elif entry.source == "ms_hub_url":
        rows = _load_from_modelscope(entry)
    elif entry.source == "om_hub_url":
        rows = _load_from_modelers(entry)
    else:
        raise UserError(
            f"dataset '{entry.name}' is the cloud file {entry.location}, which a training process here "
            "cannot reach; copy it to a local file and set file_name"
        )
    if entry.num_samples is not None:
        rows = sample_rows(rows, entry.num_samples, seed)
    return rows


def sample_rows(rows: list[Any], count: int, seed: int) -> list[Any]:
    """``count`` rows in random order: a subset, or every row plus random repeats when there are fewer."""
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    order = order[:count]
    if count > len(rows):
        order += [rng.randrange(len(rows)) for _ in range(count - len(rows))]
    return [rows[i] for i in order]


def _offline_hint(entry: DatasetEntry) -> str:
    return (
        f"dataset '{entry.name}' ({entry.source} {entry.location}) is neither in the local Hugging Face "
        "cache nor reachable (training runs offline unless HF_DATASETS_OFFLINE=0); download it to a local "
        "file and set file_name"
    )


def _load_with_datasets(entry: DatasetEntry, dataset_dir: Path) -> list[Any]:
    """Load a hub id (or a local folder for script_url) through `datasets.load_dataset`."""
    from datasets import load_dataset

    location = entry.location
    if entry.source == "script_url":
        local = Path(location).expanduser()
        local = local if local.is_absolute() else dataset_dir / local
        if not local.exists():
            raise UserError(
                f"dataset '{entry.name}' has script_url {location}, which is not a folder in {dataset_dir}; "
                "dataset scripts cannot be fetched here — give a local folder of data files"
            )
        location = str(local)
    try:
        dataset = load_dataset(location, name=entry.subset, data_dir=entry.folder, split=entry.split)
    except Exception as err:  # datasets raises many kinds (connection, not found, missing split)
        if entry.source == "script_url":
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UserError(
                f"dataset '{entry.name}' (script_url {entry.location}) cannot be loaded: {reason}; "
                "check the folder, subset and split"
            ) from err
        raise UserError(_offline_hint(entry)) from err
    return dataset.to_list()


def _load_from_modelscope(entry: DatasetEntry) -> list[Any]:
    if importlib.util.find_spec("modelscope") is None:
        raise UserError(
            f"dataset '{entry.name}' is on ModelScope (ms_hub_url {entry.location}), which needs the "
            "modelscope package; pip install modelscope, or download it to a local file and set file_name"
        )
    from modelscope import MsDataset

    try:
        dataset = MsDataset.load(
            entry.location, subset_name=entry.subset, data_dir=entry.folder, split=entry.split
        )
    except Exception as err:  # the client raises many kinds when it cannot reach the hub
        raise UserError(_offline_hint(entry)) from err
    return dataset.to_hf_dataset().to_list()


def _load_from_modelers(entry: DatasetEntry) -> list[Any]:
    if importlib.util.find_spec("openmind") is None:
        raise UserError(
            f"dataset '{entry.name}' is on Modelers (om_hub_url {entry.location}), which needs the openmind "
            "package; pip install openmind, or download it to a local file and set file_name"
        )
    from openmind import OmDataset

    try:
        dataset = OmDataset.load_dataset(
            path=entry.location, name=entry.subset, data_dir=entry.folder, split=entry.split
        )
    except Exception as err:  # the client raises many kinds when it cannot reach the hub
        raise UserError(_offline_hint(entry)) from err
    return dataset.to_list()


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
            raise UserError(
                f"folder {path} holds no json, jsonl, csv, parquet, arrow or txt file; add data files"
            )
        rows: list[Any] = []
        for file in files:
            rows += read_rows(file)
        return rows
    if not path.is_file():
        raise UserError(f"dataset file {path} does not exist; check file_name in dataset_info.json")
    if path.suffix not in FILE_TYPES:
        raise UserError(
            f"dataset file {path} has an unsupported type; use json, jsonl, csv, parquet, arrow or txt"
        )
    if path.suffix in (".json", ".jsonl"):
        rows = _read_json(path)
    elif path.suffix == ".txt":
        rows = [{"text": line} for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif path.suffix == ".csv":
        rows = _read_csv(path)
    else:
        rows = _read_table(path)
    if not rows:
        raise UserError(f"dataset file {path} is empty; add examples or remove it from dataset")
    return rows
