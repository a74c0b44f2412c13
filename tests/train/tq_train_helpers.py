"""Helpers shared by the training-engine tests: write a task into a run dir, run it, read its outputs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

# A short overfit run on 8 examples: 4 steps per epoch, 12 epochs = 48 optimizer steps.
OVERFIT = {
    "task_name": "overfit",
    "model_name_or_path": "tunequeue/tiny-llama",
    "dataset": "demo_alpaca",
    "stage": "sft",
    "finetuning_type": "lora",
    "max_samples": 8,
    "cutoff_len": 64,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "num_train_epochs": 12,
    "learning_rate": 1e-2,
    "lr_scheduler_type": "constant",
    "warmup_ratio": 0.0,
    "lora_rank": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "logging_steps": 1,
    "save_steps": 1000,
    "seed": 7,
}


def write_task(run_dir: Path, **overrides: Any) -> Path:
    """Write OVERFIT updated with `overrides` (None values removed) as run_dir/task.yaml."""
    run_dir.mkdir(parents=True, exist_ok=True)
    task = {**OVERFIT, **overrides}
    task = {k: v for k, v in task.items() if v is not None}
    path = run_dir / "task.yaml"
    path.write_text(yaml.safe_dump(task, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def single_thread() -> None:
    """One intra-op thread: on a shared 2-core machine, tiny matmuls run ~20x faster than with two."""
    import torch

    torch.set_num_threads(1)


def run_in_process(task_yaml: Path) -> int:
    """Run the engine in this process (same code path as `python -m tunequeue.train`)."""
    from tunequeue.train.runtime import run_task_file

    single_thread()
    return run_task_file(task_yaml)


def start_subprocess(task_yaml: Path) -> subprocess.Popen:
    """Start `python -m tunequeue.train task.yaml` as the runner does: own session, output to train.log."""
    log = (task_yaml.parent / "train.log").open("ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tunequeue.train", str(task_yaml)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )


def read_log(run_dir: Path) -> list[dict]:
    """All records of trainer_log.jsonl."""
    path = run_dir / "trainer_log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def losses(run_dir: Path) -> list[float]:
    """Training losses in step order."""
    return [r["loss"] for r in read_log(run_dir) if "loss" in r]


def assert_learns(run_dir: Path) -> None:
    """Loss is finite everywhere and the last steps are clearly below the first ones."""
    values = losses(run_dir)
    assert len(values) >= 6, values
    assert all(math.isfinite(v) for v in values), values
    head = sum(values[:3]) / 3
    tail = sum(values[-3:]) / 3
    assert tail < head - 0.3, f"loss did not decrease: first {values[:3]} last {values[-3:]}"


def generate_from(model: Any, tokenizer: Any) -> list[int]:
    """Greedy-generate a few tokens from a short prompt and return the new ids."""
    import torch

    inputs = tokenizer("What is 2+3?", return_tensors="pt")
    with torch.no_grad():
        output = model.generate(
            **inputs, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    new = output[0, inputs["input_ids"].shape[1] :].tolist()
    assert new, "nothing generated"
    return new


def reload_adapter_and_generate(run_dir: Path, **load_kwargs: Any) -> list[int]:
    """Load the bundled base plus the adapter saved in run_dir and generate."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunequeue.train.assets import bundled_model_dir

    assert (run_dir / "adapter_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(run_dir))
    base = AutoModelForCausalLM.from_pretrained(str(bundled_model_dir()), **load_kwargs)
    model = PeftModel.from_pretrained(base, str(run_dir))
    model.eval()
    return generate_from(model, tokenizer)


def sample_loss(model: Any, tokenizer: Any, count: int = 8) -> float:
    """Mean LM loss of `model` on the first `count` demo_alpaca examples in the tokenizer's chat format."""
    import torch

    from tunequeue.train.assets import bundled_dataset_dir

    rows = json.loads((bundled_dataset_dir() / "demo_alpaca.json").read_text(encoding="utf-8"))[:count]
    total = 0.0
    for row in rows:
        prompt = (row["instruction"] + "\n" + row.get("input", "")).strip()
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}],
            tokenize=False,
        )
        ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :64]
        with torch.no_grad():
            total += float(model(input_ids=ids, labels=ids).loss)
    return total / len(rows)


def base_model_and_tokenizer() -> tuple[Any, Any]:
    """The bundled tiny model and its tokenizer, untouched."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunequeue.train.assets import bundled_model_dir

    path = str(bundled_model_dir())
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
