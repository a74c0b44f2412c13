"""End to end through the CLI and the detached runner: real processes, a real SQLite queue, simulated GPUs.

The training process is the stand-in script (tests/e2e/stand_in_train.py) launched through
TUNEQUEUE_TRAIN_COMMAND; test_demo_e2e.py runs the real engine.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tq_cli_testkit import wait_for

from tunequeue.jobqueue import jobs, metrics


def _log_size(db, job_id: int) -> int:
    """Bytes in the job's trainer_log.jsonl so far (0 before it exists): a row per step."""
    log = Path(jobs.get(db, job_id).run_dir) / "trainer_log.jsonl"
    return log.stat().st_size if log.exists() else 0


def _final_events(db, job_id: int) -> list[dict]:
    return [
        event
        for event in jobs.events(db, job_id)
        if event["to_state"] in ("succeeded", "failed", "cancelled")
    ]


def test_three_jobs_run_to_success_with_metrics_and_gpu_samples(home):
    ids = [home.submit(f"job-{n}", steps=5) for n in range(3)]
    started = home.cli("runner", "start", check=True)
    assert "runner started" in started.stdout
    for job_id in ids:
        assert home.cli("wait", str(job_id), "--timeout", "60").returncode == 0
    db = home.db()
    for job_id in ids:
        job = jobs.get(db, job_id)
        assert job.state.value == "succeeded" and job.exit_code == 0
        assert len(job.assigned_gpus) == 1
        steps = [row["current_steps"] for row in metrics.get_metrics(db, job_id)]
        assert steps == [1, 2, 3, 4, 5]
        assert (Path(job.run_dir) / "adapter_config.json").exists()
    samples = metrics.get_gpu_samples(db)
    assert samples and {s["gpu_index"] for s in samples} == {0, 1}
    assert all(s["simulated"] for s in samples)
    assert {s["job_id"] for s in samples} & set(ids)
    listed = home.cli("ls", check=True).stdout
    assert listed.count("succeeded") == 3 and "100%" in listed
    stopped = home.cli("runner", "stop", check=True)
    assert "stopped" in stopped.stdout
    assert home.runner_pid() is None


def test_second_runner_start_refuses(home):
    home.cli("runner", "start", check=True)
    second = home.cli("runner", "start")
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "already running" in lines[0] and "Traceback" not in second.stderr
    foreground = home.cli("runner", "start", "--foreground", timeout=30)
    assert foreground.returncode == 2 and "already running" in foreground.stderr
    status = home.cli("runner", "status", check=True).stdout
    assert "running (pid" in status


def test_runner_killed_while_jobs_train_readopts_them_once(home):
    env_steps = {"steps": 25}
    ids = [home.submit("long-a", **env_steps), home.submit("long-b", **env_steps)]
    home.cli("runner", "start", check=True)
    db = home.db()
    wait_for(lambda: all(jobs.get(db, i).state.value == "running" for i in ids), what="both running")
    wait_for(lambda: all(metrics.latest_metrics(db, ids).get(i) for i in ids), what="first metrics")
    old_pid = home.runner_pid()
    assert old_pid and old_pid > 0
    pids_before = {i: jobs.get(db, i).pid for i in ids}
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: home.runner_pid() is None, what="lock released")
    # the jobs keep training with no runner at all: their step logs grow
    sizes = {i: _log_size(db, i) for i in ids}
    wait_for(lambda: all(_log_size(db, i) > sizes[i] for i in ids), what="training without a runner")
    assert all(jobs.get(db, i).state.value == "running" for i in ids)
    home.cli("runner", "start", check=True)
    assert home.runner_pid() != old_pid
    for job_id in ids:
        assert home.cli("wait", str(job_id), "--timeout", "60").returncode == 0
    for job_id in ids:
        job = jobs.get(db, job_id)
        assert job.pid == pids_before[job_id] and job.attempt == 1
        assert len(_final_events(db, job_id)) == 1
        assert [e["to_state"] for e in jobs.events(db, job_id)].count("running") == 1
        steps = [row["current_steps"] for row in metrics.get_metrics(db, job_id)]
        assert steps == list(range(1, 26))
    assert "adopted" in (home.path / "runner.log").read_text()


def test_exit_is_recorded_while_runner_is_down(home):
    job_id = home.submit("short-while-down", steps=8)
    home.cli("runner", "start", check=True)
    db = home.db()
    wait_for(lambda: jobs.get(db, job_id).state.value == "running", what="running")
    home.cli("runner", "stop", check=True)
    run_dir = Path(jobs.get(db, job_id).run_dir)
    wait_for(lambda: (run_dir / "exit.json").exists(), what="exit.json")
    assert jobs.get(db, job_id).state.value == "running"
    home.cli("runner", "start", check=True)
    assert home.cli("wait", str(job_id), "--timeout", "30").returncode == 0


