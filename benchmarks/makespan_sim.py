"""Makespan simulation: the real scheduler on simulated GPUs, GPU sharing against one job per GPU.

Drives `tunequeue.runner.scheduler.schedule` tick by tick (30 simulated seconds) on 8 × 80 GiB GPUs
through seeded overnight mixes, once with every job allowing ``allow_share`` and once as FIFO with one
job per GPU (the same scheduler with sharing off), and prints makespan, mean completion time and idle
GPU-hours (GPUs without a job while some job waits) as ratios shared / FIFO.

Model: k jobs on one GPU each run 1 + (s − 1)(k − 1) times slower than alone (a multi-GPU job runs at
the pace of its most crowded GPU). A job alone shows utilisation min(99, 30 + 100 (s − 1)) %, so jobs
that slow a neighbour by s ≥ 1.6 read above 80 %; a GPU's utilisation is the sum of its jobs', capped
at 100, and becomes known to the scheduler one minute after its newest job started (as the runner's
sample summary does). NVML's used memory is the sum of the real peaks of the jobs on a GPU. Jobs in
the "estimates 25 % low" variant peak a third above their estimate; when the peaks on a GPU exceed its
memory, the newest job there dies of CUDA out-of-memory and goes through the runner's retry rule
(`share_oom_retry`). The runner's other inputs are modelled as it computes them: running jobs' ETAs
from their progress, queued jobs' expected run time from finished jobs of the same group.

    python benchmarks/makespan_sim.py [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tunequeue.gpus import Gpu  # noqa: E402
from tunequeue.jobqueue.jobs import Job, JobState  # noqa: E402
from tunequeue.runner.scheduler import SchedulerSettings, schedule, share_oom_retry  # noqa: E402

GPU_COUNT = 8
GPU_GIB = 80
TICK_SECONDS = 30.0
MEASURE_AFTER_SECONDS = 60.0
SLOWDOWNS = (1.0, 1.3, 1.6, 2.0)
MIB = 1024


@dataclass
class SimJob:
    """One job of a mix: its request, its real peak memory and its run time alone on a GPU."""

    id: int
    group: str
    gpus: int
    estimate_gib: float
    peak_gib: float
    work_seconds: float
    submit_at: float = 0.0


@dataclass
class Mix:
    """A named list of jobs."""

    name: str
    jobs: list[SimJob]
    settings: SchedulerSettings = field(default_factory=SchedulerSettings)


@dataclass
class Result:
    """What one policy achieved on one mix."""

    makespan_s: float
    mean_completion_s: float
    idle_gpu_hours: float
    shared_starts: int = 0
    oom_retries: int = 0


@dataclass
class _Running:
    job: SimJob
    gpus: list[int]
    started_at: float
    done_seconds: float = 0.0
    allow_share: bool = True
    attempt: int = 1


@dataclass
class _State:
    queue: list[tuple[SimJob, bool, int]] = field(default_factory=list)  # job, allow_share, attempt
    running: dict[int, _Running] = field(default_factory=dict)
    finished_at: dict[int, float] = field(default_factory=dict)
    run_time: dict[str, list[float]] = field(default_factory=dict)
    blocked_since: dict[int, float] = field(default_factory=dict)


def utilization_alone(slowdown: float) -> float:
    """GPU utilisation in percent of one job of this kind alone on a GPU."""
    return min(99.0, 30.0 + 100.0 * (slowdown - 1.0))


def make_mixes(seed: int) -> list[Mix]:
    """The overnight mixes, all drawn from one seed."""
    rng = random.Random(seed)
    sweep = [
        SimJob(i, "sweep", 1, est, est, rng.uniform(20, 60) * 60)
        for i, est in enumerate((rng.uniform(8, 30) for _ in range(24)), start=1)
    ]
    mixed: list[SimJob] = []
    for _ in range(14):
        est = rng.uniform(8, 24)
        mixed.append(SimJob(0, "small", 1, est, est, rng.uniform(15, 45) * 60))
    for _ in range(8):
        est = rng.uniform(40, 60)
        mixed.append(SimJob(0, "medium", 1, est, est, rng.uniform(60, 120) * 60))
    for _ in range(4):
        est = rng.uniform(60, 75)
        mixed.append(SimJob(0, "two-gpu", 2, est, est, rng.uniform(90, 150) * 60))
    rng.shuffle(mixed)
    for number, job in enumerate(mixed, start=1):
        job.id = number
        job.submit_at = rng.uniform(0, 20) * 60
    big = [
        SimJob(i, "big", 1, est, est, rng.uniform(120, 240) * 60)
        for i, est in enumerate((rng.uniform(45, 75) for _ in range(16)), start=1)
    ]
    low = []
    for i in range(1, 25):
        peak = rng.uniform(20, 52)
        low.append(SimJob(i, "sweep", 1, round(peak * 0.75, 1), peak, rng.uniform(20, 60) * 60))
    return [
        Mix("small sweep (24 jobs, 8–30 GiB)", sweep),
        Mix("mixed (small, medium, 2-GPU jobs)", mixed),
        Mix("big jobs (45–75 GiB)", big),
        Mix("small sweep, estimates 25 % low", low),
        Mix(
            "the same without headroom",
            [replace(job) for job in low],
            SchedulerSettings(memory_headroom_fraction=0.0),
        ),
    ]


def _rate(run: _Running, crowd: dict[int, int], slowdown: float) -> float:
    k = max(crowd[index] for index in run.gpus)
    return 1.0 / (1.0 + (slowdown - 1.0) * (k - 1))


def _as_job(job: SimJob, allow_share: bool, attempt: int, **fields) -> Job:
    return Job(
        id=job.id,
        name=f"job-{job.id}",
        requested_gpus=job.gpus,
        requested_vram_gib=job.estimate_gib,
        allow_share=allow_share,
        submitted_at=job.submit_at,
        group_id=job.group,
        attempt=attempt,
        **fields,
    )


def simulate(mix: Mix, slowdown: float, *, share: bool, settings: SchedulerSettings | None = None) -> Result:
    """Run one mix under one policy until every job has finished."""
    settings = settings or SchedulerSettings()
    state = _State()
    pending = sorted(mix.jobs, key=lambda job: (job.submit_at, job.id))
    result = Result(0.0, 0.0, 0.0)
    now = 0.0
    solo_util = utilization_alone(slowdown)
    while pending or state.queue or state.running:
        while pending and pending[0].submit_at <= now:
            state.queue.append((pending.pop(0), share, 1))

        crowd = {index: 0 for index in range(GPU_COUNT)}
        for run in state.running.values():
            for index in run.gpus:
                crowd[index] += 1

        # CUDA out-of-memory: the newest job on an overfull GPU dies and goes through the retry rule.
        for index in range(GPU_COUNT):
            on_gpu = [run for run in state.running.values() if index in run.gpus]
            if sum(run.job.peak_gib for run in on_gpu) <= GPU_GIB:
                continue
            newest = max(on_gpu, key=lambda run: (run.started_at, run.job.id))
            as_job = _as_job(
                newest.job,
                newest.allow_share,
                newest.attempt,
                state=JobState.RUNNING,
                assigned_gpus=newest.gpus,
            )
            retry = share_oom_retry(
                as_job,
                was_sharing=len(on_gpu) > 1,
                reason="exit code 1",
                log_lines=["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"],
            )
            if retry is None:
                raise AssertionError(f"job {newest.job.id} died of OOM without a retry: {mix.name}")
            del state.running[newest.job.id]
            state.queue.append((newest.job, False, newest.attempt + 1))
            result.oom_retries += 1
            for gpu_index in newest.gpus:
                crowd[gpu_index] -= 1

        gpus = []
        utilization: dict[int, float | None] = {}
        for index in range(GPU_COUNT):
            on_gpu = [run for run in state.running.values() if index in run.gpus]
            gpus.append(
                Gpu(
                    index=index,
                    uuid=f"SIM-{index}",
                    name="simulated 80 GiB",
                    pci_bus_id=f"00000000:{index + 1:02X}:00.0",
                    memory_total_mib=GPU_GIB * MIB,
                    memory_used_mib=sum(run.job.peak_gib for run in on_gpu) * MIB,
                    utilization_pct=min(100.0, solo_util * len(on_gpu)),
                    temperature_c=40.0,
                    power_w=300.0,
                    compute_capability=(9, 0),
                    processes=[],
                    simulated=True,
                )
            )
            if on_gpu:
                newest_start = max(run.started_at for run in on_gpu)
                measured = now - newest_start >= MEASURE_AFTER_SECONDS
                utilization[index] = gpus[-1].utilization_pct if measured else None

        busy: dict[int, list[int]] = {}
        active = []
        eta = {}
        for run in state.running.values():
            for index in run.gpus:
                busy.setdefault(index, []).append(run.job.id)
            active.append(
                _as_job(run.job, run.allow_share, run.attempt, state=JobState.RUNNING, assigned_gpus=run.gpus)
            )
            eta[run.job.id] = (run.job.work_seconds - run.done_seconds) / _rate(run, crowd, slowdown)
        expected = {
            job.id: statistics.median(state.run_time[job.group])
            for job, _, _ in state.queue
            if state.run_time.get(job.group)
        }
        queued = [_as_job(job, allow, attempt) for job, allow, attempt in state.queue]
        decision = schedule(
            queued,
            gpus,
            busy=busy,
            settings=settings,
            now=now,
            active_jobs=active,
            gpu_utilization=utilization,
            blocked_since=state.blocked_since,
            eta=eta,
            expected_seconds=expected,
        )
        for job_id in decision.blocked:
            state.blocked_since.setdefault(job_id, now)
        by_id = {job.id: (job, allow, attempt) for job, allow, attempt in state.queue}
        for job_id, indices in decision.start:
            job, allow, attempt = by_id.pop(job_id)
            if any(crowd[index] for index in indices):
                result.shared_starts += 1
            state.running[job_id] = _Running(job, list(indices), now, allow_share=allow, attempt=attempt)
            state.blocked_since.pop(job_id, None)
            for index in indices:
                crowd[index] += 1
        state.queue = [entry for entry in state.queue if entry[0].id in by_id]

        idle = sum(1 for index in range(GPU_COUNT) if crowd[index] == 0)
        if state.queue and idle:
            result.idle_gpu_hours += idle * TICK_SECONDS / 3600.0

        # Advance one tick; a job finishing inside it ends at its exact time.
        for job_id, run in list(state.running.items()):
            rate = _rate(run, crowd, slowdown)
            left = run.job.work_seconds - run.done_seconds
            if left <= rate * TICK_SECONDS:
                end = now + left / rate
                state.finished_at[job_id] = end
                state.run_time.setdefault(run.job.group, []).append(end - run.started_at)
                del state.running[job_id]
            else:
                run.done_seconds += rate * TICK_SECONDS
        now += TICK_SECONDS

    first_submit = min(job.submit_at for job in mix.jobs)
    result.makespan_s = max(state.finished_at.values()) - first_submit
    result.mean_completion_s = statistics.fmean(state.finished_at[job.id] - job.submit_at for job in mix.jobs)
    return result


def _ratio(shared: float, fifo: float) -> str:
    if fifo == 0:
        return "none in both" if shared == 0 else f"{shared:.1f} h vs none"
    return f"{shared / fifo:.2f}"


def cell(mix: Mix, slowdown: float) -> tuple[Result, Result]:
    """Sharing and FIFO results of one mix at one slowdown factor (with the mix's settings)."""
    return (
        simulate(mix, slowdown, share=True, settings=mix.settings),
        simulate(mix, slowdown, share=False, settings=mix.settings),
    )


def run_all(seed: int, slowdowns: Sequence[float] = SLOWDOWNS) -> list[tuple[Mix, float, Result, Result]]:
    """Every mix at every slowdown: (mix, s, sharing result, FIFO result)."""
    return [(mix, s, *cell(mix, s)) for mix in make_mixes(seed) for s in slowdowns]


def detail_table(cells: Sequence[tuple[Mix, float, Result, Result]]) -> str:
    """One row per mix and slowdown: the three ratios, FIFO's makespan, joins and OOM retries."""
    lines = [
        "| mix | s | makespan | mean completion | idle GPU-h while jobs wait | FIFO makespan | joins "
        "| OOM retries |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mix, slowdown, shared, fifo in cells:
        lines.append(
            f"| {mix.name} | {slowdown:.1f} | {shared.makespan_s / fifo.makespan_s:.2f} | "
            f"{shared.mean_completion_s / fifo.mean_completion_s:.2f} | "
            f"{_ratio(shared.idle_gpu_hours, fifo.idle_gpu_hours)} | {fifo.makespan_s / 3600:.1f} h | "
            f"{shared.shared_starts} | {shared.oom_retries} |"
        )
    return "\n".join(lines)


def summary_table(cells: Sequence[tuple[Mix, float, Result, Result]]) -> str:
    """Mixes by slowdown, each cell "makespan ratio / mean completion ratio"."""
    slowdowns = sorted({slowdown for _, slowdown, _, _ in cells})
    header = " | ".join(f"s = {slowdown:.1f}" for slowdown in slowdowns)
    lines = [f"| mix | {header} |", "|---" * (len(slowdowns) + 1) + "|"]
    names = list(dict.fromkeys(mix.name for mix, _, _, _ in cells))
    for name in names:
        row = [
            f"{shared.makespan_s / fifo.makespan_s:.2f} / "
            f"{shared.mean_completion_s / fifo.mean_completion_s:.2f}"
            for mix, _, shared, fifo in cells
            if mix.name == name
        ]
        lines.append(f"| {name} | {' | '.join(row)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Print both tables (ratios sharing / FIFO measured in the same run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="seed of the job mixes (default 7)")
    args = parser.parse_args(argv)
    cells = run_all(args.seed)
    print(f"{GPU_COUNT} × {GPU_GIB} GiB GPUs, seed {args.seed}; ratios are sharing / FIFO one job per GPU\n")
    print("makespan / mean completion time:\n")
    print(summary_table(cells))
    print()
    print(detail_table(cells))


if __name__ == "__main__":
    main()
