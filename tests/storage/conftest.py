"""Fixtures for the storage and safety tests: a private temp home driven through the real CLI.

Each test gets its own TUNEQUEUE_HOME with simulated GPUs, fast ticks and the stand-in trainer of the
e2e tests; at teardown the runner and every job process group recorded in the queue are killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest
from tq_cli_testkit import CliHome

STAND_IN = Path(__file__).resolve().parent.parent / "e2e" / "stand_in_train.py"


@pytest.fixture
def home(tmp_path, monkeypatch) -> CliHome:
    """A temp home (0700) with 2 simulated GPUs, 0.2 s ticks and the stand-in trainer."""
    root = tmp_path / "home"
    root.mkdir(mode=0o700)
    settings = {
        "TUNEQUEUE_HOME": str(root),
        "TUNEQUEUE_SIMULATED_GPUS": "2x24",
        "TUNEQUEUE_TICK_SECONDS": "0.2",
        "TUNEQUEUE_GPU_SAMPLE_SECONDS": "0.2",
        "TUNEQUEUE_CANCEL_GRACE_SECONDS": "5",
        "TUNEQUEUE_TRAIN_COMMAND": f"{sys.executable} {STAND_IN}",
        "STAND_IN_STEP_SECONDS": "0.05",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    result = CliHome(root, {**os.environ, **settings})
    yield result
    from tunequeue.core.private_files import UnsafePathError

    # Tests that make the home unsafe on purpose start no runner; the probe itself refuses such a home.
    with contextlib.suppress(UnsafePathError):
        result.kill_runner()
    if (root / "queue.db").is_file() and (root / "queue.db").stat().st_size:
        from tunequeue.jobqueue import jobs

        with contextlib.suppress(Exception):
            for job in jobs.list_jobs(result.db()):
                if job.pgid:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(job.pgid, signal.SIGKILL)
