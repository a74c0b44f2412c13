"""Which queued jobs start now, and on which GPUs: a pure function of the queue and the GPU states.

Rules, in the order they apply:

- Jobs are considered by priority (higher first), then submission time, then id.
- A job whose ``after`` dependencies failed is reported in ``dependency_failed``; one whose
  dependencies are unfinished waits with reason "Dependency (job N)".
- A GPU is usable unless it is outside the allow-list, in MIG mode or in exclusive-process compute
  mode. A usable GPU is *free* when no job of ours is on it, NVML shows no compute process on it and
  its used memory is under ``gpu_free_memory_mib``. Our own ledger (``busy``) is the truth: a GPU we
  assigned stays taken until the runner says the job's processes are gone, whatever NVML shows.
- Spread before packing: a job asking for N GPUs takes N free GPUs (lowest indices first); with a
  VRAM estimate only GPUs with that much memory qualify. Every job, sharing or not, gets whole GPUs
  while there are any.
- Share only where it pays: a job with ``allow_share`` and a VRAM estimate that finds too few free
  GPUs may *join* a GPU of ours when
  - every job already there may *be joined*: it allows sharing and its own estimate is at most
    ``joinable_fraction`` of the GPU (a big job is never slowed by a newcomer);
  - fewer than ``max_jobs_per_gpu`` of our jobs are on it;
  - its utilisation (the runner's summary of recent NVML samples, ``gpu_utilization``) is at most
    ``share_max_utilization_pct``: a compute-bound tenant would only be slowed down, and unknown
    utilisation counts as busy;
  - the estimate fits in what is left: the total minus the larger of NVML's used memory and the
    estimates of our jobs there (a new job allocates over seconds), minus a headroom of
    ``memory_headroom_fraction`` of the GPU (estimates run low).
  Among such GPUs the least crowded, then the emptiest, goes first. A GPU that received a job this
  tick takes no further job in the same tick: its measured utilisation no longer describes it.
- CPU: jobs asking for 0 GPUs run on CPU (no GPU slot), up to ``max_cpu_jobs`` at once. When the
  machine has no GPU at all, GPU jobs whose task allows CPU (``allow_cpu``, default true) run there too.
- Reservation and backfill: a job that cannot start for lack of GPUs is *blocked*; the runner keeps
  the time each job was first blocked (``blocked_since``). Once the first blocked job (in the order
  above) has been blocked for ``max_wait_seconds``, it reserves the GPUs that will free up first by
  the running jobs' estimated remaining times (``eta``), and its earliest start is when the last of
  them frees. Jobs behind it still start on GPUs outside the reservation, and on a free reserved GPU
  when their expected run time (``expected_seconds``) ends before that earliest start. When some
  reserved GPU has no known end, every GPU is reserved. A job that could never fit (more GPUs than
  usable ones) never reserves.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tunequeue.gpus import Gpu
from tunequeue.jobqueue.jobs import Job, JobState

DependencyInfo = Mapping[int, tuple[str, str]] | Callable[[Job], tuple[str, str]]

_CUDA_OOM_MARKERS = ("cuda out of memory", "outofmemoryerror")


@dataclass
class SchedulerSettings:
    """Knobs of the scheduler (the runner builds them from its settings)."""

    gpu_free_memory_mib: float = 1024
    allowed_gpus: Sequence[int] | None = None
    max_wait_seconds: float = 3600.0
    max_cpu_jobs: int = 2
    max_jobs_per_gpu: int = 2
    joinable_fraction: float = 0.5
    share_max_utilization_pct: float = 80.0
    memory_headroom_fraction: float = 0.10


@dataclass
class Decision:
    """What the runner should do this tick.

    ``blocked`` lists the jobs that wait for GPUs (not for a dependency or the CPU job limit), so the
    runner can remember since when; ``reserved_for`` is the job holding the reservation, if any.
    """

    start: list[tuple[int, list[int]]] = field(default_factory=list)
    waiting: dict[int, str] = field(default_factory=dict)
    dependency_failed: list[tuple[int, str]] = field(default_factory=list)
    blocked: list[int] = field(default_factory=list)
    reserved_for: int | None = None


_FREE, _JOINABLE, _TAKEN = "free", "joinable", "taken"


@dataclass
class _Slot:
    gpu: Gpu
    status: str
    tenants: int = 0
    reserved_mib: float = 0.0
    free_in: float = 0.0  # seconds until our jobs on it end; inf when unknown or never

    def room_mib(self, headroom_fraction: float) -> float:
        total = self.gpu.memory_total_mib
        return total - max(self.gpu.memory_used_mib, self.reserved_mib) - headroom_fraction * total

    def copy(self) -> _Slot:
        return _Slot(self.gpu, self.status, self.tenants, self.reserved_mib, self.free_in)


@dataclass
class _Reservation:
    job_id: int
    gpus: frozenset[int]
    earliest_start_in: float  # seconds from now; inf when unknown


def task_allows_cpu(job: Job) -> bool:
    """Whether the job's task may run on CPU when there is no GPU (``allow_cpu``, default true)."""
    text = job.task_yaml or ""
    # Stored tasks are written by `dump_task_yaml`, which spells every key plainly: without the key
    # the default holds, and parsing thousands of queued tasks each tick would cost seconds.
    if "allow_cpu" not in text:
        return True
    return _yaml_allows_cpu(text)


