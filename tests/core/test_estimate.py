"""VRAM estimate: calibration against measured peaks and the ranges published for common setups."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunequeue.core.errors import UserError
from tunequeue.core.estimate import (
    estimate_vram,
    fits_on,
    lora_target_modules,
    model_shape,
    read_model_config,
)

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))


def config(name: str) -> dict:
    return read_model_config(MODELS / name)


def allocated(estimate) -> float:
    """What torch's max_memory_allocated would report: everything but the CUDA context."""
    return estimate.total_gib - estimate.breakdown["cuda_context"]


def test_parameter_counts_match_published_sizes():
    # Published sizes: Llama-3.2-1B 1.24 B, Llama-3-8B 8.03 B, Qwen2.5-1.5B 1.54 B.
    assert model_shape(config("llama-3.2-1b")).total_params() / 1e9 == pytest.approx(1.236, rel=0.01)
    assert model_shape(config("llama-3-8b")).total_params() / 1e9 == pytest.approx(8.03, rel=0.01)
    assert model_shape(config("qwen2.5-1.5b")).total_params() / 1e9 == pytest.approx(1.54, rel=0.01)


@pytest.mark.parametrize(
    ("checkpointing_off", "measured_gib"),
    [(False, 12.4), (True, 24.4)],
)
def test_calibration_against_measured_h100_peaks(checkpointing_off, measured_gib):
    # Measured on one H100 with LLaMA-Factory, torch max_memory_allocated (notes/VRAM-MEASURED.md):
    # Llama-3.2-1B, LoRA r8 all linear, AdamW, bf16, batch 8 x cutoff 1024.
    task = {
        "finetuning_type": "lora",
        "lora_rank": 8,
        "lora_target": "all",
        "compute_type": "bf16",
        "per_device_train_batch_size": 8,
        "cutoff_len": 1024,
        "disable_gradient_checkpointing": checkpointing_off,
    }
    estimate = estimate_vram(task, config("llama-3.2-1b"))
    assert allocated(estimate) == pytest.approx(measured_gib, rel=0.25)
    assert estimate.total_gib == pytest.approx(measured_gib + 0.75, rel=0.25)
    assert estimate.breakdown["weights"] == pytest.approx(2.3, rel=0.05)  # "weights ≈ 2.3 GiB"


# Published ranges: LLaMA-Factory README, "Hardware Requirement" table (estimated VRAM per method):
#   Full (bf16 or fp16, AMP) 7B 120 GB = 18x GB · Full (pure_bf16) 7B 60 GB = 8x GB ·
#   Freeze/LoRA 16-bit 7B 16 GB = 2x GB · QLoRA 8-bit 7B 10 GB = x GB · QLoRA 4-bit 7B 6 GB = x/2 GB.
# Those rows are for short sequences and batch 1; Llama 3's 128k vocabulary and Qwen's 152k add logits
# memory on top, so the ranges below run from the table's value to about 1.5x of it (GB → GiB ÷ 1.074).
SHORT_RUN = {"per_device_train_batch_size": 1, "cutoff_len": 1024, "compute_type": "bf16"}
PUBLISHED = [
    ("llama-3-8b", {"finetuning_type": "lora"}, 14.0, 24.0),  # 2x = 16 GB ≈ 14.9 GiB
    ("llama-3-8b", {"finetuning_type": "lora", "quantization_bit": 4}, 4.0, 10.0),  # x/2 (7B: 6 GB)
    ("llama-3-8b", {"finetuning_type": "lora", "quantization_bit": 8}, 8.0, 14.0),  # x = 8 GB (7B: 10 GB)
    ("llama-3-8b", {"finetuning_type": "full"}, 125.0, 160.0),  # 18x = 144 GB ≈ 134 GiB
    ("llama-3-8b", {"finetuning_type": "full", "compute_type": "pure_bf16"}, 55.0, 75.0),  # 8x = 64 GB
    ("qwen2.5-1.5b", {"finetuning_type": "lora"}, 2.8, 7.0),  # 2x = 3.1 GB ≈ 2.9 GiB
    ("qwen2.5-1.5b", {"finetuning_type": "lora", "quantization_bit": 4}, 0.8, 4.5),  # x/2 = 0.8 GB
    ("qwen2.5-1.5b", {"finetuning_type": "full"}, 25.0, 36.0),  # 18x = 27.8 GB ≈ 25.9 GiB
]


@pytest.mark.parametrize(("model", "setup", "low", "high"), PUBLISHED)
def test_published_ranges(model, setup, low, high, capsys):
    estimate = estimate_vram({**SHORT_RUN, **setup}, config(model))
    print("\n".join(estimate.lines()))
    out = capsys.readouterr().out
    assert "weights" in out and "trainable" in out and "activations" in out
    assert low <= estimate.total_gib <= high, (model, setup, estimate.total_gib)


