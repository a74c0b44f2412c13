"""Scheduler table tests: GPU states × queued jobs → which jobs start on which GPUs, and why others wait."""

from __future__ import annotations

import pytest

from tunequeue.gpus import Gpu, GpuProcess
from tunequeue.jobqueue.jobs import Job, JobState
from tunequeue.runner.scheduler import (
    Decision,
    SchedulerSettings,
    died_of_cuda_oom,
    schedule,
    share_oom_retry,
    task_allows_cpu,
)

NOW = 10_000.0
GIB = 1024


def gpu(index, total_gib=80, used_mib=0, processes=(), util=0.0, **flags):
    return Gpu(
        index=index,
        uuid=f"GPU-{index}",
        name="test GPU",
        pci_bus_id=f"00000000:{index + 1:02X}:00.0",
        memory_total_mib=total_gib * GIB,
        memory_used_mib=used_mib,
        utilization_pct=util,
        temperature_c=30.0,
        power_w=50.0,
        compute_capability=(9, 0),
        processes=[GpuProcess(pid=p, used_memory_mib=1000) for p in processes],
        simulated=True,
        **flags,
    )


def job(
    job_id, gpus=1, priority=0, submitted=None, vram=None, share=False, after=(), task="stage: sft\n", **kw
):
    return Job(
        id=job_id,
        name=f"j{job_id}",
        priority=priority,
        requested_gpus=gpus,
        requested_vram_gib=vram,
        allow_share=share,
        submitted_at=NOW - 60 + job_id if submitted is None else submitted,
        after=list(after),
        task_yaml=task,
        **kw,
    )


def active(job_id, gpus_on, vram=None, share=False):
    return job(
        job_id, gpus=len(gpus_on), vram=vram, share=share, state=JobState.RUNNING, assigned_gpus=gpus_on
    )


_INPUTS = ("gpu_utilization", "blocked_since", "eta", "expected_seconds")


def run(queued, gpus, busy=None, active_jobs=(), dependency=None, **options):
    """Schedule with ``options`` split into scheduler settings and the runner's other inputs."""
    inputs = {key: options.pop(key) for key in _INPUTS if key in options}
    return schedule(
        queued,
        gpus,
        busy=busy or {},
        settings=SchedulerSettings(**options),
        now=NOW,
        dependency=dependency,
        active_jobs=active_jobs,
        **inputs,
    )


