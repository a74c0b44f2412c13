"""Launch: command and environment, the exit-recording wrapper, process identity, group termination."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from tq_cli_testkit import wait_for

from tunequeue.runner import launch, procs
from tunequeue.runner.settings import RunnerSettings, load_settings
from tunequeue.runner.wrapper import exit_reason, read_exit_file


def _job(tmp_path: Path, gpus: list[int], script: str) -> SimpleNamespace:
    stand_in = tmp_path / "stand_in.py"
    stand_in.write_text(textwrap.dedent(script))
    return SimpleNamespace(
        id=7,
        attempt=1,
        run_dir=str(tmp_path / "runs" / "7-demo"),
        assigned_gpus=gpus,
        task_yaml="task_name: demo\n",
    ), [sys.executable, str(stand_in)]


def _wait_exit(run_dir: Path, timeout: float = 120.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        record = read_exit_file(run_dir)
        if record:
            return record
        time.sleep(0.05)
    raise AssertionError("exit.json never appeared")


def test_train_command_single_multi_and_override():
    settings = RunnerSettings()
    single = launch.train_command(Path("/r/task.yaml"), 1, settings)
    assert single == [sys.executable, "-m", "tunequeue.train", "/r/task.yaml"]
    assert launch.train_command(Path("/r/task.yaml"), 0, settings) == single
    multi = launch.train_command(Path("/r/task.yaml"), 4, settings)
    assert multi[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4"]
    assert multi[-3:] == ["-m", "tunequeue.train", "/r/task.yaml"]
    override = launch.train_command(Path("/r/task.yaml"), 4, RunnerSettings(train_command=["python", "x.py"]))
    assert override == ["python", "x.py", "/r/task.yaml"]


def test_env_sets_gpu_order_and_visible_devices():
    env = launch.job_env([2, 0], job_id=3, attempt=2, base={"PATH": "/bin"})
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["CUDA_VISIBLE_DEVICES"] == "2,0"
    assert env["TUNEQUEUE_JOB_ID"] == "3" and env["TUNEQUEUE_ATTEMPT"] == "2"
    assert launch.job_env([], job_id=1, attempt=1, base={})["CUDA_VISIBLE_DEVICES"] == ""


def test_settings_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    monkeypatch.setenv("TUNEQUEUE_TICK_SECONDS", "0.2")
    monkeypatch.setenv("TUNEQUEUE_TRAIN_COMMAND", "python '/a b/fake.py'")
    settings = load_settings()
    assert settings.tick_seconds == 0.2
    assert settings.train_command == ["python", "/a b/fake.py"]


def test_launch_success_records_exit_and_log(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    job, command = _job(
        tmp_path,
        [1],
        """
        import os, sys
        print("visible", os.environ["CUDA_VISIBLE_DEVICES"], "task", sys.argv[1])
    """,
    )
    proc = launch.launch(job, RunnerSettings(train_command=command))
    assert proc.pgid == proc.pid and proc.start_ticks is not None
    assert os.getpgid(proc.pid) == proc.pid and os.getsid(proc.pid) == proc.pid
    proc.popen.wait(120)
    record = _wait_exit(Path(job.run_dir))
    assert record["exit_code"] == 0 and record["signal"] is None and record["reason"] == ""
    log = (Path(job.run_dir) / "train.log").read_text()
    assert "visible 1 task" in log and "task.yaml" in log
    assert (Path(job.run_dir) / "task.yaml").read_text() == "task_name: demo\n"


def test_failure_reason_has_log_tail_and_oom(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    job, command = _job(
        tmp_path,
        [],
        """
        import sys
        print("step 1")
        print("ValueError: the dataset column 'output' is missing", file=sys.stderr)
        sys.exit(1)
    """,
    )
    launch.launch(job, RunnerSettings(train_command=command)).popen.wait(120)
    record = _wait_exit(Path(job.run_dir))
    assert record["exit_code"] == 1
    assert record["reason"] == "exit code 1: ValueError: the dataset column 'output' is missing"
    log = tmp_path / "oom.log"
    log.write_text("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB\n")
    assert exit_reason(1, None, log).startswith("out of memory")
    assert exit_reason(3, None, tmp_path / "none.log") == "cancelled after saving a checkpoint"


def test_terminate_forwards_sigterm_to_group_and_kill(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    job, command = _job(
        tmp_path,
        [],
        """
        import signal, sys, time
        def stop(*_):
            print("got SIGTERM", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, stop)
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
    """,
    )
    proc = launch.launch(job, RunnerSettings(train_command=command))
    log = Path(job.run_dir) / "train.log"
    wait_for(lambda: "ready" in log.read_text(), timeout=120, what="the job ready")
    assert procs.is_alive(proc.pid, proc.start_ticks)
    assert not procs.is_alive(proc.pid, proc.start_ticks - 100)
    procs.terminate(proc.pid, proc.start_ticks, proc.pgid)
    proc.popen.wait(120)
    record = _wait_exit(Path(job.run_dir))
    assert record["exit_code"] == 3
    assert log.read_text().count("got SIGTERM") == 1
    assert not procs.is_alive(proc.pid, proc.start_ticks)
    assert not procs.group_alive(proc.pgid)


def test_sigkill_of_training_child_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    job, command = _job(
        tmp_path,
        [],
        """
        import os, time
        print("child", os.getpid(), flush=True)
        time.sleep(60)
    """,
    )
    proc = launch.launch(job, RunnerSettings(train_command=command))
    log = Path(job.run_dir) / "train.log"
    wait_for(lambda: "child" in log.read_text(), timeout=120, what="the training child")
    child_pid = int(log.read_text().split()[1])
    os.kill(child_pid, signal.SIGKILL)
    proc.popen.wait(120)
    record = _wait_exit(Path(job.run_dir))
    assert record["signal"] == signal.SIGKILL and record["exit_code"] == 137
    assert record["reason"].startswith("killed by SIGKILL: child")


def test_missing_command_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    job, _ = _job(tmp_path, [], "")
    launch.launch(job, RunnerSettings(train_command=[str(tmp_path / "no-such-binary")])).popen.wait(120)
    record = _wait_exit(Path(job.run_dir))
    assert record["exit_code"] == 127 and "could not start" in record["reason"]
    assert json.loads((Path(job.run_dir) / "exit.json").read_text())["exit_code"] == 127


@pytest.mark.parametrize("pid", [None, 0, 2**22 + 17])
def test_is_alive_false_for_missing(pid):
    assert not procs.is_alive(pid, None)
