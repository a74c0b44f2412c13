"""Shared fixtures for end-to-end tests: a temp home, simulated GPUs, the stand-in trainer, CLI runs.

Every test gets its own TUNEQUEUE_HOME; at teardown the runner (if any) and every job process group
recorded in the queue are killed, so no test leaves processes behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

STAND_IN = Path(__file__).with_name("stand_in_train.py")


class Home:
    """A tunequeue home for one test plus helpers to drive the CLI in subprocesses."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env

    def cli(self, *args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
        """Run ``tunequeue ARGS`` in a subprocess with this home's environment."""
        result = subprocess.run(
            [sys.executable, "-m", "tunequeue", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"tunequeue {' '.join(args)} → {result.returncode}\n{result.stdout}{result.stderr}"
            )
        return result

    def task(self, name: str, *, steps: int = 6, save_steps: int = 2, **extra) -> Path:
        """Write a valid task file whose stand-in run takes ``steps`` steps."""
        path = self.path / f"{name}.yaml"
        data = {
            "task_name": name,
            "model_name_or_path": "tunequeue/tiny-llama",
            "dataset": "demo_alpaca",
            "max_samples": steps,
            "save_steps": save_steps,
            **extra,
        }
        path.write_text(yaml.safe_dump(data))
        return path

    def submit(self, name: str, *args: str, **task) -> int:
        """Submit a task and return its job id."""
        result = self.cli("submit", str(self.task(name, **task)), *args, check=True)
        return int(result.stdout.split()[1])

    def db(self):
        """A fresh connection to this home's queue."""
        from tunequeue.jobqueue.db import open_db

        return open_db(self.path / "queue.db")

    def job(self, job_id: int):
        """The job row now."""
        from tunequeue.jobqueue import jobs

        return jobs.get(self.db(), job_id)

    def runner_pid(self) -> int | None:
        """Pid of the runner holding the lock, if any."""
        from tunequeue.runner.daemon import running_pid

        return running_pid()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    """A temp home with 2 simulated 24 GB GPUs, 0.2 s ticks and the stand-in trainer."""
    root = tmp_path / "home"
    root.mkdir()
    settings = {
        "TUNEQUEUE_HOME": str(root),
        "TUNEQUEUE_SIMULATED_GPUS": "2x24",
        "TUNEQUEUE_TICK_SECONDS": "0.2",
        "TUNEQUEUE_GPU_SAMPLE_SECONDS": "0.2",
        "TUNEQUEUE_CANCEL_GRACE_SECONDS": "5",
        "TUNEQUEUE_TRAIN_COMMAND": f"{sys.executable} {STAND_IN}",
        "STAND_IN_STEP_SECONDS": "0.1",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    env = {**os.environ, **settings}
    result = Home(root, env)
    yield result
    _cleanup(result)


def _cleanup(home: Home) -> None:
    pid = home.runner_pid()
    if pid is not None and pid > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if (home.path / "queue.db").exists():
        from tunequeue.jobqueue import jobs

        for job in jobs.list_jobs(home.db()):
            if job.pgid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(job.pgid, signal.SIGKILL)
