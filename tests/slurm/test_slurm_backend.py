"""The Slurm backend against a real single-node Slurm with two fake GPUs (no mocked sbatch).

Jobs run the stand-in trainer (tests/slurm/slurm_stand_in.py) inside real Slurm batch jobs, through the
detached runner and the CLI, with the queue in a real SQLite file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from slurm_testkit import wait_until

from tunequeue.jobqueue import jobs, metrics

# One xdist worker runs every test that uses the cluster: workers would share one munged.
pytestmark = pytest.mark.xdist_group("slurm-cluster")

FINAL = ("succeeded", "failed", "cancelled")


def _stand_in_runs(job) -> list[tuple[float, float, str]]:
    """(start, end, CUDA_VISIBLE_DEVICES) of the stand-in runs logged in a job's train.log."""
    text = (Path(job.run_dir) / "train.log").read_text()
    starts = re.findall(r"STAND-IN start=([\d.]+) cvd=(\S*)", text)
    ends = re.findall(r"STAND-IN end=([\d.]+)", text)
    return [(float(s), float(e), cvd) for (s, cvd), e in zip(starts, ends, strict=False)]


def test_three_one_gpu_jobs_complete_two_at_once_with_metrics(slurm_home):
    ids = [slurm_home.submit(f"gpu-job-{n}", "--gpus", "1", steps=10) for n in range(3)]
    slurm_home.start_runner()
    status = slurm_home.cli("runner", "status", check=True).stdout
    assert "backend: slurm" in status
    for job_id in ids:
        assert slurm_home.cli("wait", str(job_id), "--timeout", "90").returncode == 0
    db = slurm_home.db()
    runs = {}
    for job_id in ids:
        job = jobs.get(db, job_id)
        assert job.state.value == "succeeded" and job.exit_code == 0
        assert job.backend_job_id and job.backend_job_id.isdigit()
        assert job.assigned_gpus == []  # Slurm chose the GPUs, not the runner
        assert [row["current_steps"] for row in metrics.get_metrics(db, job_id)] == list(range(1, 11))
        (runs[job_id],) = _stand_in_runs(job)
        assert runs[job_id][2] in ("0", "1")
        batch = (Path(job.run_dir) / "slurm-batch.sh").read_text()
        assert "#SBATCH --gres=gpu:1" in batch and f"#SBATCH --job-name=tq-{job_id}-gpu-job-" in batch
    overlapping = [
        (a, b)
        for a in ids
        for b in ids
        if a < b and runs[a][0] < runs[b][1] and runs[b][0] < runs[a][1]
    ]
    assert overlapping, f"no two jobs ran at once: {runs}"
    assert any(runs[a][2] != runs[b][2] for a, b in overlapping)
    shown = slurm_home.cli("show", str(ids[0]), check=True).stdout
    assert f"slurm job  {jobs.get(db, ids[0]).backend_job_id}" in shown
    history = [e["reason"] for e in jobs.events(db, ids[0])]
    assert any(r.startswith("Slurm job ") and " RUNNING on localhost" in r for r in history)


def test_cancel_running_job_records_slurms_exit_status(slurm_home):
    job_id = slurm_home.submit("long-cancel", steps=300)
    slurm_home.start_runner()
    db = slurm_home.db()
    wait_until(lambda: jobs.get(db, job_id).state.value == "running", what="running")
    wait_until(lambda: metrics.latest_metrics(db, [job_id]).get(job_id), what="first metrics")
    assert slurm_home.cli("cancel", str(job_id)).returncode == 0
    assert slurm_home.cli("wait", str(job_id), "--timeout", "60").returncode == 3
    job = jobs.get(db, job_id)
    assert job.state.value == "cancelled"
    shown = subprocess.run(
        ["scontrol", "-o", "show", "job", job.backend_job_id], capture_output=True, text=True, check=True
    ).stdout
    assert "JobState=CANCELLED" in shown
    slurm_exit = re.search(r"ExitCode=(\d+):(\d+)", shown)
    # The stand-in, like the real engine, stops with exit code 3 on SIGTERM: Slurm says 3:0.
    assert (job.exit_code, job.signal or 0) == (int(slurm_exit[1]), int(slurm_exit[2])) == (3, 0)
    assert job.reason == "cancelled; Slurm CANCELLED, exit status 3:0"
    assert "SIGTERM at step" in (Path(job.run_dir) / "train.log").read_text()


def test_failing_job_fails_with_its_exit_code(slurm_home):
    job_id = slurm_home.submit("will-fail", steps=5)
    slurm_home.start_runner()
    assert slurm_home.cli("wait", str(job_id), "--timeout", "60").returncode == 1
    job = slurm_home.job(job_id)
    assert job.state.value == "failed" and job.exit_code == 1
    assert job.reason.startswith("Slurm FAILED (1:0): exit code 1: RuntimeError: stand-in failure")
    shown = slurm_home.cli("show", str(job_id), check=True).stdout
    assert "stand-in failure at step 2" in shown


