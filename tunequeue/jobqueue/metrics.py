"""Training metrics and GPU samples stored in the queue database, and the ingest offsets.

Metric rows are the objects of a run's ``trainer_log.jsonl`` (LLaMA-Factory keys: current_steps,
total_steps, loss, eval_loss, lr, epoch, percentage, elapsed_time, remaining_time, throughput,
total_tokens). The known keys get their own columns; the whole object is kept as JSON too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from tunequeue.jobqueue.db import write_txn

if TYPE_CHECKING:
    from tunequeue.jobqueue.db import Database

# The trainer_log keys with a column of their own in the metrics table (besides step and attempt).
METRIC_COLUMNS = (
    "total_steps",
    "loss",
    "eval_loss",
    "lr",
    "epoch",
    "percentage",
    "elapsed_time",
    "remaining_time",
    "throughput",
    "total_tokens",
)
_PROGRESS_KEYS = ("total_steps", "percentage", "lr", "epoch", "elapsed_time", "remaining_time", "throughput")
_GPU_SAMPLE_COLUMNS = (
    "time",
    "uuid",
    "gpu_index",
    "utilization",
    "memory_used_mib",
    "memory_total_mib",
    "temperature",
    "power_w",
    "job_id",
    "simulated",
)


def _step_of(row: dict[str, Any]) -> int | None:
    for key in ("current_steps", "step", "global_step"):
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return None


def _number(value: Any) -> Any:
    """Keep numbers and strings; drop containers that have no column type."""
    if isinstance(value, (int, float, str)) or value is None:
        return value
    return None


def _insert_metrics(conn: Any, job_id: int, attempt: int, rows: Sequence[dict[str, Any]]) -> int:
    now = time.time()
    records = []
    for row in rows:
        step = _step_of(row)
        if step is None:
            continue
        values = [_number(row.get(column)) for column in METRIC_COLUMNS]
        records.append((int(job_id), int(attempt), step, *values, now, json.dumps(row, default=str)))
    if records:
        placeholders = ", ".join("?" * (len(METRIC_COLUMNS) + 5))
        conn.executemany(
            f"INSERT INTO metrics (job_id, attempt, step, {', '.join(METRIC_COLUMNS)}, time, payload) "
            f"VALUES ({placeholders})",
            records,
        )
    return len(records)


def _store_offset(conn: Any, job_id: int, attempt: int, offset: int) -> None:
    conn.execute(
        "INSERT INTO ingest_offsets (job_id, attempt, byte_offset, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (job_id, attempt) DO UPDATE SET byte_offset = excluded.byte_offset, "
        "updated_at = excluded.updated_at",
        (int(job_id), int(attempt), int(offset), time.time()),
    )


def add_metrics(db: Database, job_id: int, attempt: int, rows: Sequence[dict[str, Any]]) -> int:
    """Store trainer_log.jsonl objects of one attempt of a job; return how many were stored.

    Objects without a step number (current_steps) are skipped: they cannot be placed on a curve.
    """
    with write_txn(db) as conn:
        return _insert_metrics(conn, job_id, attempt, rows)


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if value is not None or key not in target:
            target[key] = value


def get_metrics(db: Database, job_id: int) -> list[dict[str, Any]]:
    """The job's metric objects ordered by step, one per step.

    When a step was logged by several attempts (a resumed run repeats steps after its checkpoint), the
    latest attempt wins; rows of the same attempt and step (a train and an eval line) are merged.
    Each object carries ``step`` and ``attempt`` next to the trainer's own keys.
    """
    rows = db.conn.execute(
        "SELECT step, attempt, payload FROM metrics WHERE job_id = ? ORDER BY step, attempt, seq",
        (int(job_id),),
    ).fetchall()
    by_step: dict[int, dict[str, Any]] = {}
    for step, attempt, payload in rows:
        current = by_step.get(step)
        if current is None or current["attempt"] < attempt:
            current = {"step": step, "attempt": attempt}
            by_step[step] = current
        _merge(current, json.loads(payload))
        current["step"], current["attempt"] = step, attempt
    return [by_step[step] for step in sorted(by_step)]


def latest_metrics(db: Database, job_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Progress of each job for the queue table, from its newest attempt that logged anything.

    Per job: step, total_steps, percentage, loss (last logged), eval_loss (last logged), lr, epoch,
    elapsed_time, remaining_time, throughput, attempt. Jobs without metrics are absent.
    """
    result: dict[int, dict[str, Any]] = {}
    conn = db.conn
    for job_id in job_ids:
        # The newest few rows of the newest attempt: a train line and an eval line may share a step,
        # so each key takes its most recent non-null value among them.
        recent = conn.execute(
            "SELECT attempt, step, payload FROM metrics WHERE job_id = ? "
            "ORDER BY attempt DESC, seq DESC LIMIT 8",
            (int(job_id),),
        ).fetchall()
        if not recent:
            continue
        attempt, step = recent[0][0], recent[0][1]
        entry: dict[str, Any] = {"attempt": attempt, "step": step}
        for key in _PROGRESS_KEYS:
            entry[key] = next(
                (
                    value
                    for row_attempt, _, payload in recent
                    if row_attempt == attempt and (value := json.loads(payload).get(key)) is not None
                ),
                None,
            )
        for key in ("loss", "eval_loss"):
            last = conn.execute(
                f"SELECT {key} FROM metrics WHERE job_id = ? AND attempt = ? AND {key} IS NOT NULL "
                "ORDER BY seq DESC LIMIT 1",
                (int(job_id), attempt),
            ).fetchone()
            entry[key] = last[0] if last else None
        if entry["percentage"] is None and entry["total_steps"]:
            entry["percentage"] = round(100.0 * step / entry["total_steps"], 2)
        result[int(job_id)] = entry
    return result


