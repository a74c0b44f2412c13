"""Runner.tick in-process against a real SQLite queue and real child processes (simulated GPUs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tq_cli_testkit import wait_for

from tunequeue.core import paths
from tunequeue.core.errors import UserError
from tunequeue.jobqueue import jobs, metrics
from tunequeue.jobqueue.db import open_db
from tunequeue.runner import daemon, launch, procs
from tunequeue.runner.daemon import Runner, TickReport
from tunequeue.runner.settings import RunnerSettings

STAND_IN = Path(__file__).parents[1] / "e2e" / "stand_in_train.py"
TASK = (
    "task_name: {name}\nmodel_name_or_path: tunequeue/tiny-llama\n"
    "dataset: demo_alpaca\nmax_samples: {steps}\n"
)


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "2x24")
    monkeypatch.setenv("STAND_IN_STEP_SECONDS", "0.05")
    settings = RunnerSettings(
        tick_seconds=0.1,
        gpu_sample_seconds=0.0,
        cancel_grace_seconds=0.5,
        train_command=[sys.executable, str(STAND_IN)],
    )
    made = Runner(open_db(), settings)
    yield made
    for job in jobs.list_jobs(made.db):
        if job.pgid:
            procs.kill_group(job.pgid)


def _submit(runner, name: str, steps: int = 4, **kwargs):
    return jobs.submit(runner.db, task_yaml=TASK.format(name=name, steps=steps), name=name, **kwargs)


def _tick_until(runner, predicate, timeout: float = 120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runner.tick()
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_tick_runs_a_job_to_success_with_metrics_and_samples(runner):
    job = _submit(runner, "plain")
    report = runner.tick()
    assert report.started == [job.id] and report.gpu_samples == 2
    running = jobs.get(runner.db, job.id)
    assert running.state.value == "running" and running.assigned_gpus == [0] and running.pid
    _tick_until(runner, lambda: jobs.get(runner.db, job.id).is_final)
    assert jobs.get(runner.db, job.id).state.value == "succeeded"
    assert [row["current_steps"] for row in metrics.get_metrics(runner.db, job.id)] == [1, 2, 3, 4]
    assert metrics.get_gpu_samples(runner.db, job_id=job.id)


def test_cancel_of_a_claimed_job_that_never_launched(runner):
    job = _submit(runner, "claimed")
    jobs.claim(runner.db, job.id, [0], ["GPU-sim-0"])
    assert jobs.request_cancel(runner.db, job.id).state.value == "cancelling"
    report = runner.tick()
    done = jobs.get(runner.db, job.id)
    assert report.finished == [job.id] and done.state.value == "cancelled"
    assert done.reason == "cancelled before it started" and done.pid is None
    assert not Path(done.run_dir).exists()


def test_cancel_while_starting_stops_the_just_launched_process(runner):
    job = _submit(runner, "racing", steps=100)
    claimed = jobs.claim(runner.db, job.id, [0], ["GPU-sim-0"])
    jobs.request_cancel(runner.db, job.id)
    report = TickReport()
    runner.backend.launch(runner, claimed, report)
    done = jobs.get(runner.db, job.id)
    assert (
        report.started == [] and done.state.value == "cancelled" and done.reason == "cancelled while starting"
    )
    pid = json.loads((Path(done.run_dir) / "process.json").read_text())["pid"]
    assert not procs.is_alive(pid, None)


def test_sigkill_after_grace_when_sigterm_is_ignored(runner, tmp_path):
    stubborn = tmp_path / "stubborn.py"
    stubborn.write_text(
        textwrap.dedent("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(120)
    """)
    )
    runner.settings.train_command = [sys.executable, str(stubborn)]
    job = _submit(runner, "stubborn")
    runner.tick()
    log = Path(jobs.get(runner.db, job.id).run_dir) / "train.log"
    wait_for(lambda: "ignoring" in log.read_text(), timeout=120, what="the job ignoring SIGTERM")
    jobs.request_cancel(runner.db, job.id)
    started = time.time()
    _tick_until(runner, lambda: jobs.get(runner.db, job.id).is_final)
    done = jobs.get(runner.db, job.id)
    assert done.state.value == "cancelled" and time.time() - started >= 0.5
    assert not procs.group_alive(done.pgid)


def test_dead_process_without_exit_record_is_lost(runner):
    job = _submit(runner, "ghost")
    claimed = jobs.claim(runner.db, job.id, [1], ["GPU-sim-1"])
    Path(claimed.run_dir).mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    sleeper.wait()
    jobs.mark_running(runner.db, job.id, sleeper.pid, sleeper.pid, time.time() - 1000)
    runner.tick()
    done = jobs.get(runner.db, job.id)
    assert done.state.value == "failed" and done.reason.startswith("lost:")


