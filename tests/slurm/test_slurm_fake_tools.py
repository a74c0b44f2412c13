"""The Slurm backend's phases against stand-in Slurm tools on PATH (no cluster needed).

``sbatch`` runs the batch script at once and records each submission; ``squeue --json`` prints what
the test writes into a state file. Real Slurm is exercised by test_slurm_backend.py where installed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from tunequeue.core import paths
from tunequeue.jobqueue import jobs, metrics
from tunequeue.jobqueue.db import open_db
from tunequeue.runner.backends import configure
from tunequeue.runner.backends.slurm.script import submission_comment
from tunequeue.runner.daemon import Runner

STAND_IN = Path(__file__).with_name("slurm_stand_in.py")

SBATCH = """#!/bin/bash
script="${@: -1}"
echo "$script" >> "$FAKE_SLURM_DIR/submissions"
cd "$(dirname "$script")" || exit 1
SLURM_JOB_ID=4242 SLURM_JOB_NODELIST=localhost bash "$script" > /dev/null 2>&1
echo 4242
"""
SQUEUE = """#!/bin/bash
cat "$FAKE_SLURM_DIR/squeue.json"
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """A home on the slurm backend with stand-in sbatch and squeue; returns the tools' state dir."""
    home = tmp_path / "home"
    home.mkdir()
    tools = tmp_path / "fake-slurm"
    tools.mkdir()
    for name, text in (("sbatch", SBATCH), ("squeue", SQUEUE)):
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    (tools / "squeue.json").write_text(json.dumps({"jobs": []}))
    monkeypatch.setenv("TUNEQUEUE_HOME", str(home))
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tools))
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TUNEQUEUE_TRAIN_COMMAND", f"{sys.executable} {STAND_IN}")
    monkeypatch.setenv("STAND_IN_STEP_SECONDS", "0.01")
    configure("slurm", {})
    return tools


def _squeue(tools: Path, *entries: dict) -> None:
    (tools / "squeue.json").write_text(json.dumps({"jobs": list(entries)}))


def _task(name: str) -> str:
    return yaml.safe_dump(
        {
            "task_name": name,
            "model_name_or_path": "tunequeue/tiny-llama",
            "dataset": "demo_alpaca",
            "max_samples": 3,
        }
    )


def test_submitted_job_follows_squeue_to_success_with_metrics(fake_slurm):
    db = open_db()
    job = jobs.submit(db, task_yaml=_task("followed"), name="followed", gpus=1)
    runner = Runner(db)
    assert runner.tick().started == [job.id]
    comment = submission_comment(paths.home(), job.id, 1)
    _squeue(fake_slurm, {"job_id": 4242, "job_state": "RUNNING", "nodes": "n1", "comment": comment})
    report = runner.tick()
    assert report.adopted == [] and report.finished == []
    running = jobs.get(db, job.id)
    assert running.state.value == "running" and running.reason == "Slurm job 4242 RUNNING on n1"
    assert [row["current_steps"] for row in metrics.get_metrics(db, job.id)] == [1, 2, 3]
    _squeue(fake_slurm, {"job_id": 4242, "job_state": "COMPLETED", "exit_code": 0, "comment": comment})
    assert runner.tick().finished == [job.id]
    assert jobs.get(db, job.id).state.value == "succeeded"
    assert len((fake_slurm / "submissions").read_text().splitlines()) == 1


def test_a_runner_that_died_after_sbatch_finds_the_job_by_its_comment(fake_slurm):
    db = open_db()
    job = jobs.submit(db, task_yaml=_task("found-again"), name="found-again", gpus=1)
    jobs.claim(db, job.id, [], [])  # claimed and submitted, then the runner died before recording the id
    comment = submission_comment(paths.home(), job.id, 1)
    _squeue(
        fake_slurm, {"job_id": 77, "job_state": "PENDING", "state_reason": "Resources", "comment": comment}
    )
    report = Runner(db).tick()
    assert report.adopted == [job.id] and report.started == []
    found = jobs.get(db, job.id)
    assert found.backend_job_id == "77" and found.reason == "Slurm PENDING (Resources)"
    assert not (fake_slurm / "submissions").exists()
