"""Which queued jobs start now, and on which GPUs: a pure function of the queue and the GPU states.

Rules, in the order they apply:

- Jobs are considered by priority (higher first), then submission time, then id.
- A job whose ``after`` dependencies failed is reported in ``dependency_failed``; one whose
  dependencies are unfinished waits with reason "Dependency (job N)".
- A GPU is usable unless it is outside the allow-list, in MIG mode or in exclusive-process compute
  mode. A usable GPU is *free* when no job of ours is on it, NVML shows no compute process on it and
  its used memory is under ``gpu_free_memory_mib``. Our own ledger (``busy``) is the truth: a GPU we
  assigned stays taken until the runner says the job's processes are gone, whatever NVML shows.
- A job asking for N GPUs takes N free GPUs (lowest indices first); with a VRAM estimate only GPUs
  with that much free memory qualify.
- Sharing: a job with ``allow_share`` and a VRAM estimate may also go on a GPU that only holds
  sharing jobs of ours, when its remaining memory fits. Remaining memory is the total minus the larger
  of NVML's used memory and the estimates of our jobs there (a new job allocates over seconds, so its
  estimate counts before NVML sees it). Already shared GPUs are filled first so free GPUs stay whole.
- CPU: jobs asking for 0 GPUs run on CPU (no GPU slot), up to ``max_cpu_jobs`` at once. When the
  machine has no GPU at all, GPU jobs whose task allows CPU (``allow_cpu``, default true) run there too.
- Lower jobs may use GPUs a blocked job cannot use yet (backfill), except that once a blocked job has
  waited ``max_wait_seconds``, it reserves: no job behind it starts on any GPU until it has started.
  A job that could never fit (more GPUs than usable ones) never reserves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tunequeue.gpus import Gpu
from tunequeue.jobqueue.jobs import Job, JobState

DependencyInfo = Mapping[int, tuple[str, str]] | Callable[[Job], tuple[str, str]]


@dataclass
class SchedulerSettings:
    """Knobs of the scheduler (the runner builds them from its settings)."""

    gpu_free_memory_mib: float = 1024
    allowed_gpus: Sequence[int] | None = None
    max_wait_seconds: float = 3600.0
    max_cpu_jobs: int = 2


@dataclass
class Decision:
    """What the runner should do this tick."""

    start: list[tuple[int, list[int]]] = field(default_factory=list)
    waiting: dict[int, str] = field(default_factory=dict)
    dependency_failed: list[tuple[int, str]] = field(default_factory=list)


_FREE, _SHARED, _TAKEN = "free", "shared", "taken"


@dataclass
class _Slot:
    gpu: Gpu
    status: str
    reserved_mib: float = 0.0

    def remaining_mib(self) -> float:
        return self.gpu.memory_total_mib - max(self.gpu.memory_used_mib, self.reserved_mib)


def task_allows_cpu(job: Job) -> bool:
    """Whether the job's task may run on CPU when there is no GPU (``allow_cpu``, default true)."""
    from tunequeue.core.task_files import stored_task_values

    value = stored_task_values(job.task_yaml).get("allow_cpu", True)
    return value is not False and str(value).lower() not in ("false", "no", "0")


def _gib(mib: float) -> str:
    return f"{mib / 1024:g} GiB"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _build_slots(
    gpus: Sequence[Gpu],
    busy: Mapping[int, Sequence[int]],
    settings: SchedulerSettings,
    active_by_id: Mapping[int, Job],
) -> tuple[dict[int, _Slot], list[str]]:
    """Usable GPUs with their status, and phrases for the unusable ones."""
    allowed = set(settings.allowed_gpus) if settings.allowed_gpus is not None else None
    slots: dict[int, _Slot] = {}
    excluded: list[str] = []
    for gpu in sorted(gpus, key=lambda g: g.index):
        if allowed is not None and gpu.index not in allowed:
            excluded.append(f"GPU {gpu.index} not allowed")
            continue
        if gpu.mig:
            excluded.append(f"GPU {gpu.index} in MIG mode")
            continue
        if gpu.exclusive_process:
            excluded.append(f"GPU {gpu.index} exclusive-process")
            continue
        ours = list(busy.get(gpu.index, ()))
        if not ours:
            idle = not gpu.processes and gpu.memory_used_mib <= settings.gpu_free_memory_mib
            slots[gpu.index] = _Slot(gpu, _FREE if idle else _TAKEN)
            continue
        sharers = [active_by_id.get(job_id) for job_id in ours]
        if all(job is not None and job.allow_share and job.requested_vram_gib for job in sharers):
            reserved = sum(job.requested_vram_gib * 1024 for job in sharers)
            slots[gpu.index] = _Slot(gpu, _SHARED, reserved)
        else:
            slots[gpu.index] = _Slot(gpu, _TAKEN)
    return slots, excluded


