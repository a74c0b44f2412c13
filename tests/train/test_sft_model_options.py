"""Model options this machine cannot honour are refused with one sentence before anything loads."""

from __future__ import annotations

import pytest

from tunequeue.core.errors import UserError
from tunequeue.core.spec import TaskSpec
from tunequeue.train.model import check_model_options, load_config, resolve_precision

BASE = {"task_name": "opts", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}


def _spec(**overrides):
    return TaskSpec.from_mapping({**BASE, **overrides})


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"quantization_bit": 4, "quantization_method": "hqq"}, "'hqq' package"),
        ({"quantization_bit": 8, "quantization_method": "eetq"}, "'eetq' package"),
        ({"flash_attn": "fa2"}, "flash-attn"),
        ({"booster": "flashattn2"}, "flash-attn"),
        ({"booster": "unsloth"}, "unsloth"),
        ({"booster": "liger_kernel"}, "liger-kernel"),
    ],
)
def test_unavailable_options_are_one_sentence(overrides, words):
    with pytest.raises(UserError) as caught:
        check_model_options(_spec(**overrides))
    assert words in caught.value.message
    assert "\n" not in caught.value.message


def test_bnb_quantization_is_available_on_cpu():
    check_model_options(_spec(quantization_bit=4))
    check_model_options(_spec(quantization_bit=8))


def test_auto_precision_is_fp32_on_cpu():
    import torch

    precision = resolve_precision(_spec())
    assert precision.name == "fp32" and precision.load_dtype == torch.float32
    assert not precision.bf16 and not precision.fp16


@pytest.mark.parametrize("kind", ["linear", "dynamic", "yarn", "llama3"])
def test_rope_scaling_keeps_theta_and_stretches(kind):
    config = load_config(_spec(rope_scaling=kind, cutoff_len=8192))
    params = config.rope_parameters
    assert params["rope_type"] == kind
    assert params["rope_theta"] == 10000.0
    assert params["factor"] == 4.0  # 8192 / 2048
    if kind in ("yarn", "llama3"):
        assert params["original_max_position_embeddings"] == 2048
        assert config.max_position_embeddings == 8192


def test_import_of_train_package_is_light():
    import subprocess
    import sys

    code = "import sys, tunequeue.train, tunequeue.train.__main__; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_trust_remote_code_reaches_the_loaders(tmp_path, monkeypatch):
    """A model whose config.json maps to its own Python classes loads only with trust_remote_code."""
    import json
    import shutil

    from tunequeue.core.errors import UserError as Refused
    from tunequeue.train.assets import bundled_model_dir
    from tunequeue.train.model import load_model, load_tokenizer

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # where transformers copies the model's code
    model_dir = tmp_path / "custom"
    shutil.copytree(bundled_model_dir(), model_dir)
    (model_dir / "configuration_tiny.py").write_text(
        "from transformers import LlamaConfig\n\n\nclass TinyCustomConfig(LlamaConfig):\n"
        '    model_type = "tiny_custom"\n'
    )
    (model_dir / "modeling_tiny.py").write_text(
        "from transformers import LlamaForCausalLM\n\nfrom .configuration_tiny import TinyCustomConfig\n\n\n"
        "class TinyCustomForCausalLM(LlamaForCausalLM):\n    config_class = TinyCustomConfig\n"
    )
    config = json.loads((model_dir / "config.json").read_text())
    config.update(
        model_type="tiny_custom",
        architectures=["TinyCustomForCausalLM"],
        auto_map={
            "AutoConfig": "configuration_tiny.TinyCustomConfig",
            "AutoModelForCausalLM": "modeling_tiny.TinyCustomForCausalLM",
        },
    )
    (model_dir / "config.json").write_text(json.dumps(config))

    trusted = _spec(model_name_or_path=str(model_dir), extra={"trust_remote_code": True})
    model = load_model(trusted, resolve_precision(trusted))
    assert type(model).__name__ == "TinyCustomForCausalLM"
    assert load_tokenizer(trusted).pad_token is not None
    untrusted = _spec(model_name_or_path=str(model_dir))
    with pytest.raises(Refused, match="set trust_remote_code: true"):
        load_model(untrusted, resolve_precision(untrusted))