def add_gpu_samples(db: Database, samples: Sequence[dict[str, Any]]) -> int:
    """Store GPU samples (keys: time, uuid, gpu_index, utilization, memory_used_mib, memory_total_mib,
    temperature, power_w, job_id or None, simulated); return how many were stored."""
    if not samples:
        return 0
    records = []
    for sample in samples:
        values = [sample.get(column) for column in _GPU_SAMPLE_COLUMNS]
        values[_GPU_SAMPLE_COLUMNS.index("simulated")] = int(bool(sample.get("simulated")))
        if values[0] is None:
            values[0] = time.time()
        records.append(values)
    with write_txn(db) as conn:
        conn.executemany(
            f"INSERT INTO gpu_samples ({', '.join(_GPU_SAMPLE_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_GPU_SAMPLE_COLUMNS))})",
            records,
        )
    return len(records)


def get_gpu_samples(
    db: Database,
    *,
    uuid: str | None = None,
    job_id: int | None = None,
    since: float | None = None,
) -> list[dict[str, Any]]:
    """GPU samples, oldest first, filtered by GPU uuid, job and/or time (``since`` inclusive)."""
    clauses: list[str] = []
    params: list[Any] = []
    if uuid is not None:
        clauses.append("uuid = ?")
        params.append(uuid)
    if job_id is not None:
        clauses.append("job_id = ?")
        params.append(int(job_id))
    if since is not None:
        clauses.append("time >= ?")
        params.append(float(since))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    cursor = db.conn.execute(
        f"SELECT {', '.join(_GPU_SAMPLE_COLUMNS)} FROM gpu_samples{where} ORDER BY time, id", params
    )
    samples = []
    for row in cursor:
        sample = dict(zip(_GPU_SAMPLE_COLUMNS, row, strict=True))
        sample["simulated"] = bool(sample["simulated"])
        samples.append(sample)
    return samples


def prune_gpu_samples(db: Database, keep_seconds: float, now: float | None = None) -> int:
    """Delete GPU samples older than ``keep_seconds``; return how many were deleted."""
    cutoff = (time.time() if now is None else now) - float(keep_seconds)
    with write_txn(db) as conn:
        return conn.execute("DELETE FROM gpu_samples WHERE time < ?", (cutoff,)).rowcount


def get_ingest_offset(db: Database, job_id: int, attempt: int) -> int:
    """Byte offset up to which the attempt's trainer_log.jsonl has been ingested (0 when never)."""
    row = db.conn.execute(
        "SELECT byte_offset FROM ingest_offsets WHERE job_id = ? AND attempt = ?", (int(job_id), int(attempt))
    ).fetchone()
    return int(row[0]) if row else 0


def set_ingest_offset(db: Database, job_id: int, attempt: int, offset: int) -> None:
    """Remember the byte offset up to which the attempt's trainer_log.jsonl has been ingested."""
    with write_txn(db) as conn:
        _store_offset(conn, job_id, attempt, offset)


def ingest_rows(
    db: Database, job_id: int, attempt: int, rows: Sequence[dict[str, Any]], offset: int
) -> int:
    """Store metric rows and the new ingest offset in ONE transaction, so a crash never doubles rows."""
    with write_txn(db) as conn:
        count = _insert_metrics(conn, job_id, attempt, rows)
        _store_offset(conn, job_id, attempt, offset)
        return count