def test_killed_training_process_fails_with_reason_then_retry_resumes(home):
    job_id = home.submit("victim", steps=40, save_steps=2)
    home.cli("runner", "start", check=True)
    db = home.db()
    job = wait_for(lambda: (j := jobs.get(db, job_id)).state.value == "running" and j, what="running")
    run_dir = Path(job.run_dir)
    wait_for(lambda: (run_dir / "checkpoint-4").exists(), what="a checkpoint")
    trainer_pid = int((run_dir / "train.log").read_text().split(" pid ")[1].split()[0])
    os.kill(trainer_pid, signal.SIGKILL)
    assert home.cli("wait", str(job_id), "--timeout", "30").returncode == 1
    failed = jobs.get(db, job_id)
    assert failed.state.value == "failed" and failed.signal == signal.SIGKILL
    assert failed.reason.startswith("killed by SIGKILL: training victim pid")
    shown = home.cli("show", str(job_id), check=True).stdout
    assert "last lines of train.log" in shown and "training victim" in shown
    retried = home.cli("retry", str(job_id), check=True)
    assert "attempt 2" in retried.stdout
    assert home.cli("wait", str(job_id), "--timeout", "60").returncode == 0
    log = (run_dir / "train.log").read_text()
    assert "resuming from checkpoint-" in log
    done = jobs.get(db, job_id)
    assert done.state.value == "succeeded" and done.attempt == 2
    assert metrics.get_metrics(db, job_id)[-1]["current_steps"] == 40


def test_wait_exit_codes_cancel_and_rm(home):
    ok = home.submit("fine", steps=3)
    bad = home.submit("will-fail", steps=5)
    slow = home.submit("slow", steps=200)
    home.cli("runner", "start", check=True)
    assert home.cli("wait", str(ok), "--timeout", "30").returncode == 0
    failed = home.cli("wait", str(bad), "--timeout", "30")
    assert failed.returncode == 1 and "stand-in failure" in failed.stdout
    db = home.db()
    wait_for(lambda: jobs.get(db, slow).state.value == "running", what="slow running")
    assert home.cli("cancel", str(slow), check=True).stdout.strip() == f"job {slow} cancelling"
    assert home.cli("wait", str(slow), "--timeout", "30").returncode == 3
    cancelled = jobs.get(db, slow)
    assert cancelled.state.value == "cancelled" and cancelled.exit_code == 3
    assert "SIGTERM: saved checkpoint" in (Path(cancelled.run_dir) / "train.log").read_text()
    timed_out = home.cli("wait", str(home.submit("held", "--hold")), "--timeout", "0.5")
    assert timed_out.returncode == 124
    run_dir = Path(jobs.get(db, ok).run_dir)
    assert run_dir.exists()
    no_yes = home.cli("rm", str(ok))
    assert no_yes.returncode == 2 and "--yes" in no_yes.stderr
    assert home.cli("rm", str(ok), "--yes", check=True).returncode == 0
    assert not run_dir.exists()
    assert home.cli("show", str(ok)).returncode == 2


def test_sweep_makes_one_job_per_combination(home):
    task = home.task("swept", steps=2)
    result = home.cli(
        "submit", str(task), "--sweep", "learning_rate=1e-4,5e-5 lora_rank=8,16", "--hold", check=True
    )
    assert len(result.stdout.strip().splitlines()) == 4
    listed = jobs.list_jobs(home.db())
    assert [job.name for job in listed] == ["swept-s1", "swept-s2", "swept-s3", "swept-s4"]
    assert len({job.group_id for job in listed}) == 1 and listed[0].group_id
    assert all(job.state.value == "held" for job in listed)
    assert "lora_rank: 16" in listed[1].task_yaml and "learning_rate: 0.0001" in listed[1].task_yaml


def test_runner_survives_a_wake_signal_the_moment_it_holds_the_lock(home):
    import subprocess
    import sys

    from tunequeue.runner.daemon import wake_runner

    proc = subprocess.Popen(
        [sys.executable, "-m", "tunequeue", "runner", "start", "--foreground"],
        env=home.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: home.runner_pid() == proc.pid, interval=0.001, what="lock taken")
        wake_runner()
        # a runner still alive after the signal picks up new work
        job_id = home.submit("after-wake", steps=2)
        db = home.db()
        wait_for(lambda: jobs.get(db, job_id).state.value != "queued", what="the job started by the runner")
        assert proc.poll() is None
    finally:
        proc.terminate()
        assert proc.wait(120) == 0


def test_stop_with_cancel_jobs_and_logs_follow(home):
    ids = [home.submit("endless-a", steps=500), home.submit("endless-b", steps=500)]
    home.cli("runner", "start", check=True)
    db = home.db()
    wait_for(lambda: all(jobs.get(db, i).state.value == "running" for i in ids), what="both running")
    stopped = home.cli("runner", "stop", "--cancel-jobs", check=True)
    assert "cancelling 2 job(s)" in stopped.stdout and "stopped" in stopped.stdout
    assert home.runner_pid() is None
    for job_id in ids:
        assert jobs.get(db, job_id).state.value == "cancelled"
    followed = home.cli("logs", str(ids[0]), "-f", timeout=30, check=True).stdout
    assert "training endless-a" in followed and "SIGTERM: saved checkpoint" in followed
