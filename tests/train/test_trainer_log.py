"""trainer_log.jsonl schema, end-of-run files and eval during training (val_size)."""

from __future__ import annotations

import json
import math

import pytest
from tq_train_helpers import read_log, run_in_process, write_task

pytestmark = pytest.mark.slow

TRAIN_KEYS = {
    "current_steps": int,
    "total_steps": int,
    "loss": float,
    "lr": float,
    "epoch": float,
    "percentage": float,
    "elapsed_time": str,
    "remaining_time": str,
    "elapsed_seconds": float,
    "remaining_seconds": float,
    "throughput": float,
    "total_tokens": int,
}


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("eval-run")
    task = write_task(run_dir, max_samples=12, val_size=4, num_train_epochs=4, logging_steps=2, eval_steps=4)
    assert run_in_process(task) == 0
    return run_dir


def test_trainer_log_schema(eval_run):
    records = read_log(eval_run)
    train = [r for r in records if "loss" in r]
    assert len(train) >= 4
    for record in train:
        for key, kind in TRAIN_KEYS.items():
            assert key in record, (key, record)
            value = record[key]
            assert isinstance(value, (int, float) if kind is float else kind), (key, value)
        assert math.isfinite(record["loss"])
        assert 0 < record["percentage"] <= 100
        assert record["throughput"] > 0
        assert record["current_steps"] % 2 == 0  # logging_steps 2
        # H:MM:SS like LLaMA-Factory
        assert record["elapsed_time"].count(":") == 2
    steps = [r["current_steps"] for r in train]
    assert steps == sorted(steps)
    tokens = [r["total_tokens"] for r in train]
    assert tokens == sorted(tokens) and tokens[0] > 0
    assert train[-1]["current_steps"] == train[-1]["total_steps"]
    # each line was complete JSON ending with a newline (flushed per line)
    assert (eval_run / "trainer_log.jsonl").read_text().endswith("\n")


def test_val_size_gives_eval_loss(eval_run):
    evals = [r for r in read_log(eval_run) if "eval_loss" in r]
    assert evals, "no eval_loss line"
    assert all(math.isfinite(r["eval_loss"]) for r in evals)
    assert {r["current_steps"] for r in evals} >= {4}
    results = json.loads((eval_run / "train_results.json").read_text())
    assert math.isfinite(results["eval_loss"])
    assert (eval_run / "training_eval_loss.png").is_file()


def test_end_of_run_files(eval_run):
    names = {p.name for p in eval_run.iterdir()}
    assert {
        "train_results.json",
        "training_loss.png",
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "trainer_state.json",
    } <= names
    results = json.loads((eval_run / "train_results.json").read_text())
    assert results["num_train_tokens"] > 0
    assert results["train_runtime"] > 0