def _fitting(job: Job, slots: Mapping[int, _Slot]) -> list[_Slot]:
    """GPUs the job could start on right now, best first."""
    vram_mib = job.requested_vram_gib * 1024 if job.requested_vram_gib else None
    if job.allow_share and vram_mib is not None:
        fits = [s for s in slots.values() if s.status in (_FREE, _SHARED) and s.remaining_mib() >= vram_mib]
        # Fill shared GPUs first (tightest fit), keeping whole GPUs free for exclusive jobs.
        return sorted(fits, key=lambda s: (s.status == _FREE, s.remaining_mib(), s.gpu.index))
    fits = [
        s for s in slots.values() if s.status == _FREE and (vram_mib is None or s.remaining_mib() >= vram_mib)
    ]
    return sorted(fits, key=lambda s: s.gpu.index)


def _resources_reason(job: Job, available: int) -> str:
    need = max(1, job.requested_gpus)
    if job.requested_vram_gib:
        room = "with room" if job.allow_share else "free"
        return (
            f"Resources (needs {_plural(need, 'GPU')} with {job.requested_vram_gib:g} GiB free, "
            f"{available} {room})"
        )
    return f"Resources (needs {_plural(need, 'GPU')}, {available} free)"


def schedule(
    queued: Sequence[Job],
    gpus: Sequence[Gpu],
    *,
    busy: Mapping[int, Sequence[int]],
    settings: SchedulerSettings,
    now: float,
    dependency: DependencyInfo | None = None,
    active_jobs: Sequence[Job] = (),
) -> Decision:
    """Decide which of the ``queued`` jobs start now and on which GPU indices.

    ``busy`` maps a GPU index to the ids of our active jobs on it. ``dependency`` gives each job's
    ("ready"|"waiting"|"failed", reason), as a dict by job id or a function of the job (missing: ready).
    ``active_jobs`` are our starting/running/cancelling jobs: they tell which GPUs hold sharing jobs
    and how many CPU jobs run; without them every busy GPU counts as fully taken and no CPU job as running.
    Nothing is changed: the runner claims the ``start`` jobs and stores the ``waiting`` reasons.
    """
    decision = Decision()
    active_by_id = {job.id: job for job in active_jobs}
    slots, excluded = _build_slots(gpus, busy, settings, active_by_id)
    initial = {index: _Slot(slot.gpu, slot.status, slot.reserved_mib) for index, slot in slots.items()}
    cpu_running = sum(1 for job in active_jobs if not job.assigned_gpus)
    no_gpu_at_all = not gpus
    reserved_for: int | None = None

    order = sorted(
        (job for job in queued if job.state == JobState.QUEUED),
        key=lambda job: (-job.priority, job.submitted_at, job.id),
    )
    for job in order:
        if dependency is None:
            status, reason = "ready", ""
        elif callable(dependency):
            status, reason = dependency(job)
        else:
            status, reason = dependency.get(job.id, ("ready", ""))
        if status == "failed":
            decision.dependency_failed.append((job.id, reason))
            continue
        if status == "waiting":
            decision.waiting[job.id] = reason
            continue

        on_cpu = job.requested_gpus <= 0
        if not on_cpu and no_gpu_at_all:
            if not task_allows_cpu(job):
                decision.waiting[job.id] = "Resources (no GPU found and the task sets allow_cpu: false)"
                continue
            on_cpu = True
        if on_cpu:
            if cpu_running >= settings.max_cpu_jobs:
                decision.waiting[job.id] = f"Resources (CPU job limit of {settings.max_cpu_jobs} reached)"
                continue
            decision.start.append((job.id, []))
            cpu_running += 1
            continue

        if reserved_for is not None:
            decision.waiting[job.id] = f"Priority (GPUs reserved for job {reserved_for})"
            continue

        need = job.requested_gpus
        vram_mib = job.requested_vram_gib * 1024 if job.requested_vram_gib else None
        could_ever = [s for s in slots.values() if vram_mib is None or s.gpu.memory_total_mib >= vram_mib]
        if len(could_ever) < need:
            detail = f" with {job.requested_vram_gib:g} GiB" if vram_mib is not None else ""
            unusable = f"; {', '.join(excluded)}" if excluded else ""
            decision.waiting[job.id] = (
                f"Resources (needs {_plural(need, 'GPU')}{detail}, only {len(could_ever)} usable{unusable})"
            )
            continue

        fits = _fitting(job, slots)
        if len(fits) >= need:
            chosen = sorted(fits[:need], key=lambda s: s.gpu.index)
            for slot in chosen:
                if job.allow_share and vram_mib is not None:
                    slot.status = _SHARED
                    slot.reserved_mib += vram_mib
                else:
                    slot.status = _TAKEN
            decision.start.append((job.id, [slot.gpu.index for slot in chosen]))
            continue

        if len(_fitting(job, initial)) >= need:
            decision.waiting[job.id] = "Priority"
        else:
            decision.waiting[job.id] = _resources_reason(job, len(fits))
        if now - job.submitted_at >= settings.max_wait_seconds:
            reserved_for = job.id
    return decision