def test_claimed_job_launched_by_a_dead_runner_is_adopted_not_relaunched(runner):
    job = _submit(runner, "orphan", steps=40)
    claimed = jobs.claim(runner.db, job.id, [0], ["GPU-sim-0"])
    process = launch.launch(claimed, runner.settings)
    fresh = Runner(runner.db, runner.settings)
    report = fresh.tick()
    adopted = jobs.get(runner.db, job.id)
    assert report.adopted == [job.id] and report.started == []
    assert adopted.state.value == "running" and adopted.pid == process.pid
    process.popen.wait(30)
    _tick_until(fresh, lambda: jobs.get(runner.db, job.id).is_final)
    assert jobs.get(runner.db, job.id).state.value == "succeeded"


def test_dependency_failure_cancels_dependent(runner):
    first = _submit(runner, "will-fail", steps=4)
    second = _submit(runner, "after-it", after=[first.id])
    runner.tick()
    assert jobs.get(runner.db, second.id).reason.startswith("Dependency")
    _tick_until(runner, lambda: jobs.get(runner.db, second.id).is_final)
    assert jobs.get(runner.db, first.id).state.value == "failed"
    dependent = jobs.get(runner.db, second.id)
    assert dependent.state.value == "cancelled" and "dependency never satisfied" in dependent.reason


def test_lock_refuses_second_holder(runner):
    fd = daemon.acquire_lock()
    try:
        assert daemon.running_pid() == os.getpid()
        with pytest.raises(UserError, match="already running"):
            daemon.acquire_lock()
    finally:
        daemon.release_lock(fd)
    assert daemon.running_pid() is None