@functools.lru_cache(maxsize=16384)
def _yaml_allows_cpu(task_yaml: str) -> bool:
    from tunequeue.core.task_files import stored_task_values

    value = stored_task_values(task_yaml).get("allow_cpu", True)
    return value is not False and str(value).lower() not in ("false", "no", "0")


def joinable(job: Job, gpu_memory_mib: float, settings: SchedulerSettings) -> bool:
    """Whether a running job may be joined on a GPU of ``gpu_memory_mib``: it allows sharing and its
    own estimate is at most ``joinable_fraction`` of the GPU."""
    return bool(
        job.allow_share
        and job.requested_vram_gib
        and job.requested_vram_gib * 1024 <= settings.joinable_fraction * gpu_memory_mib
    )


def died_of_cuda_oom(reason: str, log_lines: Sequence[str]) -> bool:
    """Whether an exit reason or the tail of a job's log shows a CUDA out-of-memory error."""
    text = "\n".join([reason or "", *log_lines]).lower()
    return any(marker in text for marker in _CUDA_OOM_MARKERS)


def share_oom_retry(job: Job, *, was_sharing: bool, reason: str, log_lines: Sequence[str]) -> str | None:
    """The reason to queue a running job that just ended again on a whole GPU, or None.

    Only a job that shared a GPU and died of CUDA out-of-memory is retried, once: the retry runs with
    ``allow_share`` off, so it neither joins nor can be joined, and a second OOM is a plain failure.
    """
    if job.state != JobState.RUNNING or not job.allow_share or not was_sharing:
        return None
    if not died_of_cuda_oom(reason, log_lines):
        return None
    gpus = ", ".join(str(index) for index in job.assigned_gpus) or "?"
    word = "GPUs" if len(job.assigned_gpus) > 1 else "GPU"
    return f"CUDA out of memory while sharing {word} {gpus}; queued again to run on a whole GPU"


