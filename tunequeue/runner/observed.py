"""What the runner has measured, summarised as the scheduler's inputs (read-only queries, pure summaries).

- GPU utilisation: the median of the GPU samples of the last two minutes, counted from 30 seconds
  after the newest of our jobs on the GPU started (loading a model keeps a GPU idle for a while, so an
  earlier reading would make a compute-bound job look joinable). No sample yet: None (busy).
- ETA of a running job: the ``remaining_seconds`` (or ``remaining_time``) of its newest metrics row
  of the current attempt, minus the time since that row was stored.
- Expected run time of a queued job: the median run time of the succeeded jobs of the same group
  (a sweep), None when none has finished yet.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunequeue.jobqueue.db import Database
    from tunequeue.jobqueue.jobs import Job

UTILIZATION_WINDOW_S = 120.0
UTILIZATION_SETTLE_S = 30.0


def summarize_utilization(
    samples: Iterable[Mapping[str, Any]], active: Sequence[Job], now: float
) -> dict[int, float | None]:
    """Median utilisation per GPU index holding our jobs, from GPU sample rows (None: not measured yet)."""
    newest_start: dict[int, float] = {}
    for job in active:
        started = job.started_at if job.started_at is not None else now
        for index in job.assigned_gpus:
            newest_start[index] = max(newest_start.get(index, started), started)
    readings: dict[int, list[float]] = {index: [] for index in newest_start}
    for sample in samples:
        gpu = sample.get("gpu_index")
        value = sample.get("utilization")
        if gpu not in newest_start or value is None:
            continue
        since = max(now - UTILIZATION_WINDOW_S, newest_start[gpu] + UTILIZATION_SETTLE_S)
        if sample.get("time", 0.0) >= since:
            readings[gpu].append(float(value))
    return {index: statistics.median(values) if values else None for index, values in readings.items()}


def gpu_utilization(db: Database, active: Sequence[Job], now: float) -> dict[int, float | None]:
    """`summarize_utilization` over the stored GPU samples of the last two minutes."""
    from tunequeue.jobqueue import metrics

    samples = metrics.get_gpu_samples(db, since=now - UTILIZATION_WINDOW_S)
    return summarize_utilization(samples, active, now)


def _clock_seconds(value: Any) -> float | None:
    """Seconds from a number or an ``H:MM:SS`` / ``D day(s), H:MM:SS`` string."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text, days = value.strip(), 0.0
    if "day" in text:
        head, _, text = text.partition(",")
        try:
            days = float(head.split()[0])
        except (ValueError, IndexError):
            return None
    try:
        parts = [float(part) for part in text.strip().split(":")]
    except ValueError:
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return days * 86400 + seconds


def job_etas(db: Database, active: Sequence[Job], now: float) -> dict[int, float]:
    """Estimated seconds until each running job ends, for the jobs whose metrics say."""
    etas: dict[int, float] = {}
    for job in active:
        row = db.conn.execute(
            "SELECT time, payload FROM metrics WHERE job_id = ? AND attempt = ? ORDER BY seq DESC LIMIT 1",
            (job.id, job.attempt),
        ).fetchone()
        if row is None:
            continue
        payload = json.loads(row[1])
        remaining = _clock_seconds(payload.get("remaining_seconds"))
        if remaining is None:
            remaining = _clock_seconds(payload.get("remaining_time"))
        if remaining is not None:
            etas[job.id] = max(0.0, remaining - max(0.0, now - float(row[0])))
    return etas


def expected_run_seconds(db: Database, queued: Sequence[Job]) -> dict[int, float]:
    """Expected run time of queued jobs: the median of the succeeded runs of their group."""
    groups = sorted({job.group_id for job in queued if job.group_id})
    if not groups:
        return {}
    durations: dict[str, list[float]] = {}
    rows = db.conn.execute(
        f"SELECT group_id, finished_at - started_at FROM jobs WHERE state = 'succeeded' "
        f"AND started_at IS NOT NULL AND finished_at IS NOT NULL "
        f"AND group_id IN ({', '.join('?' * len(groups))})",
        groups,
    )
    for group, seconds in rows:
        durations.setdefault(group, []).append(float(seconds))
    return {job.id: statistics.median(durations[job.group_id]) for job in queued if job.group_id in durations}
