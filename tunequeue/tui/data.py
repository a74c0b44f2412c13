"""What the queue, dashboard and GPUs screens show, read from the queue database and run files.

For a job on a Slurm cluster the queue and dashboard reads also carry Slurm's view of it
(`tunequeue.tui.cluster.ClusterInfo`, from RUN_DIR/slurm.json).

Plain functions without Textual: each screen calls one of them from a thread worker with its own
SQLite connection, and turns the returned snapshot into widgets on the main thread. They never write.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunequeue.tui.cluster import ClusterInfo, read_cluster_info
from tunequeue.tui.metric_history import MetricHistory, MetricSummary

GPU_HISTORY_SECONDS = 300.0
RECENT_SAMPLE_SECONDS = 15.0
LOG_TAIL_BYTES = 32 * 1024
LOG_MAX_LINES = 400
DRIVER_SUMMARY_SECONDS = 10.0

# Without a runner there are no samples: ask the driver at most every 10 s, not on every refresh.
_DRIVER_SUMMARY: dict[str, Any] = {"time": 0.0, "value": None, "key": None}


@dataclass
class RunnerInfo:
    """Whether this home's runner daemon is alive, and its pid."""

    running: bool
    pid: int | None = None


@dataclass
class GpuSummary:
    """One-line view of the GPUs: how many, how many busy, simulated or not, or why there are none."""

    count: int
    busy: int
    simulated: bool
    error: str | None = None


@dataclass
class QueueData:
    """Everything the queue screen shows at one moment.

    `jobs` is one page: the newest `limit` jobs in the chosen states, newest first; `total` counts
    all jobs in those states. `waiting_and_active` holds every queued, held and active job (the
    scheduler plans them all to say why one waits), whether or not it is on the page.
    """

    jobs: list[Any]
    metrics: dict[int, dict]
    runner: RunnerInfo
    gpus: GpuSummary
    cluster: dict[int, ClusterInfo] = field(default_factory=dict)
    total: int = 0
    waiting_and_active: list[Any] = field(default_factory=list)


@dataclass
class LogChunk:
    """New lines of a job's train.log since the last read; `reset` means start the view over."""

    lines: list[str]
    offset: int
    reset: bool = False
    missing: bool = False


@dataclass
class GpuHistory:
    """Recent samples of one GPU (oldest first) and its latest values."""

    index: int
    uuid: str
    simulated: bool
    samples: list[dict] = field(default_factory=list)

    @property
    def latest(self) -> dict | None:
        """The newest sample, or None."""
        return self.samples[-1] if self.samples else None


@dataclass
class DashboardData:
    """Everything a job's dashboard shows at one moment; `job` is None when it was deleted.

    `metrics` is a snapshot of the dashboard's `MetricHistory` (newest entry, last logged values,
    chart series), not the rows themselves.
    """

    job: Any | None
    metrics: MetricSummary
    gpus: list[GpuHistory]
    log: LogChunk
    output_dir: str | None = None
    cluster: ClusterInfo | None = None


def runner_info() -> RunnerInfo:
    """Ask the runner module whether this home's daemon runs."""
    from tunequeue.runner import daemon

    pid = daemon.running_pid()
    return RunnerInfo(running=pid is not None, pid=pid)


def gpu_summary(db: Any, now: float) -> GpuSummary:
    """Summarise the GPUs from the runner's recent samples, or from the driver when there are none."""
    rows = _latest_samples(db, now)
    if rows:
        busy = sum(1 for row in rows if row.get("job_id") is not None)
        return GpuSummary(len(rows), busy, any(row.get("simulated") for row in rows))
    key = (os.environ.get("TUNEQUEUE_HOME"), os.environ.get("TUNEQUEUE_SIMULATED_GPUS"))
    cached = _DRIVER_SUMMARY.get("value")
    if (
        cached is not None
        and _DRIVER_SUMMARY["key"] == key
        and 0 <= now - _DRIVER_SUMMARY["time"] < DRIVER_SUMMARY_SECONDS
    ):
        return cached
    from tunequeue.gpus import read_gpus

    snapshot = read_gpus()
    busy = sum(1 for gpu in snapshot.gpus if gpu.processes)
    summary = GpuSummary(len(snapshot.gpus), busy, snapshot.simulated, snapshot.error)
    _DRIVER_SUMMARY.update(value=summary, time=now, key=key)
    return summary


def _latest_samples(db: Any, now: float) -> list[dict]:
    from tunequeue.jobqueue import metrics

    latest: dict[str, dict] = {}
    for row in metrics.get_gpu_samples(db, since=now - RECENT_SAMPLE_SECONDS):
        latest[row["uuid"]] = row
    return sorted(latest.values(), key=lambda row: row["gpu_index"])


WAITING_AND_ACTIVE = ("queued", "held", "starting", "running", "cancelling")


def load_queue_page(
    db: Any, now: float, states: Iterable[str] | None = None, limit: int | None = None
) -> QueueData:
    """A page of jobs (newest first, only `states` when given, at most `limit`), their latest
    metrics, the runner and a GPU summary; `waiting_and_active` holds only those on the page."""
    from tunequeue.jobqueue import jobs, metrics

    wanted = None if states is None else list(states)
    page = jobs.list_jobs(db, states=wanted, limit=limit, order="-id")
    total = len(page)
    if limit is not None and len(page) >= limit:
        counts = jobs.counts_by_state(db)
        total = sum(count for state, count in counts.items() if wanted is None or state in wanted)
    latest = metrics.latest_metrics(db, [job.id for job in page]) if page else {}
    cluster = {job.id: info for job in page if (info := read_cluster_info(job)) is not None}
    waiting_and_active = [job for job in page if job.state in WAITING_AND_ACTIVE]
    return QueueData(
        page, latest, runner_info(), gpu_summary(db, now), cluster, total, waiting_and_active
    )