CASES = [
    # (name, queued, gpus, busy, active, settings, expected start, expected waiting)
    ("one job one free GPU", [job(1)], [gpu(0)], {}, [], {}, [(1, [0])], {}),
    ("lowest free index first", [job(1)], [gpu(1), gpu(0)], {}, [], {}, [(1, [0])], {}),
    (
        "busy foreign process",
        [job(1)],
        [gpu(0, processes=[777]), gpu(1)],
        {},
        [],
        {},
        [(1, [1])],
        {},
    ),
    (
        "foreign process on the only GPU",
        [job(1)],
        [gpu(0, processes=[777])],
        {},
        [],
        {},
        [],
        {1: "Resources (needs 1 GPU, 0 free)"},
    ),
    (
        "memory above threshold",
        [job(1)],
        [gpu(0, used_mib=2048), gpu(1, used_mib=900)],
        {},
        [],
        {},
        [(1, [1])],
        {},
    ),
    (
        "memory threshold configurable",
        [job(1)],
        [gpu(0, used_mib=2048)],
        {},
        [],
        {"gpu_free_memory_mib": 4096},
        [(1, [0])],
        {},
    ),
    (
        "assigned by us even though NVML shows it idle",
        [job(1)],
        [gpu(0), gpu(1)],
        {0: [50]},
        [active(50, [0])],
        {},
        [(1, [1])],
        {},
    ),
    (
        "multi-GPU job takes two",
        [job(1, gpus=2)],
        [gpu(0), gpu(1), gpu(2)],
        {1: [50]},
        [active(50, [1])],
        {},
        [(1, [0, 2])],
        {},
    ),
    (
        "multi-GPU job waits with a reason",
        [job(1, gpus=2)],
        [gpu(0), gpu(1)],
        {1: [50]},
        [active(50, [1])],
        {},
        [],
        {1: "Resources (needs 2 GPUs, 1 free)"},
    ),
    (
        "more GPUs than the machine has",
        [job(1, gpus=4)],
        [gpu(0), gpu(1)],
        {},
        [],
        {},
        [],
        {1: "Resources (needs 4 GPUs, only 2 usable)"},
    ),
    (
        "priority first",
        [job(1, priority=0), job(2, priority=5)],
        [gpu(0)],
        {},
        [],
        {},
        [(2, [0])],
        {1: "Priority"},
    ),
    (
        "submission order within a priority",
        [job(2, submitted=NOW - 10), job(1, submitted=NOW - 20), job(3, submitted=NOW - 30, priority=-1)],
        [gpu(0)],
        {},
        [],
        {},
        [(1, [0])],
        {2: "Priority", 3: "Priority"},
    ),
    (
        "backfill: a small job uses the GPU a big job cannot use yet",
        [job(1, gpus=2, priority=5), job(2)],
        [gpu(0), gpu(1)],
        {1: [50]},
        [active(50, [1])],
        {},
        [(2, [0])],
        {1: "Resources (needs 2 GPUs, 1 free)"},
    ),
    (
        "no starvation: blocked for max wait, the big job reserves every GPU while ETAs are unknown",
        [job(1, gpus=2, priority=5), job(2)],
        [gpu(0), gpu(1)],
        {1: [50]},
        [active(50, [1])],
        {"max_wait_seconds": 3600, "blocked_since": {1: NOW - 4000}},
        [],
        {1: "Resources (needs 2 GPUs, 1 free)", 2: "Priority (GPUs reserved for job 1)"},
    ),
    (
        "the reservation clock starts when the job was first blocked, not at submission",
        [job(1, gpus=2, priority=5, submitted=NOW - 99999), job(2)],
        [gpu(0), gpu(1)],
        {1: [50]},
        [active(50, [1])],
        {"max_wait_seconds": 3600, "blocked_since": {1: NOW - 60}},
        [(2, [0])],
        {1: "Resources (needs 2 GPUs, 1 free)"},
    ),
    (
        "backfill on a reserved GPU by a job that ends before the reserved job's earliest start",
        [job(1, gpus=2, priority=5), job(2), job(3)],
        [gpu(0), gpu(1), gpu(2)],
        {1: [50], 2: [51]},
        [active(50, [1]), active(51, [2])],
        {
            "blocked_since": {1: NOW - 4000},
            "eta": {50: 600.0, 51: 5000.0},
            "expected_seconds": {2: 900.0, 3: 500.0},
        },
        [(3, [0])],
        {1: "Resources (needs 2 GPUs, 1 free)", 2: "Priority (GPUs reserved for job 1)"},
    ),
    (
        "backfill on GPUs outside the reservation has no time limit",
        [job(1, priority=5, vram=60), job(2, vram=10, share=True)],
        [gpu(0, used_mib=70 * GIB, util=40), gpu(1, used_mib=10 * GIB, util=40)],
        {0: [50], 1: [51]},
        [active(50, [0], vram=70), active(51, [1], vram=10, share=True)],
        {"blocked_since": {1: NOW - 4000}, "eta": {50: 600.0, 51: 5000.0}},
        [(2, [1])],
        {1: "Resources (needs 1 GPU with 60 GiB free, 0 free)"},
    ),
    (
        "no join on a reserved GPU: it would slow the job the reservation waits for",
        [job(1, priority=5, vram=60), job(2, vram=10, share=True)],
        [gpu(0, used_mib=10 * GIB, util=40), gpu(1, used_mib=70 * GIB)],
        {0: [50], 1: [51]},
        [active(50, [0], vram=10, share=True), active(51, [1], vram=70)],
        {"blocked_since": {1: NOW - 4000}, "eta": {50: 600.0, 51: 5000.0}, "expected_seconds": {2: 60.0}},
        [],
        {
            1: "Resources (needs 1 GPU with 60 GiB free, 0 free)",
            2: "Priority (GPUs reserved for job 1)",
        },
    ),
    (
        "a reservation does not hold CPU jobs back",
        [job(1, gpus=2), job(2, gpus=0)],
        [gpu(0), gpu(1)],
        {1: [50]},
        [active(50, [1])],
        {"max_wait_seconds": 3600, "blocked_since": {1: NOW - 4000}},
        [(2, [])],
        {1: "Resources (needs 2 GPUs, 1 free)"},
    ),
    (
        "an impossible job never reserves",
        [job(1, gpus=8), job(2)],
        [gpu(0), gpu(1)],
        {},
        [],
        {"max_wait_seconds": 1, "blocked_since": {1: NOW - 99999}},
        [(2, [0])],
        {1: "Resources (needs 8 GPUs, only 2 usable)"},
    ),
    (
        "spread before packing: sharing jobs take whole free GPUs first",
        [job(1, vram=20, share=True), job(2, vram=20, share=True), job(3, vram=20, share=True)],
        [gpu(0), gpu(1)],
        {},
        [],
        {},
        [(1, [0]), (2, [1])],
        {3: "Priority"},
    ),
    (
        "a sharing job takes a free GPU rather than join a joinable one",
        [job(1, vram=20, share=True)],
        [gpu(0, used_mib=25 * GIB, util=40), gpu(1)],
        {0: [50]},
        [active(50, [0], vram=30, share=True)],
        {},
        [(1, [1])],
        {},
    ),
    (
        "joins a small sharing job when no whole GPU is free",
        [job(1, vram=20, share=True)],
        [gpu(0, used_mib=25 * GIB, util=40)],
        {0: [50]},
        [active(50, [0], vram=30, share=True)],
        {},
        [(1, [0])],
        {},
    ),
    (
        "the estimate of our job counts before NVML sees its memory",
        [job(1, vram=44, share=True)],
        [gpu(0, used_mib=2 * GIB, util=40)],
        {0: [50]},
        [active(50, [0], vram=30, share=True)],
        {},
        [],
        {1: "Resources (needs 1 GPU with 44 GiB free, 0 with room)"},
    ),
    (
        "headroom: 10 % of the GPU stays above the estimates",
        [job(1, vram=34, share=True)],
        [gpu(0, used_mib=40 * GIB, util=40)],
        {0: [50]},
        [active(50, [0], vram=30, share=True)],
        {},
        [],
        {1: "Resources (needs 1 GPU with 34 GiB free, 0 with room)"},
    ),
    (
        "headroom is configurable",
        [job(1, vram=34, share=True)],
        [gpu(0, used_mib=40 * GIB, util=40)],
        {0: [50]},
        [active(50, [0], vram=30, share=True)],
        {"memory_headroom_fraction": 0.0},
        [(1, [0])],
        {},
    ),
    (
        "a big job is never joined (estimate over half the GPU)",
        [job(1, vram=10, share=True)],
        [gpu(0, used_mib=45 * GIB, util=40)],
        {0: [50]},
        [active(50, [0], vram=45, share=True)],
        {},
        [],
        {1: "Resources (needs 1 GPU with 10 GiB free, 0 with room)"},
    ),
    (
        "the joinable fraction is configurable",
        [job(1, vram=10, share=True)],
        [gpu(0, used_mib=45 * GIB, util=40)],
        {0: [50]},
        [active(50, [0], vram=45, share=True)],
        {"joinable_fraction": 0.6},
        [(1, [0])],
        {},
    ),
    (
        "a big sharing job may join a small one when it fits",
        [job(1, vram=45, share=True)],
        [gpu(0, used_mib=20 * GIB, util=40)],
        {0: [50]},
        [active(50, [0], vram=20, share=True)],
        {},
        [(1, [0])],
        {},
    ),
    (
        "at most two jobs on one GPU by default",
        [job(1, vram=10, share=True)],
        [gpu(0, used_mib=20 * GIB, util=40)],
        {0: [50, 51]},
        [active(50, [0], vram=10, share=True), active(51, [0], vram=10, share=True)],
        {},
        [],
        {1: "Resources (needs 1 GPU with 10 GiB free, 0 with room)"},
    ),
    (
        "the jobs-per-GPU limit is configurable",
        [job(1, vram=10, share=True)],
        [gpu(0, used_mib=20 * GIB, util=40)],
        {0: [50, 51]},
        [active(50, [0], vram=10, share=True), active(51, [0], vram=10, share=True)],
        {"max_jobs_per_gpu": 3},
        [(1, [0])],
        {},
    ),
    (
        "the least crowded joinable GPU first",
        [job(1, vram=10, share=True)],
        [gpu(0, used_mib=20 * GIB, util=40), gpu(1, used_mib=30 * GIB, util=40)],
        {0: [50, 51], 1: [52]},
        [
            active(50, [0], vram=10, share=True),
            active(51, [0], vram=10, share=True),
            active(52, [1], vram=30, share=True),
        ],
        {"max_jobs_per_gpu": 3},
        [(1, [1])],
        {},
    ),
    (
        "one newcomer per GPU and tick: its utilisation is not measured yet",
        [job(1, vram=10, share=True), job(2, vram=10, share=True)],
        [gpu(0, used_mib=10 * GIB, util=40)],
        {0: [50]},
        [active(50, [0], vram=10, share=True)],
        {"max_jobs_per_gpu": 3},
        [(1, [0])],
        {2: "Priority"},
    ),
    (
        "no join on a compute-bound GPU (utilisation above 80 %)",
        [job(1, vram=10, share=True)],
        [gpu(0, used_mib=10 * GIB, util=95)],
        {0: [50]},
        [active(50, [0], vram=10, share=True)],
        {},
        [],
        {1: "Resources (needs 1 GPU with 10 GiB free, 0 with room)"},
    ),
    (
        "the utilisation threshold is configurable",
        [job(1, vram=10, share=True)],
        [gpu(0, used_mib=10 * GIB, util=95)],
        {0: [50]},
        [active(50, [0], vram=10, share=True)],
        {"share_max_utilization_pct": 97},
        [(1, [0])],
        {},
    ),
    (
        "the runner's utilisation summary wins over the momentary reading",
        [job(1, vram=10, share=True)],
        [gpu(0, used_mib=10 * GIB, util=20)],
        {0: [50]},
        [active(50, [0], vram=10, share=True)],
        {"gpu_utilization": {0: 90.0}},
        [],
        {1: "Resources (needs 1 GPU with 10 GiB free, 0 with room)"},
    ),
    (
        "a calm summary allows a join despite a momentary peak",
        [job(1, vram=10, share=True)],
        [gpu(0, used_mib=10 * GIB, util=100)],
        {0: [50]},
        [active(50, [0], vram=10, share=True)],
        {"gpu_utilization": {0: 35.0}},
        [(1, [0])],
        {},
    ),
    (
        "unknown utilisation counts as busy",
        [job(1, vram=10, share=True)],
        [gpu(0, used_mib=10 * GIB, util=20)],
        {0: [50]},
        [active(50, [0], vram=10, share=True)],
        {"gpu_utilization": {0: None}},
        [],
        {1: "Resources (needs 1 GPU with 10 GiB free, 0 with room)"},
    ),
    (
        "a two-GPU sharing job takes the free GPU and joins for the other",
        [job(1, gpus=2, vram=10, share=True)],
        [gpu(0, used_mib=10 * GIB, util=40), gpu(1), gpu(2, used_mib=70 * GIB)],
        {0: [50], 2: [51]},
        [active(50, [0], vram=10, share=True), active(51, [2], vram=70)],
        {},
        [(1, [0, 1])],
        {},
    ),
    (
        "no sharing with a job that did not allow it",
        [job(1, vram=10, share=True)],
        [gpu(0)],
        {0: [50]},
        [active(50, [0])],
        {},
        [],
        {1: "Resources (needs 1 GPU with 10 GiB free, 0 with room)"},
    ),
    (
        "an exclusive job never joins a shared GPU",
        [job(1)],
        [gpu(0)],
        {0: [50]},
        [active(50, [0], vram=10, share=True)],
        {},
        [],
        {1: "Resources (needs 1 GPU, 0 free)"},
    ),
    (
        "VRAM estimate picks a GPU large enough",
        [job(1, vram=40)],
        [gpu(0, total_gib=24), gpu(1, total_gib=80)],
        {},
        [],
        {},
        [(1, [1])],
        {},
    ),
    (
        "VRAM estimate larger than every GPU",
        [job(1, vram=100)],
        [gpu(0, total_gib=24), gpu(1, total_gib=80)],
        {},
        [],
        {},
        [],
        {1: "Resources (needs 1 GPU with 100 GiB, only 0 usable)"},
    ),
    (
        "allow-list",
        [job(1), job(2)],
        [gpu(0), gpu(1), gpu(2)],
        {},
        [],
        {"allowed_gpus": [2]},
        [(1, [2])],
        {2: "Priority"},
    ),
    (
        "exclusive-process and MIG GPUs are skipped",
        [job(1)],
        [gpu(0, exclusive_process=True), gpu(1, mig=True), gpu(2)],
        {},
        [],
        {},
        [(1, [2])],
        {},
    ),
    (
        "only unusable GPUs",
        [job(1)],
        [gpu(0, exclusive_process=True), gpu(1, mig=True)],
        {},
        [],
        {},
        [],
        {1: "Resources (needs 1 GPU, only 0 usable; GPU 0 exclusive-process, GPU 1 in MIG mode)"},
    ),
    (
        "CPU jobs take no GPU slot",
        [job(1, gpus=0), job(2)],
        [gpu(0)],
        {},
        [],
        {},
        [(1, []), (2, [0])],
        {},
    ),
    (
        "CPU job limit counts running CPU jobs",
        [job(1, gpus=0), job(2, gpus=0)],
        [gpu(0)],
        {},
        [active(50, [])],
        {"max_cpu_jobs": 2},
        [(1, [])],
        {2: "Resources (CPU job limit of 2 reached)"},
    ),
    (
        "no GPU at all: GPU jobs run on CPU when the task allows it",
        [job(1), job(2, task="stage: sft\nallow_cpu: false\n")],
        [],
        {},
        [],
        {},
        [(1, [])],
        {2: "Resources (no GPU found and the task sets allow_cpu: false)"},
    ),
    (
        "held and running rows are never started",
        [job(1, state=JobState.HELD), job(2, state=JobState.RUNNING), job(3)],
        [gpu(0), gpu(1)],
        {},
        [],
        {},
        [(3, [0])],
        {},
    ),
]


