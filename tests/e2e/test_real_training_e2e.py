"""The real engine through the queue and the runner: `tunequeue demo`, and kill -9 + retry resuming
from the newest checkpoint (tiny bundled model on CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tq_cli_testkit import wait_for

from tunequeue.jobqueue import jobs, metrics


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.slow
def test_demo_trains_two_lora_jobs_to_the_end_in_the_own_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUNEQUEUE_", "STAND_IN_"))}
    home = tmp_path / "demo-home"
    env["TUNEQUEUE_HOME"] = str(home)  # the user's own home: no --home
    result = subprocess.run(
        [sys.executable, "-m", "tunequeue", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("adapter in") == 2 and "loss" in result.stdout
    assert f"tunequeue demo in {home} (namespace demo)" in result.stdout
    run_dirs = sorted((home / "runs").iterdir())
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        assert (run_dir / "adapter_model.safetensors").exists()
        assert (run_dir / "exit.json").exists()
    from tunequeue.jobqueue.db import open_db

    db = open_db(home / "queue.db")
    demo_jobs = jobs.list_jobs(db)
    for job in demo_jobs:
        assert job.state.value == "succeeded" and job.namespace == "demo"
        rows = metrics.get_metrics(db, job.id)
        assert rows and rows[-1]["current_steps"] == rows[-1]["total_steps"]
        assert all(row.get("loss") is not None for row in rows)
    next_steps = result.stdout.split("next, try:", 1)[1]
    first = demo_jobs[0]
    assert f"tunequeue show {first.id} " in next_steps and f"tunequeue logs {first.id} " in next_steps
    assert f"tunequeue chat --model tunequeue/tiny-llama --adapter {first.run_dir}" in next_steps
    assert "runner stopped (it was started for the demo)" in result.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "tunequeue", "ls"], env=env, capture_output=True, text=True, timeout=60
    )
    lines = listed.stdout.splitlines()
    for job in demo_jobs:
        assert any(line.split()[:3] == [str(job.id), job.name, "succeeded"] for line in lines), listed.stdout
    status = subprocess.run(
        [sys.executable, "-m", "tunequeue", "runner", "status"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert status.stdout.startswith("runner: not running")


@pytest.mark.slow
def test_killed_real_training_fails_and_retry_resumes_from_checkpoint(home, monkeypatch):
    for key in ("TUNEQUEUE_TRAIN_COMMAND", "TUNEQUEUE_SIMULATED_GPUS"):
        monkeypatch.delenv(key)
        home.env.pop(key)
    job_id = home.submit(
        "real-resume",
        "--gpus",
        "0",
        steps=160,
        save_steps=4,
        lora_rank=4,
        cutoff_len=64,
        per_device_train_batch_size=4,
        logging_steps=1,
    )
    home.cli("runner", "start", check=True)
    db = home.db()
    job = wait_for(lambda: (j := jobs.get(db, job_id)).state.value == "running" and j, what="running")
    run_dir = Path(job.run_dir)
    wait_for(
        lambda: (run_dir / "checkpoint-4" / "trainer_state.json").exists(), timeout=180, what="checkpoint"
    )
    trainer = _children(job.pid)
    assert len(trainer) == 1
    os.kill(trainer[0], signal.SIGKILL)
    assert home.cli("wait", str(job_id), "--timeout", "60").returncode == 1
    failed = jobs.get(db, job_id)
    assert failed.state.value == "failed" and failed.reason.startswith("killed by SIGKILL")
    assert home.cli("retry", str(job_id), check=True).returncode == 0
    assert home.cli("wait", str(job_id), "--timeout", "300").returncode == 0, (
        run_dir / "train.log"
    ).read_text()
    log = (run_dir / "train.log").read_text()
    assert "resuming from checkpoint-" in log
    done = jobs.get(db, job_id)
    assert done.attempt == 2 and (run_dir / "adapter_model.safetensors").exists()
    rows = metrics.get_metrics(db, job_id)
    steps = [row["current_steps"] for row in rows]
    assert steps == sorted(set(steps)) and steps[-1] == rows[-1]["total_steps"] > 4
