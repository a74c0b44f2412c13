"""sft with every fine-tuning type on the tiny model: loss falls, saved weights reload and generate."""

from __future__ import annotations

import json
import math

import pytest
from tq_train_helpers import (
    assert_learns,
    base_model_and_tokenizer,
    generate_from,
    losses,
    reload_adapter_and_generate,
    run_in_process,
    sample_loss,
    write_task,
)

pytestmark = pytest.mark.slow

VARIANTS = {
    "full": {"finetuning_type": "full", "learning_rate": 2e-3},
    "freeze": {
        "finetuning_type": "freeze",
        "freeze_trainable_layers": 1,
        "freeze_extra_modules": "lm_head",
        "learning_rate": 3e-3,
    },
    "lora": {},
    "rslora": {"use_rslora": True, "learning_rate": 5e-3},
    "dora": {"use_dora": True},
    "pissa": {"pissa_init": True, "pissa_iter": 4, "pissa_convert": True},
    "loraplus": {"loraplus_lr_ratio": 4.0, "learning_rate": 2e-3},
}


@pytest.fixture(scope="module")
def base_loss():
    model, tokenizer = base_model_and_tokenizer()
    return sample_loss(model, tokenizer)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """One plain LoRA run shared by the lora test and the continue-from-adapter test."""
    run_dir = tmp_path_factory.mktemp("lora-run")
    assert run_in_process(write_task(run_dir)) == 0
    return run_dir


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_sft_variant_learns_and_reloads(variant, tmp_path, base_loss, lora_run):
    if variant == "lora":
        run_dir = lora_run
    else:
        run_dir = tmp_path / variant
        assert run_in_process(write_task(run_dir, **VARIANTS[variant])) == 0
    assert_learns(run_dir)
    results = json.loads((run_dir / "train_results.json").read_text())
    assert results["total_tokens"] > 0
    assert (run_dir / "training_loss.png").stat().st_size > 1000
    assert (run_dir / "tokenizer.json").is_file()
    if VARIANTS[variant].get("finetuning_type") in ("full", "freeze"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(str(run_dir))
        tokenizer = AutoTokenizer.from_pretrained(str(run_dir))
        generate_from(model, tokenizer)
    else:
        reload_adapter_and_generate(run_dir)
        from peft import PeftModel

        base, tokenizer = base_model_and_tokenizer()
        model = PeftModel.from_pretrained(base, str(run_dir))
    # The reloaded weights are the trained ones: they fit the training examples better than the base.
    assert sample_loss(model, tokenizer) < base_loss - 0.1


def test_sft_pissa_convert_gives_plain_lora(tmp_path):
    run_dir = tmp_path / "pissa"
    assert (
        run_in_process(
            write_task(run_dir, pissa_init=True, pissa_iter=-1, pissa_convert=True, num_train_epochs=1)
        )
        == 0
    )
    config = json.loads((run_dir / "adapter_config.json").read_text())
    # The converted adapter applies to the original base: plain init, doubled rank.
    assert config["r"] == 16
    assert config["init_lora_weights"] is True


def test_sft_continues_from_adapter(tmp_path):
    from peft import PeftModel

    short = tmp_path / "short"
    assert run_in_process(write_task(short, num_train_epochs=2)) == 0
    run_dir = tmp_path / "continued"
    assert run_in_process(write_task(run_dir, adapter_name_or_path=str(short), num_train_epochs=8)) == 0
    continued = losses(run_dir)
    assert all(math.isfinite(v) for v in continued)
    assert sum(continued[-4:]) / 4 < sum(continued[:4]) / 4 - 0.1
    # Evaluated on the same examples, the continued adapter fits better than the one it started from.
    fits = {}
    for name in ("short", "continued"):
        base, tokenizer = base_model_and_tokenizer()
        fits[name] = sample_loss(PeftModel.from_pretrained(base, str(tmp_path / name)), tokenizer)
    assert fits["continued"] < fits["short"] - 0.02, fits
    reload_adapter_and_generate(run_dir)