def add_waiting_and_active(db: Any, data: QueueData, states: Iterable[str] | None = None) -> None:
    """Complete `data.waiting_and_active` with the waiting and active jobs not on the page."""
    from tunequeue.jobqueue import jobs

    covers_all = set(WAITING_AND_ACTIVE) <= set(WAITING_AND_ACTIVE if states is None else states)
    if covers_all and data.total == len(data.jobs):
        return  # the page holds all of them already
    on_page = {job.id: job for job in data.jobs}
    data.waiting_and_active = [
        on_page.get(job.id, job) for job in jobs.list_jobs(db, states=WAITING_AND_ACTIVE, order="-id")
    ]


def read_log_tail(path: Path, offset: int) -> LogChunk:
    """Complete lines appended to `path` since byte `offset` (the last 32 KiB on the first read).

    A file shorter than `offset` was truncated or replaced: the view starts over.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return LogChunk([], 0, reset=offset > 0, missing=True)
    reset = False
    if size < offset:
        offset, reset = 0, True
    start = offset
    if offset == 0 and size > LOG_TAIL_BYTES:
        start = size - LOG_TAIL_BYTES
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read(size - start)
    end = data.rfind(b"\n")
    if end < 0:
        return LogChunk([], offset, reset)
    text = data[: end + 1].decode("utf-8", errors="replace")
    lines = text[:-1].split("\n")  # not splitlines(): a bare \r is a progress bar redraw, not a line
    if start != offset and lines:
        lines = lines[1:]  # the first line of a tail read is usually cut in the middle
    # carriage returns come from progress bars: keep what the terminal would show last
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines]
    return LogChunk(lines[-LOG_MAX_LINES:], start + end + 1, reset or offset == 0)


def output_dir_of(job: Any) -> str | None:
    """Where the result (adapter or model) is: the task's output_dir when it exists, else the run dir."""
    try:
        task = yaml.safe_load(job.task_yaml) or {}
    except yaml.YAMLError:
        task = {}
    out = task.get("output_dir") if isinstance(task, dict) else None
    if out:
        path = Path(str(out)).expanduser()
        if not path.is_absolute() and job.run_dir:
            path = Path(job.run_dir) / path
        if path.is_dir():
            return os.path.normpath(str(path))
    return job.run_dir or None


def gpu_histories(db: Any, job: Any, now: float) -> list[GpuHistory]:
    """Samples of each GPU assigned to `job`: the last five minutes while active, the whole run after."""
    from tunequeue.jobqueue import metrics

    if job.is_active:
        rows = []
        for uuid in job.gpu_uuids:
            rows.extend(metrics.get_gpu_samples(db, uuid=uuid, since=now - GPU_HISTORY_SECONDS))
    else:
        rows = metrics.get_gpu_samples(db, job_id=job.id)
    by_index: dict[int, GpuHistory] = {}
    for index in job.assigned_gpus:
        by_index[index] = GpuHistory(index=index, uuid="", simulated=False)
    for row in sorted(rows, key=lambda r: r["time"]):
        history = by_index.setdefault(
            row["gpu_index"], GpuHistory(index=row["gpu_index"], uuid=row["uuid"], simulated=False)
        )
        history.uuid = row["uuid"]
        history.simulated = bool(row.get("simulated"))
        history.samples.append(row)
    return [by_index[index] for index in sorted(by_index)]


def load_dashboard(
    db: Any,
    job_id: int,
    log_offset: int,
    now: float,
    history: MetricHistory | None = None,
    publish: Callable[[DashboardData], None] | None = None,
) -> DashboardData:
    """The job, its metrics, its GPUs' recent samples and the new lines of its train.log.

    `history` is the dashboard's metric history of this job: only the rows stored since the last
    call are read into it. Without one, all rows are read into a fresh history. A deleted job
    empties the history, so that a job read again later starts over. While a long read of the
    history goes on, `publish` gets what is read so far (the new log lines go with the first one).
    """
    from tunequeue.core.errors import UserError
    from tunequeue.jobqueue import jobs

    if history is None:
        history = MetricHistory(job_id)
    try:
        job = jobs.get(db, job_id)
    except UserError:
        history.reset()
        return DashboardData(None, MetricSummary(), [], LogChunk([], 0))
    log = read_log_tail(Path(job.run_dir) / "train.log", log_offset) if job.run_dir else LogChunk([], 0)
    gpus, output_dir, cluster = gpu_histories(db, job, now), output_dir_of(job), read_cluster_info(job)
    progress = None
    if publish is not None:

        def progress(summary: MetricSummary) -> None:
            nonlocal log
            publish(DashboardData(job, summary, gpus, log, output_dir, cluster))
            log = LogChunk([], log.offset, missing=log.missing)  # those lines are shown now

    summary = history.update(db, progress)
    return DashboardData(job, summary, gpus, log, output_dir, cluster)
