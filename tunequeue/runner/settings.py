"""Runner settings: tick interval, cancel grace period, GPU sampling, launch command override.

Values come from the ``runner:`` mapping of the home's settings.yaml, then from environment variables,
which win (tests and systemd units set them). Both are validated by the one settings model in
`tunequeue.core.settings_file` (pydantic-settings); a bad value is a one-line `UserError` naming the key
or the variable, so ``tunequeue runner start`` refuses before it detaches.

- ``TUNEQUEUE_TICK_SECONDS``       seconds between two ticks of the runner loop (default 2, > 0)
- ``TUNEQUEUE_CANCEL_GRACE_SECONDS`` seconds between SIGTERM and SIGKILL when cancelling (default 60, > 0)
- ``TUNEQUEUE_GPU_SAMPLE_SECONDS`` seconds between two GPU samples stored in the queue (default 5)
- ``TUNEQUEUE_GPU_SAMPLE_KEEP_SECONDS`` how long GPU samples are kept (default 7 days)
- ``TUNEQUEUE_TRAIN_COMMAND``      replaces ``python -m tunequeue.train`` (shell-style words; the task
  file path is appended); used by tests to launch a stand-in training script
- ``TUNEQUEUE_GPU_FREE_MEMORY_MIB`` a GPU with more memory in use counts as busy (default 1024)
- ``TUNEQUEUE_MAX_CPU_JOBS``       CPU-only jobs running at once (default 2, >= 0)
- ``TUNEQUEUE_ALLOWED_GPUS``, ``TUNEQUEUE_MAX_WAIT_SECONDS``, ``TUNEQUEUE_BACKEND`` likewise

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

from tunequeue.core.settings_file import runner_block
from tunequeue.core.settings_models import RunnerBlock


class RunnerSettings(RunnerBlock):
    """Everything the runner loop and the launcher can be tuned with (validated on construction)."""

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


def load_settings() -> RunnerSettings:
    """Read the runner settings of the current home, with environment overrides applied."""
    return RunnerSettings(**runner_block().model_dump())
