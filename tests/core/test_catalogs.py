"""The model and dataset catalogs behind the pickers, on real folders: model roots, a Hugging Face
cache laid out as huggingface_hub writes it, dataset_info.json files with data in every format."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from tunequeue.core import dataset_catalog, model_catalog, settings_file
from tunequeue.core.errors import UserError

QWEN_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}


def _model(directory: Path, config: dict, **files: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config))
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def _safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        size = 2
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An HF hub cache with one model whose refs/main points at the newer of two snapshots."""
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--Qwen--Qwen2.5-0.5B-Instruct"
    _model(repo / "snapshots" / "aaa", {**QWEN_CONFIG, "model_type": "old"})
    _model(repo / "snapshots" / "bbb", QWEN_CONFIG)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("bbb")
    (cache / "datasets--someone--data").mkdir(parents=True)  # not a model: ignored
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return cache


def test_hub_cache_location_follows_the_environment(tmp_path, monkeypatch):
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert model_catalog.hub_cache_dir() == tmp_path / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_catalog.hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfh"))
    assert model_catalog.hub_cache_dir() == tmp_path / "hfh" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "direct"))
    assert model_catalog.hub_cache_dir() == tmp_path / "direct"


def test_models_from_roots_and_hub_cache_with_architecture_size_and_template(tmp_path, hub_cache):
    root = tmp_path / "models"
    exact = _model(
        root / "tiny-mistral",
        {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 8},
    )
    _safetensors(exact / "model.safetensors", {"a": [10, 20], "b": [5]})
    sharded = _model(
        root / "org" / "llama3-8b",
        {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": 128256,
            "torch_dtype": "bfloat16",
        },
    )
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 16_060_522_496}, "weight_map": {}})
    )
    _model(
        root / "custom",
        {
            "architectures": ["MyLM"],
            "model_type": "mine",
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "vocab_size": 100,
        },
        **{"tokenizer_config.json": json.dumps({"chat_template": "{{ messages }}"})},
    )
    _model(root / "plain", {"model_type": "mine"})
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{not json")
    (root / "notes").mkdir()

    found = {choice.value: choice for choice in model_catalog.list_models([root])}

    assert list(found)[0] == "tunequeue/tiny-llama"
    bundled = found["tunequeue/tiny-llama"]
    assert (bundled.source, bundled.architecture, bundled.params_exact) == (
        "bundled",
        "LlamaForCausalLM",
        True,
    )
    mistral = found[str(exact)]
    assert (mistral.params, mistral.params_text, mistral.template) == (205, "205", "mistral")
    llama = found[str(sharded)]
    assert llama.params == 8_030_261_248 and llama.params_text == "≈8.0B" and llama.template == "llama3"
    custom = found[str(root / "custom")]
    assert custom.params is not None and not custom.params_exact and custom.template == "auto"
    assert found[str(root / "plain")].template is None and found[str(root / "plain")].params is None
    assert str(root / "broken") not in found and str(root / "notes") not in found
    hub = found["Qwen/Qwen2.5-0.5B-Instruct"]
    assert (
        hub.source == "hub"
        and hub.directory == hub_cache / "models--Qwen--Qwen2.5-0.5B-Instruct" / "snapshots" / "bbb"
    )
    assert (hub.architecture, hub.template, hub.params_text) == ("Qwen2ForCausalLM", "qwen", "≈494M")


def test_a_root_that_is_itself_a_model_and_a_missing_root(tmp_path, hub_cache):
    model = _model(tmp_path / "one", QWEN_CONFIG)
    values = [c.value for c in model_catalog.list_models([model, tmp_path / "absent"])]
    assert values == ["tunequeue/tiny-llama", str(model), "Qwen/Qwen2.5-0.5B-Instruct"]


def test_suggested_template_for_a_field_value(tmp_path, hub_cache):
    model = _model(tmp_path / "m", {**QWEN_CONFIG, "model_type": "gemma2"})
    assert model_catalog.suggested_template_for(str(model)) == "gemma2"
    assert model_catalog.suggested_template_for("Qwen/Qwen2.5-0.5B-Instruct") == "qwen"
    assert model_catalog.suggested_template_for("tunequeue/tiny-llama") == "auto"
    assert model_catalog.suggested_template_for("/no/such/model") is None
    assert model_catalog.suggested_template_for("") is None


def test_every_suggested_template_exists():
    from tunequeue.train.templates import template_names

    names = set(template_names())
    suggested = set(model_catalog.TEMPLATE_BY_MODEL_TYPE.values())
    suggested |= {
        name for by_vocab in model_catalog._TEMPLATE_BY_VOCAB.values() for name in by_vocab.values()
    }
    assert suggested <= names, suggested - names


def test_model_roots_from_settings_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TUNEQUEUE_MODEL_ROOTS", raising=False)
    assert settings_file.model_roots() == []
    settings_file.write_settings({"model_roots": ["~/models", str(tmp_path / "data")]})
    assert settings_file.model_roots() == [Path("~/models").expanduser(), tmp_path / "data"]
    monkeypatch.setenv(
        "TUNEQUEUE_MODEL_ROOTS", os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")])
    )
    assert settings_file.model_roots() == [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(UserError, match="model_roots"):
        settings_file.write_settings({"model_roots": "not-a-list"})


def test_bundled_datasets_with_format_and_rows():
    found = {choice.name: choice for choice in dataset_catalog.list_datasets(None)}
    assert found["demo_alpaca"].kind == "alpaca" and found["demo_alpaca"].rows == 120
    assert found["demo_pairwise"].kind == "alpaca pairwise"
    assert found["demo_kto"].kind == "sharegpt kto"
    assert found["demo_firefly"].rows == 60  # CSV: header not counted
    assert found["demo_firefly_jsonl"].rows == 40


def test_datasets_of_a_folder_every_source_and_the_count_cache(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.json").write_text(json.dumps([{"instruction": "x", "output": "y"}] * 3))
    (tmp_path / "b.jsonl").write_text('{"messages": []}\n\n{"messages": []}\n')
    (tmp_path / "c.csv").write_text('instruction,output\n"multi\nline",y\nz,w\n')
    (tmp_path / "parts").mkdir()
    pq.write_table(
        pa.table({"instruction": ["a"] * 5, "output": ["b"] * 5}), tmp_path / "parts" / "p0.parquet"
    )
    pq.write_table(
        pa.table({"instruction": ["a"] * 2, "output": ["b"] * 2}), tmp_path / "parts" / "p1.parquet"
    )
    info = {
        "a": {"file_name": "a.json"},
        "b": {"file_name": "b.jsonl", "formatting": "sharegpt"},
        "c": {"file_name": "c.csv"},
        "parts": {"file_name": "parts"},
        "hub": {"hf_hub_url": "someone/data"},
        "gone": {"file_name": "missing.json"},
    }
    (tmp_path / "dataset_info.json").write_text(json.dumps(info))

    found = {c.name: c for c in dataset_catalog.list_datasets(str(tmp_path))}

    assert list(found) == list(info)
    rows = {name: choice.rows for name, choice in found.items()}
    assert rows == {"a": 3, "b": 2, "c": 2, "parts": 7, "hub": None, "gone": None}
    assert found["b"].kind == "sharegpt" and found["hub"].source == "hf_hub_url"

    (tmp_path / "a.json").write_text(json.dumps([{"instruction": "x", "output": "y"}] * 4))
    os.utime(tmp_path / "a.json", ns=(1, 1))
    assert {c.name: c.rows for c in dataset_catalog.list_datasets(str(tmp_path))}["a"] == 4


def test_missing_dataset_info_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no dataset_info.json"):
        dataset_catalog.list_datasets(str(tmp_path))
