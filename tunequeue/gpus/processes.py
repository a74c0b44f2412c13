"""Who the processes on the GPUs are, which of them belong to our jobs, and how busy the host is.

NVML gives a pid and GPU memory per process; the owner and the command line come from the host's
process table through psutil. A pid that is not visible here (gone already, or a host pid seen from
inside a container) keeps an empty user and falls back to NVML's process name as its command.

Our jobs are recognised by pid: the job's own pid, a process in the job's process group, or a
descendant of the job's pid (a trainer that started its own session). Jobs are passed in as objects
with ``pid`` and ``pgid`` attributes, so this module does not depend on the queue.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psutil

from tunequeue.gpus.devices import Gpu, GpuProcess

_MIB = 1024 * 1024
# How far up the parent chain a GPU process is followed to find a job's pid.
_MAX_ANCESTORS = 16


@dataclass
class HostStats:
    """The host's CPU and memory at one moment."""

    cpu_pct: float
    cpu_count: int
    memory_used_mib: float
    memory_total_mib: float
    swap_used_mib: float
    swap_total_mib: float
    load_average: tuple[float, float, float] | None = None


def read_host() -> HostStats:
    """CPU use since the previous call in this process (0 on the first) and memory and swap in use."""
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    try:
        load: tuple[float, float, float] | None = tuple(os.getloadavg())  # type: ignore[assignment]
    except OSError:
        load = None
    return HostStats(
        cpu_pct=float(psutil.cpu_percent(interval=None)),
        cpu_count=psutil.cpu_count() or 1,
        memory_used_mib=(memory.total - memory.available) / _MIB,
        memory_total_mib=memory.total / _MIB,
        swap_used_mib=swap.used / _MIB,
        swap_total_mib=swap.total / _MIB,
        load_average=load,
    )


def _user_and_command(pid: int) -> tuple[str, str]:
    """The owner and command line of ``pid`` on this host; empty strings for what cannot be read."""
    try:
        process = psutil.Process(pid)
    except (psutil.Error, ValueError):
        return "", ""
    user = command = ""
    try:
        user = process.username()
    except (psutil.Error, KeyError):
        # KeyError: a uid without a passwd entry (common in containers); show the number instead.
        try:
            user = str(process.uids().real)
        except psutil.Error:
            user = ""
    try:
        command = " ".join(process.cmdline()) or process.name()
    except psutil.Error:
        command = ""
    return user, command


def describe(gpus: Iterable[Gpu]) -> None:
    """Fill in ``user`` and ``command`` of every process on ``gpus`` that does not have them yet."""
    cache: dict[int, tuple[str, str]] = {}
    for gpu in gpus:
        for process in gpu.all_processes:
            if process.user and process.command:
                continue
            if process.pid not in cache:
                cache[process.pid] = _user_and_command(process.pid)
            user, command = cache[process.pid]
            process.user = process.user or user
            process.command = process.command or command or process.name


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError, OSError):
        return None


def _ancestors(pid: int) -> list[int]:
    try:
        process = psutil.Process(pid)
        return [parent.pid for parent in process.parents()[:_MAX_ANCESTORS]]
    except (psutil.Error, ValueError):
        return []


def job_of(pid: int, jobs: Iterable[Any]) -> Any | None:
    """The job among ``jobs`` that ``pid`` belongs to, or None for a process that is not ours."""
    candidates = [job for job in jobs if getattr(job, "pid", None)]
    for job in candidates:
        if job.pid == pid:
            return job
    group = _process_group(pid)
    if group is not None:
        for job in candidates:
            if getattr(job, "pgid", None) and job.pgid == group:
                return job
    ancestors = set(_ancestors(pid))
    for job in candidates:
        if job.pid in ancestors:
            return job
    return None


def match_jobs(gpus: Iterable[Gpu], jobs: Iterable[Any]) -> dict[int, Any]:
    """Map the pid of every process on ``gpus`` that belongs to one of ``jobs`` to that job."""
    jobs = list(jobs)
    found: dict[int, Any] = {}
    for gpu in gpus:
        for process in gpu.all_processes:
            if process.pid not in found:
                job = job_of(process.pid, jobs)
                if job is not None:
                    found[process.pid] = job
    return found


def processes_by_memory(gpus: Iterable[Gpu]) -> list[tuple[Gpu, GpuProcess]]:
    """Every (GPU, process) pair, the largest GPU memory first (unknown memory last), then GPU and pid."""
    pairs = [(gpu, process) for gpu in gpus for process in gpu.all_processes]
    return sorted(
        pairs,
        key=lambda pair: (
            pair[1].used_memory_mib is None,
            -(pair[1].used_memory_mib or 0.0),
            pair[0].index,
            pair[1].pid,
        ),
    )
