"""The Slurm backend, one module per concern.

- `options`: `SlurmOptions`, the runner owner's settings narrowed per job by a task's allow-listed
  ``extra.slurm`` keys (the allow-list itself lives in `tunequeue.core.slurm_task`).
- `script`: the batch script of one job attempt, rendered so no value can leave its line or quoting.
- `client`: the Slurm command-line tools (``sbatch``, ``squeue --json``, ``scontrol``, ``scancel``).
- `backend`: `SlurmBackend`, which submits claimed jobs and follows them until they end.
"""

from __future__ import annotations

from tunequeue.runner.backends.slurm.backend import STATE_FILE, SlurmBackend
from tunequeue.runner.backends.slurm.client import (
    PENDING_STATES,
    RUNNING_STATES,
    SlurmError,
    SlurmJob,
    check_available,
)
from tunequeue.runner.backends.slurm.options import SlurmOptions
from tunequeue.runner.backends.slurm.script import (
    BATCH_FILE,
    BatchRequest,
    render_batch_script,
    request_for,
    shared_filesystem_warning,
)

__all__ = [
    "BATCH_FILE",
    "PENDING_STATES",
    "RUNNING_STATES",
    "STATE_FILE",
    "BatchRequest",
    "SlurmBackend",
    "SlurmError",
    "SlurmJob",
    "SlurmOptions",
    "check_available",
    "render_batch_script",
    "request_for",
    "shared_filesystem_warning",
]
