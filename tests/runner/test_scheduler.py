"""Scheduler table tests: GPU states × queued jobs → which jobs start on which GPUs, and why others wait."""

from __future__ import annotations

import pytest

from tunequeue.gpus import Gpu, GpuProcess
from tunequeue.jobqueue.jobs import Job, JobState
from tunequeue.runner.scheduler import Decision, SchedulerSettings, schedule, task_allows_cpu

NOW = 10_000.0
GIB = 1024


def gpu(index, total_gib=80, used_mib=0, processes=(), **flags):
    return Gpu(
        index=index,
        uuid=f"GPU-{index}",
        name="test GPU",
        pci_bus_id=f"00000000:{index + 1:02X}:00.0",
        memory_total_mib=total_gib * GIB,
        memory_used_mib=used_mib,
        utilization_pct=0.0,
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


def run(queued, gpus, busy=None, active_jobs=(), dependency=None, **settings):
    return schedule(
        queued,
        gpus,
        busy=busy or {},
        settings=SchedulerSettings(**settings),
        now=NOW,
        dependency=dependency,
        active_jobs=active_jobs,
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
        "no starvation: after max wait the big job reserves the GPUs",
        [job(1, gpus=2, priority=5, submitted=NOW - 4000), job(2)],
        [gpu(0), gpu(1)],
        {1: [50]},
        [active(50, [1])],
        {"max_wait_seconds": 3600},
        [],
        {1: "Resources (needs 2 GPUs, 1 free)", 2: "Priority (GPUs reserved for job 1)"},
    ),
    (
        "a reservation does not hold CPU jobs back",
        [job(1, gpus=2, submitted=NOW - 4000), job(2, gpus=0)],
        [gpu(0), gpu(1)],
        {1: [50]},
        [active(50, [1])],
        {"max_wait_seconds": 3600},
        [(2, [])],
        {1: "Resources (needs 2 GPUs, 1 free)"},
    ),
    (
        "an impossible job never reserves",
        [job(1, gpus=8, submitted=NOW - 99999), job(2)],
        [gpu(0), gpu(1)],
        {},
        [],
        {"max_wait_seconds": 1},
        [(2, [0])],
        {1: "Resources (needs 8 GPUs, only 2 usable)"},
    ),
    (
        "VRAM sharing: three small jobs on one large GPU",
        [job(1, vram=20, share=True), job(2, vram=20, share=True), job(3, vram=20, share=True)],
        [gpu(0, total_gib=80)],
        {},
        [],
        {},
        [(1, [0]), (2, [0]), (3, [0])],
        {},
    ),
    (
        "VRAM sharing stops when the estimates no longer fit",
        [job(1, vram=30, share=True), job(2, vram=30, share=True), job(3, vram=30, share=True)],
        [gpu(0, total_gib=80)],
        {},
        [],
        {},
        [(1, [0]), (2, [0])],
        {3: "Priority"},
    ),
    (
        "VRAM sharing joins our sharing job",
        [job(1, vram=40, share=True)],
        [gpu(0, used_mib=10 * GIB), gpu(1)],
        {0: [50]},
        [active(50, [0], vram=30, share=True)],
        {},
        [(1, [0])],
        {},
    ),
    (
        "VRAM sharing counts the estimate of our job before NVML sees its memory",
        [job(1, vram=60, share=True)],
        [gpu(0, used_mib=10 * GIB), gpu(1)],
        {0: [50]},
        [active(50, [0], vram=30, share=True)],
        {},
        [(1, [1])],
        {},
    ),
    (
        "VRAM sharing fills shared GPUs before free ones",
        [job(1, vram=20, share=True)],
        [gpu(0), gpu(1, used_mib=25 * GIB)],
        {1: [50]},
        [active(50, [1], vram=30, share=True)],
        {},
        [(1, [1])],
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
    big = job(1, gpus=2, submitted=NOW - 4000)
    small = job(2)
    first = run([big, small], [gpu(0), gpu(1)], busy={1: [50]}, active_jobs=[active(50, [1])])
    assert first.start == []
    second = run([big, small], [gpu(0), gpu(1)])
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
    ],
)
def test_task_allows_cpu(task, allowed):
    assert task_allows_cpu(job(1, task=task)) is allowed
