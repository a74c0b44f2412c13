"""Bad datasets fail before training with one sentence naming the file, row and column."""

from __future__ import annotations

import json

import pytest

from tunequeue.core.errors import UserError
from tunequeue.train.data import prepare_datasets
from tunequeue.train.templates import TEMPLATES

TEMPLATE = TEMPLATES["qwen"]


def _prepare(tmp_path, tokenizer, info: dict, files: dict[str, str], stage: str = "sft", name: str = "d"):
    (tmp_path / "dataset_info.json").write_text(json.dumps(info))
    for file_name, text in files.items():
        (tmp_path / file_name).write_text(text, encoding="utf-8")
    spec = {"dataset": name, "dataset_dir": str(tmp_path), "cutoff_len": 64}
    return prepare_datasets(spec, tokenizer, TEMPLATE, stage=stage)


def test_missing_file(tmp_path, tiny_tokenizer):
    with pytest.raises(UserError, match=r"d\.json does not exist"):
        _prepare(tmp_path, tiny_tokenizer, {"d": {"file_name": "d.json"}}, {})


def test_empty_file(tmp_path, tiny_tokenizer):
    with pytest.raises(UserError, match=r"d\.json is empty"):
        _prepare(tmp_path, tiny_tokenizer, {"d": {"file_name": "d.json"}}, {"d.json": "[]"})


def test_missing_column_names_file_row_and_column(tmp_path, tiny_tokenizer):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c"}]
    with pytest.raises(UserError) as caught:
        _prepare(tmp_path, tiny_tokenizer, {"d": {"file_name": "d.json"}}, {"d.json": json.dumps(rows)})
    message = str(caught.value)
    assert "d.json row 2 column 'output'" in message and "missing" in message
    assert "\n" not in message


def test_csv_empty_cell(tmp_path, tiny_tokenizer):
    info = {"d": {"file_name": "d.csv", "columns": {"prompt": "human", "response": "assistant"}}}
    csv_text = "category,human,assistant\nqa,Hi,Hello\nqa,,Hello\n"
    with pytest.raises(UserError, match=r"d\.csv row 2 column 'human'.*empty"):
        _prepare(tmp_path, tiny_tokenizer, info, {"d.csv": csv_text})


def test_sharegpt_wrong_role(tmp_path, tiny_tokenizer):
    rows = [{"conversations": [{"from": "gpt", "value": "Hi"}]}]
    info = {"d": {"file_name": "d.json", "formatting": "sharegpt"}}
    with pytest.raises(UserError, match=r"row 1 column 'conversations'.*message 1 has from='gpt'"):
        _prepare(tmp_path, tiny_tokenizer, info, {"d.json": json.dumps(rows)})


def test_sharegpt_must_end_with_assistant(tmp_path, tiny_tokenizer):
    rows = [{"conversations": [{"from": "human", "value": "Hi"}]}]
    info = {"d": {"file_name": "d.json", "formatting": "sharegpt"}}
    with pytest.raises(UserError, match="end with an assistant message"):
        _prepare(tmp_path, tiny_tokenizer, info, {"d.json": json.dumps(rows)})


def test_bad_jsonl_line(tmp_path, tiny_tokenizer):
    text = '{"instruction": "a", "output": "b"}\n{"instruction": \n'
    with pytest.raises(UserError, match=r"d\.jsonl line 2 is not valid JSON"):
        _prepare(tmp_path, tiny_tokenizer, {"d": {"file_name": "d.jsonl"}}, {"d.jsonl": text})


def test_unknown_dataset_and_hub_sources(tmp_path, tiny_tokenizer, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(UserError, match="dataset 'other' is not in"):
        _prepare(tmp_path, tiny_tokenizer, {"d": {"file_name": "d.json"}}, {}, name="other")
    with pytest.raises(UserError, match="neither in the local Hugging Face cache nor reachable") as caught:
        _prepare(tmp_path, tiny_tokenizer, {"d": {"hf_hub_url": "org/data"}}, {})
    assert "\n" not in caught.value.message and "set file_name" in caught.value.message
    with pytest.raises(UserError, match="needs the modelscope package"):
        _prepare(tmp_path, tiny_tokenizer, {"d": {"ms_hub_url": "org/data"}}, {})
    with pytest.raises(UserError, match="needs the openmind package"):
        _prepare(tmp_path, tiny_tokenizer, {"d": {"om_hub_url": "org/data"}}, {})
    with pytest.raises(UserError, match="cannot reach; copy it to a local file"):
        _prepare(tmp_path, tiny_tokenizer, {"d": {"cloud_file_name": "s3://bucket/d.json"}}, {})


def test_missing_dataset_dir_and_info(tmp_path, tiny_tokenizer):
    spec = {"dataset": "d", "dataset_dir": str(tmp_path / "nope")}
    with pytest.raises(UserError, match="is not a directory"):
        prepare_datasets(spec, tiny_tokenizer, TEMPLATE, stage="sft")
    with pytest.raises(UserError, match="no dataset_info.json in"):
        prepare_datasets(
            {"dataset": "d", "dataset_dir": str(tmp_path)}, tiny_tokenizer, TEMPLATE, stage="sft"
        )


def test_folder_of_files_and_jsonl_in_json(tmp_path, tiny_tokenizer):
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    (folder / "b.json").write_text(
        '{"instruction": "c", "output": "d"}\n{"instruction": "e", "output": "f"}\n'
    )
    data = _prepare(tmp_path, tiny_tokenizer, {"d": {"file_name": "parts"}}, {})
    assert data.num_examples == 3
