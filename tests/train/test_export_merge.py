"""Export: a LoRA adapter merged into the tiny base gives the same logits; shards, legacy .bin, refusals."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from tq_train_helpers import run_in_process

TOKENS = [[1, 17, 250, 900, 33, 5, 1200, 42]]


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory):
    """A LoRA adapter on the bundled model with random (non-zero) B matrices, so merging changes weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunequeue.train.assets import bundled_model_dir

    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("adapter")
    base = AutoModelForCausalLM.from_pretrained(str(bundled_model_dir()))
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(path))
    AutoTokenizer.from_pretrained(str(bundled_model_dir())).save_pretrained(str(path))
    return path


def _logits(model):
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor(TOKENS)).logits


def _adapter_logits(adapter_dir):
    from tunequeue.train.inference import load_inference_model

    model = load_inference_model("tunequeue/tiny-llama", str(adapter_dir), merge=False)
    assert type(model).__name__.startswith("Peft")
    return _logits(model)


def _base_logits():
    from tunequeue.train.inference import load_inference_model

    return _logits(load_inference_model("tunequeue/tiny-llama"))


def _export_task(run_dir, adapter_dir, **overrides):
    run_dir.mkdir(parents=True, exist_ok=True)
    task = {
        "task_name": "export",
        "model_name_or_path": "tunequeue/tiny-llama",
        "dataset": "demo_alpaca",
        "adapter_name_or_path": str(adapter_dir),
        "do_train": False,
        "export_dir": "merged",
        **overrides,
    }
    path = run_dir / "task.yaml"
    path.write_text(yaml.safe_dump(task), encoding="utf-8")
    return path


@pytest.mark.slow
def test_export_job_merges_the_adapter(tmp_path, adapter_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir = tmp_path / "job"
    task = _export_task(run_dir, adapter_dir, export_hub_model_id="me/tiny-merged")
    assert run_in_process(task) == 0
    merged_dir = run_dir / "merged"
    assert (merged_dir / "model.safetensors").is_file()
    assert (merged_dir / "tokenizer_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir))
    expected = _adapter_logits(adapter_dir)
    assert (_logits(merged) - expected).abs().max() < 1e-4
    assert (_base_logits() - expected).abs().max() > 1e-3  # the adapter really changes the model
    AutoTokenizer.from_pretrained(str(merged_dir))
    info = json.loads((merged_dir / "export_info.json").read_text())
    assert info["hub_model_id"] == "me/tiny-merged"
    assert info["upload_command"] == f"hf upload me/tiny-merged {merged_dir} ."


@pytest.mark.parametrize("legacy", [False, True])
def test_shard_size_is_honoured_and_formats_reload(tmp_path, adapter_dir, legacy):
    from transformers import AutoModelForCausalLM

    from tunequeue.train.export import export_model

    limit = 200_000
    target = export_model(
        "tunequeue/tiny-llama",
        str(adapter_dir),
        tmp_path / "out",
        max_shard_size="200KB",
        legacy_format=legacy,
    )
    suffix = ".bin" if legacy else ".safetensors"
    index = json.loads(
        (target / f"{'pytorch_model.bin' if legacy else 'model.safetensors'}.index.json").read_text()
    )
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and all(name.endswith(suffix) for name in shards)
    for shard in shards:
        tensors = [name for name, file in index["weight_map"].items() if file == shard]
        # A shard stays under the limit unless it holds one tensor that alone is larger.
        assert os.path.getsize(target / shard) <= limit * 1.02 or len(tensors) == 1, shard
    if legacy:
        assert not list(target.glob("*.safetensors"))
    merged = AutoModelForCausalLM.from_pretrained(str(target))
    assert (_logits(merged) - _adapter_logits(adapter_dir)).abs().max() < 1e-4


def test_quantized_export_without_gptq_library_is_refused(tmp_path, adapter_dir, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("gptqmodel", "auto_gptq") else real(name, *a),
    )
    calibration = tmp_path / "calib.txt"
    calibration.write_text("some text\n", encoding="utf-8")
    run_dir = tmp_path / "quant"
    task = _export_task(
        run_dir, adapter_dir, export_quantization_bit=4, export_quantization_dataset=str(calibration)
    )
    assert run_in_process(task) == 2
    assert not (run_dir / "merged").exists()


def test_export_cli_merges_and_prints_the_push_command(tmp_path, adapter_dir):
    import subprocess
    import sys

    out = tmp_path / "cli-out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunequeue",
            "export",
            "--model",
            "tunequeue/tiny-llama",
            "--adapter",
            str(adapter_dir),
            "--export-dir",
            str(out),
            "--hub-model-id",
            "me/x",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"hf upload me/x {out}" in result.stdout
    assert (out / "model.safetensors").is_file()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunequeue",
            "export",
            "--model",
            str(tmp_path / "nope"),
            "--export-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: model_name_or_path")