@pytest.mark.parametrize(
    ("queued", "gpus", "busy", "active_jobs", "settings", "start", "waiting"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_schedule_table(queued, gpus, busy, active_jobs, settings, start, waiting):
    decision = run(queued, gpus, busy=busy, active_jobs=active_jobs, **settings)
    assert decision.start == start
    assert decision.waiting == waiting
    assert decision.dependency_failed == []


def test_dependencies_wait_fail_or_pass():
    queued = [job(1), job(2, after=[9]), job(3, after=[8]), job(4, after=[7])]
    statuses = {
        2: ("waiting", "Dependency (job 9)"),
        3: ("failed", "dependency never satisfied (job 8 failed)"),
        4: ("ready", ""),
    }
    decision = run(queued, [gpu(0), gpu(1)], dependency=statuses)
    assert decision.start == [(1, [0]), (4, [1])]
    assert decision.waiting == {2: "Dependency (job 9)"}
    assert decision.dependency_failed == [(3, "dependency never satisfied (job 8 failed)")]


def test_dependency_may_be_a_function():
    decision = run(
        [job(1, after=[5])], [gpu(0)], dependency=lambda j: ("waiting", f"Dependency (job {j.after[0]})")
    )
    assert decision == Decision(start=[], waiting={1: "Dependency (job 5)"}, dependency_failed=[])


def test_a_waiting_dependency_does_not_block_jobs_behind_it():
    decision = run(
        [job(1, priority=9, after=[5]), job(2)], [gpu(0)], dependency={1: ("waiting", "Dependency (job 5)")}
    )
    assert decision.start == [(2, [0])]


def test_without_active_jobs_busy_gpus_count_as_fully_taken():
    decision = run([job(1, vram=10, share=True)], [gpu(0)], busy={0: [50]})
    assert decision.start == []


def test_big_job_starts_once_its_gpus_are_released():
    """Over three ticks: reserved while a small job runs, then started when the GPU comes back."""
    big = job(1, gpus=2)
    small = job(2)
    blocked = {1: NOW - 4000}
    first = run(
        [big, small], [gpu(0), gpu(1)], busy={1: [50]}, active_jobs=[active(50, [1])], blocked_since=blocked
    )
    assert first.start == []
    assert first.reserved_for == 1
    second = run([big, small], [gpu(0), gpu(1)], blocked_since=blocked)
    assert second.start == [(1, [0, 1])]
    assert second.waiting == {2: "Priority"}


def test_scheduler_is_pure():
    queued = [job(1), job(2, gpus=2)]
    gpus = [gpu(0), gpu(1)]
    before = (list(queued), [g.memory_used_mib for g in gpus])
    assert run(queued, gpus) == run(queued, gpus)
    assert (queued, [g.memory_used_mib for g in gpus]) == before


@pytest.mark.parametrize(
    ("task", "allowed"),
    [
        ("stage: sft\n", True),
        ("allow_cpu: true\n", True),
        ("allow_cpu: false\n", False),
        ("allow_cpu: 'no'\n", False),
        ("", True),
        ("[unbalanced", True),
        ("stage: sft\nextra:\n  allow_cpu: false\n", True),  # only the top-level key counts
    ],
)
def test_task_allows_cpu(task, allowed):
    assert task_allows_cpu(job(1, task=task)) is allowed


def test_blocked_lists_jobs_waiting_for_gpus_only():
    queued = [job(1), job(2), job(3, after=[9]), job(4, gpus=0), job(5, gpus=0)]
    decision = run(queued, [gpu(0)], dependency={3: ("waiting", "Dependency (job 9)")}, max_cpu_jobs=1)
    assert decision.start == [(1, [0]), (4, [])]
    assert decision.blocked == [2]
    assert decision.reserved_for is None


@pytest.mark.parametrize(
    ("reason", "log_lines", "oom"),
    [
        ("exit code 1", ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"], True),
        ("exit code 1", ["RuntimeError: CUDA out of memory."], True),
        ("exit code 1", ["torch.cuda.OutOfMemoryError: ..."], True),
        ("exit code 1", ["ValueError: bad dataset"], False),
        ("killed by SIGKILL", ["Killed"], False),
        ("exit code 1: RuntimeError: CUDA out of memory.", [], True),
    ],
)
def test_died_of_cuda_oom(reason, log_lines, oom):
    assert died_of_cuda_oom(reason, log_lines) is oom


OOM_LOG = ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"]


@pytest.mark.parametrize(
    ("state", "share", "was_sharing", "log_lines", "retried"),
    [
        (JobState.RUNNING, True, True, OOM_LOG, True),
        (JobState.RUNNING, True, False, OOM_LOG, False),  # alone on its GPU: a whole GPU won't help
        (JobState.RUNNING, False, True, OOM_LOG, False),  # already the retry: runs with sharing off
        (JobState.RUNNING, True, True, ["ValueError: bad dataset"], False),
        (JobState.CANCELLING, True, True, OOM_LOG, False),
    ],
)
def test_share_oom_retry(state, share, was_sharing, log_lines, retried):
    running = job(1, vram=20, share=share, state=state, assigned_gpus=[3])
    reason = share_oom_retry(running, was_sharing=was_sharing, reason="exit code 1", log_lines=log_lines)
    if retried:
        assert reason == "CUDA out of memory while sharing GPU 3; queued again to run on a whole GPU"
    else:
        assert reason is None
