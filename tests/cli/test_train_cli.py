"""`tunequeue train FILE`: a foreground run in a new manual run dir, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

TASK = {
    "task_name": "cli-demo",
    "model_name_or_path": "tunequeue/tiny-llama",
    "dataset": "demo_alpaca",
    "max_samples": 4,
    "cutoff_len": 48,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "num_train_epochs": 1,
    "logging_steps": 1,
    "learning_rate": 1e-3,
}


def _run(args, home, timeout=300):
    env = {**os.environ, "TUNEQUEUE_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tunequeue", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.mark.slow
def test_train_creates_manual_run_dir_and_trains(tmp_path):
    home = tmp_path / "home"
    task_file = tmp_path / "task.yaml"
    task_file.write_text(yaml.safe_dump(TASK))
    done = _run(["train", str(task_file)], home)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = list((home / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("manual-") and runs[0].name.endswith("-cli-demo")
    run_dir = runs[0]
    assert f"run dir: {run_dir}" in done.stdout
    assert "step 2/2" in done.stdout  # progress printed to the terminal
    resolved = yaml.safe_load((run_dir / "task.yaml").read_text())
    assert resolved["task_name"] == "cli-demo" and resolved["learning_rate"] == 1e-3
    assert "lora_rank" in resolved  # resolved: defaults written out
    assert "step 2/2" in (run_dir / "train.log").read_text()
    assert json.loads((run_dir / "train_results.json").read_text())["total_tokens"] > 0
    assert (run_dir / "adapter_model.safetensors").is_file()


def test_train_bad_task_is_one_line_exit_2(tmp_path):
    home = tmp_path / "home"
    task_file = tmp_path / "task.yaml"
    task_file.write_text(yaml.safe_dump({**TASK, "learning_rate": 5.0}))
    done = _run(["train", str(task_file)], home, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "learning_rate" in done.stderr
    assert "Traceback" not in done.stderr


def test_train_missing_file_is_one_line_exit_2(tmp_path):
    done = _run(["train", str(tmp_path / "nope.yaml")], tmp_path / "home", timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "nope.yaml" in done.stderr
