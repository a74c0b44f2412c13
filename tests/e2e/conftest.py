"""Shared fixtures for end-to-end tests: a temp home, simulated GPUs, the stand-in trainer, CLI runs.

Every test gets its own TUNEQUEUE_HOME; at teardown the runner (if any) and every job process group
recorded in the queue are killed, so no test leaves processes behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest
from tq_cli_testkit import CliHome

STAND_IN = Path(__file__).with_name("stand_in_train.py")


class Home(CliHome):
    """A tunequeue home for one test; its stand-in tasks save a checkpoint every 2 steps by default."""

    def task(self, name: str, *, steps: int = 6, save_steps: int = 2, **extra) -> Path:
        """Write a valid task file whose stand-in run takes ``steps`` steps."""
        return super().task(name, steps=steps, save_steps=save_steps, **extra)


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
    home.kill_runner()
    if (home.path / "queue.db").exists():
        from tunequeue.jobqueue import jobs

        for job in jobs.list_jobs(home.db()):
            if job.pgid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(job.pgid, signal.SIGKILL)
