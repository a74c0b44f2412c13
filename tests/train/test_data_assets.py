"""The bundled tiny model, tokenizer and demo datasets load and fit the contract."""

from __future__ import annotations

import json

import pytest

from tunequeue.core.errors import UserError
from tunequeue.train.assets import bundled_dataset_dir, bundled_model_dir, resolve_model_path


def test_resolve_model_path_maps_bundled_name_and_accepts_local_model_dirs(tmp_path):
    assert resolve_model_path("tunequeue/tiny-llama") == str(bundled_model_dir())
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 2, "num_attention_heads": 2}))
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_resolve_model_path_refuses_a_directory_without_config(tmp_path):
    with pytest.raises(UserError, match="has no config.json"):
        resolve_model_path(str(tmp_path))


def test_uncached_hub_names_are_downloaded_at_start_unless_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert resolve_model_path("meta-llama/Llama-3-8B") == "meta-llama/Llama-3-8B"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE=1 forbids"):
        resolve_model_path("meta-llama/Llama-3-8B")


def test_bundled_files_are_small_and_complete():
    model_dir = bundled_model_dir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (model_dir / name).is_file(), name
    total = sum(p.stat().st_size for p in model_dir.parent.rglob("*") if p.is_file())
    assert total < 5_000_000


def test_dataset_info_lists_every_demo_dataset_with_existing_files():
    info = json.loads((bundled_dataset_dir() / "dataset_info.json").read_text())
    expected = {
        "demo_alpaca", "demo_sharegpt", "demo_messages", "demo_firefly", "demo_firefly_jsonl",
        "demo_pairwise", "demo_kto", "demo_pretrain",
    }
    assert expected <= set(info)
    for entry in info.values():
        assert (bundled_dataset_dir() / entry["file_name"]).is_file()
    assert info["demo_pairwise"]["ranking"] is True
    assert info["demo_kto"]["columns"]["kto_tag"] == "kto_tag"


def test_tiny_model_forward_and_chat_template(tiny_model_dir, tiny_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert 100_000 < sum(p.numel() for p in model.parameters()) < 2_000_000
    assert model.config.vocab_size == len(tiny_tokenizer)
    assert tiny_tokenizer.pad_token == "<pad>"
    text = tiny_tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert "<|im_start|>user\nHi<|im_end|>\n" in text
    ids = tiny_tokenizer("What is 3 plus 4? 法国的首都是哪里？", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tiny_tokenizer))
    assert tiny_tokenizer.decode(ids[0]) == "What is 3 plus 4? 法国的首都是哪里？"