def test_install_service_writes_user_unit(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = daemon.install_service()
    text = path.read_text()
    assert path == tmp_path / "config" / "systemd" / "user" / "tunequeue-runner.service"
    assert "runner start --foreground" in text and "KillMode=process" in text
    assert f"TUNEQUEUE_HOME={tmp_path}" in text


OOM_ONCE = """
import sys, time
from pathlib import Path
run_dir = Path(sys.argv[1]).parent
marker = run_dir / "oom-once"
if "oom" in run_dir.name and not marker.exists():
    marker.write_text("x")
    print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", flush=True)
    sys.exit(1)
if "oom" not in run_dir.name:
    while not (run_dir.parent / "release").exists():
        time.sleep(0.05)
print("done", flush=True)
"""


@pytest.fixture
def oom_runner(runner, tmp_path):
    script = tmp_path / "oom_once.py"
    script.write_text(OOM_ONCE)
    runner.settings.train_command = [sys.executable, str(script)]
    yield runner
    release = paths.home() / "runs" / "release"  # lets the waiting stand-ins end before the group kill
    release.parent.mkdir(parents=True, exist_ok=True)
    release.touch()


def _place_on(runner, job, gpus):
    claimed = jobs.claim(runner.db, job.id, gpus, [f"GPU-sim-{i}" for i in gpus])
    runner.backend.launch(runner, claimed, TickReport())


def test_cuda_oom_while_sharing_is_retried_once_on_a_whole_gpu(oom_runner):
    runner = oom_runner
    tenant = _submit(runner, "tenant", vram_gib=8, allow_share=True)
    oom = _submit(runner, "oom-joiner", vram_gib=8, allow_share=True)
    _place_on(runner, tenant, [0])
    _place_on(runner, oom, [0])
    _tick_until(runner, lambda: jobs.get(runner.db, oom.id).attempt == 2)
    requeued = jobs.get(runner.db, oom.id)
    assert requeued.allow_share is False
    event = [e for e in jobs.events(runner.db, oom.id) if e["from_state"] == "running"][0]
    assert event["to_state"] == "queued"
    assert event["reason"] == "CUDA out of memory while sharing GPU 0; queued again to run on a whole GPU"
    _tick_until(runner, lambda: jobs.get(runner.db, oom.id).is_final)
    done = jobs.get(runner.db, oom.id)
    assert done.state.value == "succeeded" and done.attempt == 2 and done.assigned_gpus == [1]
    assert jobs.get(runner.db, tenant.id).state.value == "running"


def test_cuda_oom_alone_on_a_gpu_is_a_plain_failure(oom_runner):
    runner = oom_runner
    oom = _submit(runner, "oom-alone", vram_gib=8, allow_share=True)
    _tick_until(runner, lambda: jobs.get(runner.db, oom.id).is_final)
    done = jobs.get(runner.db, oom.id)
    assert done.state.value == "failed" and done.attempt == 1
    assert done.reason.startswith("out of memory")


def test_runner_remembers_when_a_job_was_first_blocked(oom_runner):
    runner = oom_runner
    holder = _submit(runner, "holder")
    runner.tick()
    assert jobs.get(runner.db, holder.id).assigned_gpus == [0]
    wide = _submit(runner, "wide", gpus=2)
    runner.tick()
    first = runner.backend.blocked_since[wide.id]
    assert jobs.get(runner.db, wide.id).reason == "Resources (needs 2 GPUs, 1 free)"
    runner.tick()
    assert runner.backend.blocked_since == {wide.id: first}
    jobs.request_cancel(runner.db, wide.id)
    runner.tick()
    assert runner.backend.blocked_since == {}


_REAL_TIME, _REAL_TIME_NS = time.time, time.time_ns


def _stepped_clock(monkeypatch, seconds: float) -> None:
    """Set the wall clock this process sees ``seconds`` away from the real one (as an NTP step would)."""
    monkeypatch.setattr(time, "time", lambda: _REAL_TIME() + seconds)
    monkeypatch.setattr(time, "time_ns", lambda: _REAL_TIME_NS() + int(seconds * 1e9))


def test_a_wall_clock_step_never_kills_or_loses_a_healthy_job(runner, monkeypatch):
    runner.settings.cancel_grace_seconds = 60.0
    monkeypatch.setenv("STAND_IN_STEP_SECONDS", "0.5")
    job = _submit(runner, "steady", steps=400)
    assert runner.tick().started == [job.id]
    running = jobs.get(runner.db, job.id)
    identity = procs.identify(running.pid)
    assert identity is not None and identity.start_ticks == running.proc_start_time
    for step in (10 * 86400.0, -10 * 86400.0, 3600.0):
        _stepped_clock(monkeypatch, step)
        rows_before = len(metrics.get_metrics(runner.db, job.id))
        deadline = time.monotonic() + 120
        while len(metrics.get_metrics(runner.db, job.id)) <= rows_before:
            report = runner.tick()
            assert report.finished == [] and report.signalled == []
            assert time.monotonic() < deadline, "the job stopped making progress"
            time.sleep(0.05)
        assert jobs.get(runner.db, job.id).state.value == "running"
        assert procs.identify(running.pid) == identity
        assert procs.is_alive(running.pid, running.proc_start_time, procs.boot_id())
    # A cancel's grace period runs on the monotonic clock: a step forward right after the SIGTERM must
    # not turn into an immediate SIGKILL; the job stops by itself after saving a checkpoint.
    jobs.request_cancel(runner.db, job.id)
    assert runner.tick().signalled == [job.id]
    _stepped_clock(monkeypatch, 30 * 86400.0)
    _tick_until(runner, lambda: jobs.get(runner.db, job.id).is_final)
    done = jobs.get(runner.db, job.id)
    assert done.state.value == "cancelled" and done.exit_code == 3 and done.signal is None


def test_a_process_of_another_boot_or_start_time_is_not_the_job(runner):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        me = procs.identify(sleeper.pid)
        with open(f"/proc/{sleeper.pid}/stat") as handle:
            raw = handle.read()
        assert me.start_ticks == int(raw[raw.rfind(")") + 2 :].split()[19])
        assert me.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        assert procs.is_alive(sleeper.pid, me.start_ticks, me.boot_id)
        assert not procs.is_alive(sleeper.pid, me.start_ticks + 1, me.boot_id)
        other_boot = (
            "0" * 8 + me.boot_id[8:] if not me.boot_id.startswith("0" * 8) else "f" * 8 + me.boot_id[8:]
        )
        assert not procs.is_alive(sleeper.pid, me.start_ticks, other_boot)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not procs.is_alive(sleeper.pid, me.start_ticks, me.boot_id)


def test_a_run_dir_deleted_under_a_running_job_is_reported_as_such(runner):
    job = _submit(runner, "doomed", steps=400)
    runner.tick()
    running = jobs.get(runner.db, job.id)
    assert running.state.value == "running"
    shutil.rmtree(running.run_dir)
    _tick_until(runner, lambda: jobs.get(runner.db, job.id).is_final)
    done = jobs.get(runner.db, job.id)
    assert done.state.value == "failed"
    assert done.reason.startswith(f"run dir deleted: {running.run_dir} was removed while the job ran")
    assert not done.reason.startswith("lost")


def test_a_job_launched_by_an_earlier_version_keeps_its_epoch_identity(runner):
    """process.json and the queue of a job started before start ticks were recorded (epoch start time)."""
    job = _submit(runner, "legacy")
    claimed = jobs.claim(runner.db, job.id, [0], ["GPU-sim-0"])
    run_dir = Path(claimed.run_dir)
    run_dir.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        btime = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        epoch = btime + procs.start_ticks(sleeper.pid) / os.sysconf("SC_CLK_TCK") + 0.25
        record = {"attempt": 1, "pid": sleeper.pid, "pgid": sleeper.pid, "start_time": epoch}
        (run_dir / "process.json").write_text(json.dumps(record))
        jobs.mark_running(runner.db, job.id, sleeper.pid, sleeper.pid, epoch)
        report = runner.tick()
        assert report.adopted == [job.id] and report.finished == []
        assert jobs.get(runner.db, job.id).state.value == "running"
    finally:
        sleeper.kill()
        sleeper.wait()
    _tick_until(runner, lambda: jobs.get(runner.db, job.id).is_final)
    assert jobs.get(runner.db, job.id).reason.startswith("lost:")
