"""Helpers shared by the tests that drive tunequeue through its CLI in subprocesses (e2e and Slurm).

`CliHome` is one test's tunequeue home: run ``tunequeue ARGS`` in it, write and submit task files for the
stand-in trainers, read its queue and stop its runner at teardown. `wait_for` polls for a condition.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml


class CliHome:
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

    def task(self, name: str, *, steps: int = 6, **extra) -> Path:
        """Write a valid task file whose stand-in run takes ``steps`` steps."""
        path = self.path / f"{name}.yaml"
        data = {
            "task_name": name,
            "model_name_or_path": "tunequeue/tiny-llama",
            "dataset": "demo_alpaca",
            "max_samples": steps,
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

    def kill_runner(self) -> None:
        """SIGKILL the runner holding this home's lock, if any (test teardown)."""
        pid = self.runner_pid()
        if pid is not None and pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