def test_runner_killed_during_a_slurm_job_reattaches_and_finishes_once(slurm_home):
    job_id = slurm_home.submit("survivor", steps=25)
    slurm_home.start_runner()
    db = slurm_home.db()
    wait_until(lambda: metrics.latest_metrics(db, [job_id]).get(job_id), what="first metrics")
    slurm_id = jobs.get(db, job_id).backend_job_id
    old_pid = slurm_home.runner_pid()
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: slurm_home.runner_pid() is None, what="lock released")
    slurm_home.start_runner()
    assert slurm_home.cli("wait", str(job_id), "--timeout", "60").returncode == 0
    job = jobs.get(db, job_id)
    assert job.backend_job_id == slurm_id and job.attempt == 1
    states = [event["to_state"] for event in jobs.events(db, job_id)]
    assert states.count("running") == 1 and sum(states.count(s) for s in FINAL) == 1
    assert [row["current_steps"] for row in metrics.get_metrics(db, job_id)] == list(range(1, 26))
    assert len(_stand_in_runs(job)) == 1
    assert f"re-attached to Slurm job {slurm_id}" in (slurm_home.path / "runner.log").read_text()


def test_more_gpus_than_the_cluster_has_fails_at_submission_and_stays_retryable(slurm_home):
    job_id = slurm_home.submit("too-big", "--gpus", "3")
    # One CPU, so that the GPUs alone are what the cluster cannot give (3 CPUs on this 2-core node
    # would leave the job pending with reason PartitionConfig instead).
    slurm_home.start_runner("--cpus-per-task", "1")
    assert slurm_home.cli("wait", str(job_id), "--timeout", "60").returncode == 1
    job = slurm_home.job(job_id)
    assert job.state.value == "failed" and job.backend_job_id is None
    assert job.reason == (
        "Slurm refused the job: Batch job submission failed: Requested node configuration is not available"
    )
    listed = json.loads(slurm_home.cli("ls", "--json", check=True).stdout)
    assert "Requested node configuration is not available" in listed[0]["reason"]
    assert slurm_home.cli("retry", str(job_id)).returncode == 0
    assert slurm_home.cli("wait", str(job_id), "--timeout", "60").returncode == 1
    assert slurm_home.job(job_id).attempt == 2


def test_unreachable_controller_fails_the_submission_with_one_line(slurm_home, tmp_path, monkeypatch):
    conf = Path(os.environ["SLURM_CONF"]).read_text()
    port = re.search(r"SlurmctldPort=(\d+)", conf).group(1)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "slurm.conf").write_text(conf.replace(f"SlurmctldPort={port}", "SlurmctldPort=1"))
    (broken / "gres.conf").write_text((Path(os.environ["SLURM_CONF"]).parent / "gres.conf").read_text())
    monkeypatch.setenv("SLURM_CONF", str(broken / "slurm.conf"))
    slurm_home.env["SLURM_CONF"] = str(broken / "slurm.conf")
    started = slurm_home.cli("runner", "start", "--backend", "slurm")
    assert started.returncode == 2
    assert started.stderr.count("\n") == 1 and "the Slurm controller does not answer" in started.stderr
    job_id = slurm_home.submit("unreachable")
    from tunequeue.runner.daemon import Runner

    report = Runner(slurm_home.db()).tick()
    assert report.finished == [job_id]
    job = slurm_home.job(job_id)
    assert job.state.value == "failed"
    assert job.reason == (
        "Slurm refused the job: Batch job submission failed: "
        "Unable to contact slurm controller (connect failure)"
    )


@pytest.mark.slow
def test_real_tiny_training_job_runs_through_slurm(slurm_home, monkeypatch):
    monkeypatch.delenv("TUNEQUEUE_TRAIN_COMMAND")
    slurm_home.env.pop("TUNEQUEUE_TRAIN_COMMAND")
    job_id = slurm_home.submit(
        "real-tiny",
        "--gpus",
        "0",
        steps=16,
        cutoff_len=64,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_steps=100,
    )
    slurm_home.start_runner()
    result = slurm_home.cli("wait", str(job_id), "--timeout", "240", timeout=260)
    job = slurm_home.job(job_id)
    log_text = (Path(job.run_dir) / "train.log").read_text()
    assert result.returncode == 0, f"{job.reason}\n{log_text[-3000:]}"
    assert job.backend_job_id and "-m tunequeue.train" in (Path(job.run_dir) / "slurm-batch.sh").read_text()
    rows = metrics.get_metrics(slurm_home.db(), job_id)
    assert rows and rows[-1]["current_steps"] == rows[-1]["total_steps"]
    assert all(row.get("loss") is not None for row in rows)
    assert (Path(job.run_dir) / "adapter_model.safetensors").exists()