def _gib(mib: float) -> str:
    return f"{mib / 1024:g} GiB"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _build_slots(
    gpus: Sequence[Gpu],
    busy: Mapping[int, Sequence[int]],
    settings: SchedulerSettings,
    active_by_id: Mapping[int, Job],
    utilization: Mapping[int, float | None] | None,
    eta: Mapping[int, float],
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
            slots[gpu.index] = _Slot(gpu, _FREE if idle else _TAKEN, free_in=0.0 if idle else math.inf)
            continue
        tenants = [active_by_id.get(job_id) for job_id in ours]
        reserved = sum(job.requested_vram_gib * 1024 for job in tenants if job and job.requested_vram_gib)
        util = gpu.utilization_pct if utilization is None else utilization.get(gpu.index, gpu.utilization_pct)
        can_join = (
            all(job is not None and joinable(job, gpu.memory_total_mib, settings) for job in tenants)
            and len(ours) < settings.max_jobs_per_gpu
            and util is not None
            and util <= settings.share_max_utilization_pct
        )
        free_in = max(eta.get(job_id, math.inf) for job_id in ours)
        slots[gpu.index] = _Slot(
            gpu, _JOINABLE if can_join else _TAKEN, len(ours), reserved, max(0.0, free_in)
        )
    return slots, excluded


def free_gpus(
    gpus: Sequence[Gpu], *, busy: Mapping[int, Sequence[int]], settings: SchedulerSettings
) -> list[int]:
    """Indices of the usable GPUs that are free right now (no job of ours, no foreign compute process,
    used memory under ``gpu_free_memory_mib``), lowest first: the same rule the scheduler starts jobs by.

    ``busy`` maps a GPU index to the ids of our active jobs on it, as for `schedule`.
    """
    slots, _excluded = _build_slots(gpus, busy, settings, {}, None, {})
    return sorted(index for index, slot in slots.items() if slot.status == _FREE)


def _place(
    job: Job, slots: Mapping[int, _Slot], settings: SchedulerSettings, usable: Callable[[_Slot], bool]
) -> list[_Slot] | None:
    """The GPUs the job would start on right now (whole free ones first, then joins), or None."""
    need = job.requested_gpus
    vram_mib = job.requested_vram_gib * 1024 if job.requested_vram_gib else None
    whole = [
        s
        for s in slots.values()
        if s.status == _FREE
        and usable(s)
        and (vram_mib is None or s.gpu.memory_total_mib - s.gpu.memory_used_mib >= vram_mib)
    ]
    whole.sort(key=lambda s: s.gpu.index)
    if len(whole) >= need:
        return whole[:need]
    if not job.allow_share or vram_mib is None:
        return None
    headroom = settings.memory_headroom_fraction
    joins = [
        s for s in slots.values() if s.status == _JOINABLE and usable(s) and s.room_mib(headroom) >= vram_mib
    ]
    joins.sort(key=lambda s: (s.tenants, -s.room_mib(headroom), s.gpu.index))
    if len(whole) + len(joins) < need:
        return None
    return sorted(whole + joins[: need - len(whole)], key=lambda s: s.gpu.index)


def _available(job: Job, slots: Mapping[int, _Slot], settings: SchedulerSettings) -> int:
    """How many GPUs the job could use right now (for the wait reason)."""
    vram_mib = job.requested_vram_gib * 1024 if job.requested_vram_gib else None
    count = 0
    for slot in slots.values():
        if slot.status == _FREE:
            count += vram_mib is None or slot.gpu.memory_total_mib - slot.gpu.memory_used_mib >= vram_mib
        elif slot.status == _JOINABLE and job.allow_share and vram_mib is not None:
            count += slot.room_mib(settings.memory_headroom_fraction) >= vram_mib
    return count


def _resources_reason(job: Job, available: int) -> str:
    need = max(1, job.requested_gpus)
    if job.requested_vram_gib:
        room = "with room" if job.allow_share else "free"
        return (
            f"Resources (needs {_plural(need, 'GPU')} with {job.requested_vram_gib:g} GiB free, "
            f"{available} {room})"
        )
    return f"Resources (needs {_plural(need, 'GPU')}, {available} free)"


def _reserve(job: Job, slots: Mapping[int, _Slot]) -> _Reservation:
    """The GPUs that free up first for ``job`` and when the last of them does."""
    vram_mib = job.requested_vram_gib * 1024 if job.requested_vram_gib else None
    candidates = sorted(
        (s for s in slots.values() if vram_mib is None or s.gpu.memory_total_mib >= vram_mib),
        key=lambda s: (s.free_in, s.gpu.index),
    )
    chosen = candidates[: job.requested_gpus]
    earliest = max(s.free_in for s in chosen)
    if math.isinf(earliest):
        return _Reservation(job.id, frozenset(slots), math.inf)
    return _Reservation(job.id, frozenset(s.gpu.index for s in chosen), earliest)


def schedule(
    queued: Sequence[Job],
    gpus: Sequence[Gpu],
    *,
    busy: Mapping[int, Sequence[int]],
    settings: SchedulerSettings,
    now: float,
    dependency: DependencyInfo | None = None,
    active_jobs: Sequence[Job] = (),
    gpu_utilization: Mapping[int, float | None] | None = None,
    blocked_since: Mapping[int, float] | None = None,
    eta: Mapping[int, float] | None = None,
    expected_seconds: Mapping[int, float] | None = None,
) -> Decision:
    """Decide which of the ``queued`` jobs start now and on which GPU indices.

    ``busy`` maps a GPU index to the ids of our active jobs on it. ``dependency`` gives each job's
    ("ready"|"waiting"|"failed", reason), as a dict by job id or a function of the job (missing: ready).
    ``active_jobs`` are our starting/running/cancelling jobs: they tell which GPUs hold joinable jobs
    and how many CPU jobs run; without them every busy GPU counts as fully taken and no CPU job as running.
    ``gpu_utilization`` is each GPU's recent utilisation in percent as the runner summarises its
    samples (None: not known yet; a GPU missing from it uses the snapshot's value).
    ``blocked_since`` is when each queued job was first blocked (missing: now). ``eta`` is the
    estimated seconds until each active job ends, ``expected_seconds`` the expected run time of queued
    jobs (both missing: unknown).
    Nothing is changed: the runner claims the ``start`` jobs and stores the ``waiting`` reasons.
    """
    decision = Decision()
    eta = eta or {}
    expected_seconds = expected_seconds or {}
    blocked_since = blocked_since or {}
    active_by_id = {job.id: job for job in active_jobs}
    slots, excluded = _build_slots(gpus, busy, settings, active_by_id, gpu_utilization, eta)
    initial = {index: slot.copy() for index, slot in slots.items()}
    cpu_running = sum(1 for job in active_jobs if not job.assigned_gpus)
    no_gpu_at_all = not gpus
    reservation: _Reservation | None = None

    def anywhere(_slot: _Slot) -> bool:
        return True

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

        usable: Callable[[_Slot], bool] = anywhere
        if reservation is not None:
            held = reservation
            duration = expected_seconds.get(job.id)
            ends_in_time = duration is not None and duration <= held.earliest_start_in

            def outside_reservation(
                slot: _Slot, held: _Reservation = held, ends_in_time: bool = ends_in_time
            ) -> bool:
                return slot.gpu.index not in held.gpus or (slot.status == _FREE and ends_in_time)

            usable = outside_reservation

        chosen = _place(job, slots, settings, usable)
        if chosen is not None:
            duration = expected_seconds.get(job.id, math.inf)
            for slot in chosen:
                slot.status = _TAKEN
                slot.tenants += 1
                slot.free_in = max(slot.free_in, duration)
            decision.start.append((job.id, [slot.gpu.index for slot in chosen]))
            continue

        decision.blocked.append(job.id)
        if reservation is not None and _place(job, slots, settings, anywhere) is not None:
            decision.waiting[job.id] = f"Priority (GPUs reserved for job {reservation.job_id})"
        elif _place(job, initial, settings, anywhere) is not None:
            decision.waiting[job.id] = "Priority"
        else:
            decision.waiting[job.id] = _resources_reason(job, _available(job, slots, settings))
        if reservation is None and now - blocked_since.get(job.id, now) >= settings.max_wait_seconds:
            reservation = _reserve(job, slots)
            decision.reserved_for = job.id
    return decision
