"""Devices for interactive work outside the queue (the TUI's chat): a GPU no job uses, else the CPU.

`pick_device` asks the same ledger the runner schedules by: our active jobs' assigned GPUs are taken
whatever NVML shows, and a GPU with a foreign compute process or more memory in use than
``gpu_free_memory_mib`` is taken too (`tunequeue.runner.scheduler.free_gpus`). The answer is
``"cuda:N"`` (N the NVML index, which is the PCI bus order) or ``"cpu"``; `device_env` turns it into the
environment of the child process that loads the model, so it sees only that GPU (or none).
"""

from __future__ import annotations

from typing import Any

CPU = "cpu"


def _scheduler_settings() -> Any:
    from tunequeue.core.errors import UserError
    from tunequeue.runner.scheduler import SchedulerSettings
    from tunequeue.runner.settings import load_settings

    try:
        return load_settings().scheduler_settings()
    except UserError:
        # a broken runner block must not stop a chat: the defaults still keep off our jobs' GPUs
        return SchedulerSettings()


def pick_device(db: Any, gpus: Any = None) -> str:
    """``"cuda:N"`` for the lowest-indexed GPU that no job of ours uses and that is otherwise idle, else
    ``"cpu"``. ``gpus`` is a `GpuSnapshot` already read (default: read the GPUs now)."""
    from tunequeue.core.errors import UserError
    from tunequeue.jobqueue import jobs
    from tunequeue.runner.scheduler import free_gpus

    if gpus is None:
        from tunequeue.gpus import read_gpus

        try:
            gpus = read_gpus()
        except UserError:
            return CPU
    busy: dict[int, list[int]] = {}
    for job in jobs.list_jobs(db, states=list(jobs.ACTIVE_STATES)):
        for index in job.assigned_gpus:
            busy.setdefault(index, []).append(job.id)
    free = free_gpus(gpus.gpus, busy=busy, settings=_scheduler_settings())
    return f"cuda:{free[0]}" if free else CPU


def gpu_index(device: str) -> int | None:
    """The NVML index of a ``"cuda:N"`` device, None for ``"cpu"``."""
    if device.startswith("cuda:"):
        return int(device.split(":", 1)[1])
    return None


def device_env(device: str) -> dict[str, str]:
    """Environment for a process that must use only ``device``: that one GPU, or no GPU at all."""
    index = gpu_index(device)
    return {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": "" if index is None else str(index),
    }
