"""SIGTERM → checkpoint → exit 3; a rerun resumes at the saved step (real process, real signal)."""

from __future__ import annotations

import signal
import time

import pytest
from tq_train_helpers import read_log, start_subprocess, write_task

pytestmark = pytest.mark.slow


def _wait_for_step(run_dir, process, minimum: int, timeout: float = 120.0) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = [r["current_steps"] for r in read_log(run_dir) if "loss" in r]
        if steps and steps[-1] >= minimum:
            return steps[-1]
        assert process.poll() is None, (run_dir / "train.log").read_text()[-3000:]
        time.sleep(0.05)
    raise AssertionError("training did not reach the step in time")


def _terminate(process) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=120)


def test_sigterm_checkpoints_and_rerun_resumes(tmp_path):
    run_dir = tmp_path / "run"
    # Far more steps than the test lets it run; every step logs.
    task = write_task(run_dir, num_train_epochs=500, max_samples=8, save_steps=100000, save_total_limit=None)
    first = start_subprocess(task)
    _wait_for_step(run_dir, first, 3)
    assert _terminate(first) == 3
    checkpoints = sorted(run_dir.glob("checkpoint-*"))
    assert len(checkpoints) == 1, checkpoints
    saved_step = int(checkpoints[0].name.split("-")[1])
    assert saved_step >= 3
    assert (checkpoints[0] / "adapter_model.safetensors").is_file()
    assert (checkpoints[0] / "optimizer.pt").is_file()
    log_text = (run_dir / "train.log").read_text()
    assert f"cancelled at step {saved_step}" in log_text
    # No final weights were written for a cancelled run.
    assert not (run_dir / "adapter_model.safetensors").exists()
    lines_before = len(read_log(run_dir))

    second = start_subprocess(task)
    _wait_for_step(run_dir, second, saved_step + 2)
    assert _terminate(second) == 3
    resumed = read_log(run_dir)[lines_before:]
    assert resumed[0]["current_steps"] == saved_step + 1  # the step count continues
    assert f"resuming from checkpoint-{saved_step}" in (run_dir / "train.log").read_text()
    newest = max(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*"))
    assert newest > saved_step
    # total_tokens keeps counting across the restart
    before = [r["total_tokens"] for r in read_log(run_dir)[:lines_before] if "loss" in r]
    assert resumed[0]["total_tokens"] > before[-1]
