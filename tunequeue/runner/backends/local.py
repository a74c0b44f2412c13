"""The local backend: jobs run as processes on this machine, on GPUs the runner's scheduler picks.

One tick is the runner's own sequence (see `tunequeue.runner.daemon`): reap finished processes, adopt
live ones an earlier runner started, sample the GPUs, ingest metrics, then schedule and launch queued
jobs through `tunequeue.runner.launch`.
"""

from __future__ import annotations


class LocalBackend:
    """Start and supervise jobs as local processes (the default backend)."""

    name = "local"

    def tick(self, runner, report, now: float, *, schedule: bool = True) -> None:
        """Reap → adopt → sample GPUs → ingest metrics → (schedule and launch)."""
        runner.reap(report, now)
        runner.adopt(report)
        snapshot = runner.sample_gpus(report, now)
        runner.ingest(report)
        if schedule:
            runner.schedule(report, snapshot, now)
