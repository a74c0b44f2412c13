"""Tail each job's trainer_log.jsonl into the queue's metrics table.

The file is read from the byte offset stored for (job, attempt), only up to the last complete line (a
line the trainer is still writing is left for the next tick), and a file that became shorter than the
offset (truncated or rewritten) is read again from the start. Lines that are not JSON objects are skipped.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

from tunequeue.core import private_files

METRICS_FILE = "trainer_log.jsonl"
_MAX_READ_BYTES = 8 * 1024 * 1024

log = logging.getLogger(__name__)


def read_new_rows(path: Path, offset: int, max_bytes: int = _MAX_READ_BYTES) -> tuple[list[dict], int]:
    """Complete JSON lines of ``path`` after byte ``offset``; returns (rows, offset after the last one)."""
    try:
        size = path.lstat().st_size
    except OSError:
        return [], offset
    if size < offset:
        offset = 0
    if size == offset:
        return [], offset
    with private_files.open_file(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(max_bytes)
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    rows: list[dict] = []
    for line in data[: end + 1].splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            log.warning("skipping a line of %s that is not JSON", path)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows, offset + end + 1


def ingest_job(db, job) -> int:
    """Store the new trainer_log.jsonl rows of ``job``'s current attempt; return how many were added."""
    from tunequeue.jobqueue import metrics

    path = Path(job.run_dir) / METRICS_FILE
    offset = metrics.get_ingest_offset(db, job.id, job.attempt) or 0
    rows, new_offset = read_new_rows(path, offset)
    if new_offset == offset:
        return 0
    metrics.ingest_rows(db, job.id, job.attempt, rows, new_offset)
    return len(rows)


def ingest_or_warn(db, job) -> int:
    """`ingest_job`, logging (not raising) when the run dir cannot be read; returns rows added."""
    try:
        return ingest_job(db, job)
    except (OSError, sqlite3.Error) as err:  # a full disk must not keep a finished job from its end
        log.warning("job %s: could not read its metrics: %s", job.id, err)
        return 0