def test_quantization_and_checkpointing_order():
    cfg = config("llama-3-8b")
    lora = estimate_vram(SHORT_RUN, cfg).total_gib
    qlora8 = estimate_vram({**SHORT_RUN, "quantization_bit": 8}, cfg).total_gib
    qlora4 = estimate_vram({**SHORT_RUN, "quantization_bit": 4}, cfg).total_gib
    assert qlora4 < qlora8 < lora
    no_double = estimate_vram({**SHORT_RUN, "quantization_bit": 4, "double_quantization": False}, cfg)
    double = estimate_vram({**SHORT_RUN, "quantization_bit": 4}, cfg)
    assert no_double.breakdown["weights"] > double.breakdown["weights"]
    long_run = {**SHORT_RUN, "per_device_train_batch_size": 4, "cutoff_len": 4096}
    with_ckpt = estimate_vram(long_run, cfg).breakdown["activations"]
    no_ckpt = {**long_run, "disable_gradient_checkpointing": True}
    without = estimate_vram(no_ckpt, cfg).breakdown["activations"]
    assert without > 5 * with_ckpt


def test_optimizers_and_targets():
    cfg = config("qwen2.5-1.5b")
    full = {**SHORT_RUN, "finetuning_type": "full"}
    adamw = estimate_vram(full, cfg).breakdown["trainable"]
    eight_bit = estimate_vram({**full, "optim": "adamw_8bit"}, cfg).breakdown["trainable"]
    adafactor = estimate_vram({**full, "optim": "adafactor"}, cfg).breakdown["trainable"]
    sgd = estimate_vram({**full, "optim": "sgd"}, cfg).breakdown["trainable"]
    assert sgd < adafactor < eight_bit < adamw
    assert lora_target_modules("q_proj,v_proj") == ["q_proj", "v_proj"]
    assert len(lora_target_modules("all")) == 7
    two = estimate_vram({**SHORT_RUN, "lora_target": "q_proj,v_proj"}, cfg).trainable_params
    every = estimate_vram({**SHORT_RUN, "lora_target": "all"}, cfg).trainable_params
    assert 0 < two < every
    # rank x (d_in + d_out) summed over q and v in every layer: 28 x 8 x ((1536 + 1536) + (1536 + 256))
    assert two == 28 * 8 * (3072 + 1792)


def test_stages_add_reference_models():
    cfg = config("qwen2.5-1.5b")
    sft = estimate_vram({**SHORT_RUN, "finetuning_type": "full"}, cfg)
    dpo = estimate_vram({**SHORT_RUN, "finetuning_type": "full", "stage": "dpo"}, cfg)
    orpo = estimate_vram({**SHORT_RUN, "finetuning_type": "full", "stage": "dpo", "pref_loss": "orpo"}, cfg)
    assert dpo.total_gib > orpo.total_gib > sft.total_gib
    rm = estimate_vram({**SHORT_RUN, "stage": "rm"}, cfg)
    assert rm.breakdown["logits"] == 0


def test_multi_gpu_and_fits_on():
    cfg = config("qwen2.5-1.5b")
    estimate = estimate_vram(SHORT_RUN, cfg)
    gpus = [
        {"index": 0, "memory_total_mib": 81559, "memory_used_mib": 80000},
        {"index": 1, "memory_total_mib": 81559, "memory_used_mib": 500},
        {"index": 2, "memory_total_mib": 24576, "memory_used_mib": 0},
    ]
    assert fits_on(estimate, gpus) == [1, 2]
    assert fits_on(estimate, gpus, reserved_mib={2: 22000}) == [1]
    ddp = estimate_vram({**SHORT_RUN, "finetuning_type": "full", "gpu_count": 2}, cfg)
    single = estimate_vram({**SHORT_RUN, "finetuning_type": "full"}, cfg)
    assert ddp.total_gib > single.total_gib


def test_read_model_config_errors(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        read_model_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot read"):
        read_model_config(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "x"}')
    with pytest.raises(UserError, match="hidden_size"):
        estimate_vram({}, read_model_config(tmp_path))
    with pytest.raises(UserError, match="config.json"):
        estimate_vram({}, None)


def test_tiny_model_alias_when_bundled():
    from tunequeue.core.paths import DATA_DIR

    if not (DATA_DIR / "tiny-llama" / "config.json").is_file():
        pytest.skip("bundled tiny model not present")
    estimate = estimate_vram({"cutoff_len": 128}, read_model_config("tunequeue/tiny-llama"))
    assert 0 < estimate.total_gib < 2
