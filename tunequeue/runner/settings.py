"""Runner settings: tick interval, cancel grace period, GPU sampling, launch command override.

Values come from the ``runner:`` mapping of the home's settings.yaml, then from environment variables,
which win (tests and systemd units set them):

- ``TUNEQUEUE_TICK_SECONDS``       seconds between two ticks of the runner loop (default 2)
- ``TUNEQUEUE_CANCEL_GRACE_SECONDS`` seconds between SIGTERM and SIGKILL when cancelling (default 60)
- ``TUNEQUEUE_GPU_SAMPLE_SECONDS`` seconds between two GPU samples stored in the queue (default 5)
- ``TUNEQUEUE_GPU_SAMPLE_KEEP_SECONDS`` how long GPU samples are kept (default 7 days)
- ``TUNEQUEUE_TRAIN_COMMAND``      replaces ``python -m tunequeue.train`` (shell-style words; the task
  file path is appended); used by tests to launch a stand-in training script
- ``TUNEQUEUE_GPU_FREE_MEMORY_MIB`` a GPU with more memory in use counts as busy (default 1024)
- ``TUNEQUEUE_MAX_CPU_JOBS``       CPU-only jobs running at once (default 2)

GPU sharing (``runner:`` keys of settings.yaml, see `tunequeue.runner.scheduler`):

- ``max_jobs_per_gpu``          our jobs on one GPU at most (default 2; 1 turns sharing off)
- ``joinable_fraction``         a running job may be joined when its VRAM estimate is at most this
  share of its GPU (default 0.5)
- ``share_max_utilization_pct`` no job joins a GPU whose recent utilisation is above this (default 80)
- ``memory_headroom_fraction``  share of a GPU kept free above the estimates of its jobs (default 0.10)

``backend`` is ``local`` (start jobs on this machine's GPUs) or ``slurm`` (submit them with sbatch);
``slurm`` holds that backend's options (see `tunequeue.runner.backends.slurm.SlurmOptions`). Both are
set by ``tunequeue runner start --backend ...`` and kept in settings.yaml.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from tunequeue.core.errors import UserError
from tunequeue.core.settings_file import read_settings


@dataclass
class RunnerSettings:
    """Everything the runner loop and the launcher can be tuned with."""

    tick_seconds: float = 2.0
    cancel_grace_seconds: float = 60.0
    gpu_sample_seconds: float = 5.0
    gpu_sample_keep_seconds: float = 7 * 24 * 3600.0
    train_command: list[str] | None = None
    gpu_free_memory_mib: int = 1024
    allowed_gpus: list[int] | None = None
    max_wait_seconds: float = 3600.0
    max_cpu_jobs: int = 2
    max_jobs_per_gpu: int = 2
    joinable_fraction: float = 0.5
    share_max_utilization_pct: float = 80.0
    memory_headroom_fraction: float = 0.10
    backend: str = "local"
    slurm: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def scheduler_settings(self):
        """The scheduler's own settings object built from these values."""
        from tunequeue.runner.scheduler import SchedulerSettings

        return SchedulerSettings(
            gpu_free_memory_mib=self.gpu_free_memory_mib,
            allowed_gpus=self.allowed_gpus,
            max_wait_seconds=self.max_wait_seconds,
            max_cpu_jobs=self.max_cpu_jobs,
            max_jobs_per_gpu=self.max_jobs_per_gpu,
            joinable_fraction=self.joinable_fraction,
            share_max_utilization_pct=self.share_max_utilization_pct,
            memory_headroom_fraction=self.memory_headroom_fraction,
        )


_ENV_FLOATS = {
    "TUNEQUEUE_TICK_SECONDS": "tick_seconds",
    "TUNEQUEUE_CANCEL_GRACE_SECONDS": "cancel_grace_seconds",
    "TUNEQUEUE_GPU_SAMPLE_SECONDS": "gpu_sample_seconds",
    "TUNEQUEUE_GPU_SAMPLE_KEEP_SECONDS": "gpu_sample_keep_seconds",
    "TUNEQUEUE_GPU_FREE_MEMORY_MIB": "gpu_free_memory_mib",
    "TUNEQUEUE_MAX_CPU_JOBS": "max_cpu_jobs",
}


_INT_SETTINGS = ("gpu_free_memory_mib", "max_cpu_jobs")


def _file_values() -> dict[str, Any]:
    runner = read_settings().get("runner")
    return runner if isinstance(runner, dict) else {}


def load_settings() -> RunnerSettings:
    """Read the runner settings of the current home, with environment overrides applied."""
    settings = RunnerSettings()
    known = set(RunnerSettings.__dataclass_fields__) - {"extra"}
    for key, value in _file_values().items():
        if key in known:
            setattr(settings, key, value)
        else:
            settings.extra[key] = value
    for env_name, attr in _ENV_FLOATS.items():
        raw = os.environ.get(env_name)
        if raw:
            try:
                number = float(raw)
            except ValueError:
                raise UserError(f"{env_name} must be a number; got {raw!r}") from None
            setattr(settings, attr, int(number) if attr in _INT_SETTINGS else number)
    command = os.environ.get("TUNEQUEUE_TRAIN_COMMAND")
    if command:
        settings.train_command = shlex.split(command)
    elif isinstance(settings.train_command, str):
        settings.train_command = shlex.split(settings.train_command)
    return settings
