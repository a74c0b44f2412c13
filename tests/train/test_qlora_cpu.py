"""QLoRA (bitsandbytes 4-bit nf4, double quant) on CPU, and a quantization this machine cannot do."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tq_train_helpers import assert_learns, reload_adapter_and_generate, run_in_process, write_task

QLORA = {
    "quantization_bit": 4,
    "quantization_method": "bnb",
    "quantization_type": "nf4",
    "double_quantization": True,
}


@pytest.mark.slow
def test_qlora_nf4_double_quant_trains_and_reloads(tmp_path):
    run_dir = tmp_path / "qlora"
    assert run_in_process(write_task(run_dir, **QLORA, optim="paged_adamw_8bit")) == 0
    assert_learns(run_dir)
    config = json.loads((run_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    # The adapter reloads on a base quantized the same way and generates.
    import torch
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )
    reload_adapter_and_generate(run_dir, quantization_config=quantization, device_map={"": "cpu"})


def _engine(task_yaml):
    """Run the engine as the runner does: stdout and stderr into train.log."""
    with (task_yaml.parent / "train.log").open("wb") as log:
        return subprocess.run(
            [sys.executable, "-m", "tunequeue.train", str(task_yaml)],
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=300,
        ).returncode


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"quantization_bit": 4, "quantization_method": "hqq"}, "hqq"),
        ({"quantization_bit": 8, "quantization_method": "eetq"}, "eetq"),
    ],
)
def test_impossible_quantization_is_one_line_exit_2(tmp_path, settings, words):
    run_dir = tmp_path / "bad"
    task = write_task(run_dir, **settings)
    assert _engine(task) == 2
    lines = (run_dir / "train.log").read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and words in lines[0]
    assert sorted(p.name for p in run_dir.iterdir()) == ["task.yaml", "train.log"]
