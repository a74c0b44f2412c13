"""Jobs and their states: the one place that changes a job's state.

States (Slurm's vocabulary where it has one)::

    queued ──► starting ──► running ──► succeeded | failed | cancelled
      │  ▲        │            │
      ▼  │        └──► cancelling ◄──┘  (then cancelled, or succeeded if it finished first)
     held

and running ──► queued when the runner retries a job that ran out of memory on a shared GPU (`requeue`).

Every change goes through `transition` (or a helper built on it), is checked against
`ALLOWED_TRANSITIONS`, and writes a ``job_events`` row in the same ``BEGIN IMMEDIATE`` transaction.
A refused change raises `InvalidTransition`, a `UserError` whose message says what the user can do.
"""

from __future__ import annotations

import json
import re
import signal as signal_module
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.core import paths, private_files
from tunequeue.core.errors import UserError
from tunequeue.jobqueue.db import write_txn

if TYPE_CHECKING:
    from tunequeue.jobqueue.db import Database


class JobState(str, Enum):
    """Lifecycle state of a job."""

    QUEUED = "queued"
    HELD = "held"
    STARTING = "starting"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


ACTIVE_STATES = frozenset({JobState.STARTING, JobState.RUNNING, JobState.CANCELLING})
FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
WAITING_STATES = frozenset({JobState.QUEUED, JobState.HELD})

ALLOWED_TRANSITIONS: dict[JobState, set[JobState]] = {
    JobState.QUEUED: {JobState.HELD, JobState.STARTING, JobState.CANCELLED},
    JobState.HELD: {JobState.QUEUED, JobState.CANCELLED},
    # starting → queued: the runner claimed the job but died before launching it.
    JobState.STARTING: {
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.CANCELLING,
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELLED,
    },
    # running → queued: the runner's automatic retry of a job that ran out of memory on a shared GPU.
    JobState.RUNNING: {
        JobState.QUEUED,
        JobState.CANCELLING,
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELLED,
    },
    JobState.CANCELLING: {JobState.SUCCEEDED, JobState.CANCELLED},
    JobState.SUCCEEDED: set(),
    JobState.FAILED: {JobState.QUEUED},
    JobState.CANCELLED: {JobState.QUEUED},
}

JOB_KINDS = ("train", "eval", "predict", "export")
EXIT_CODE_CANCELLED = 3
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_JSON_LIST_COLUMNS = ("assigned_gpus", "gpu_uuids", "after")
_UPDATABLE_COLUMNS = frozenset(
    {
        "priority",
        "requested_gpus",
        "requested_vram_gib",
        "allow_share",
        "assigned_gpus",
        "gpu_uuids",
        "attempt",
        "pid",
        "pgid",
        "proc_start_time",
        "started_at",
        "finished_at",
        "exit_code",
        "signal",
        "backend_job_id",
    }
)


class InvalidTransition(UserError):
    """A state change that the job's current state does not allow."""


@dataclass
class Job:
    """One row of the ``jobs`` table."""

    id: int
    name: str
    namespace: str = "default"
    kind: str = "train"
    state: JobState = JobState.QUEUED
    priority: int = 0
    task_yaml: str = ""
    requested_gpus: int = 1
    requested_vram_gib: float | None = None
    allow_share: bool = False
    assigned_gpus: list[int] = field(default_factory=list)
    gpu_uuids: list[str] = field(default_factory=list)
    attempt: int = 1
    pid: int | None = None
    pgid: int | None = None
    proc_start_time: float | None = None
    run_dir: str = ""
    submitted_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    after: list[int] = field(default_factory=list)
    preset_ref: str | None = None
    group_id: str | None = None
    backend_job_id: str | None = None

    @property
    def is_active(self) -> bool:
        """True while a process may exist for the job (starting, running, cancelling)."""
        return self.state in ACTIVE_STATES

    @property
    def is_final(self) -> bool:
        """True once the job has succeeded, failed or been cancelled."""
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field (state as its string value)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["state"] = self.state.value
        return data


_JOB_FIELDS = tuple(Job.__dataclass_fields__)
_SELECT_COLUMNS = ", ".join(_JOB_FIELDS)


_STATE_BY_VALUE = {state.value: state for state in JobState}


def _json_list(text: str | None) -> list[Any]:
    # Most rows hold empty lists; skipping the JSON parser for them makes listing 10,000 jobs 2x faster.
    return [] if not text or text == "[]" else json.loads(text)


def _job_from_row(row: Sequence[Any]) -> Job:
    values = dict(zip(_JOB_FIELDS, row, strict=False))
    for column in _JSON_LIST_COLUMNS:
        values[column] = _json_list(values[column])
    values["state"] = _STATE_BY_VALUE[values["state"]]
    values["allow_share"] = bool(values["allow_share"])
    return Job(**values)


def _fetch(conn: sqlite3.Connection, job_id: int) -> Job:
    row = conn.execute(f"SELECT {_SELECT_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise UserError(f"no job {job_id}; `tunequeue ls` lists job ids")
    return _job_from_row(row)


def _record_event(
    conn: sqlite3.Connection,
    job_id: int,
    from_state: JobState | None,
    to: JobState,
    reason: str,
    attempt: int,
) -> None:
    conn.execute(
        "INSERT INTO job_events (job_id, time, from_state, to_state, reason, attempt) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (job_id, time.time(), from_state.value if from_state else None, to.value, reason, attempt),
    )


def _encode(column: str, value: Any) -> Any:
    if column in _JSON_LIST_COLUMNS:
        return json.dumps(list(value))
    if isinstance(value, bool):
        return int(value)
    return value


def _states_phrase(states: Iterable[JobState]) -> str:
    order = list(JobState)
    names = [s.value for s in sorted(set(states), key=order.index)]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _apply_transition(
    conn: sqlite3.Connection,
    job_id: int,
    to: JobState,
    *,
    reason: str,
    expect: Iterable[JobState] | JobState | None,
    fields: dict[str, Any],
    action: str | None = None,
) -> Job:
    """Check and perform one state change inside an open write transaction."""
    to = JobState(to)
    job = _fetch(conn, job_id)
    if expect is not None:
        expected = (
            {JobState(expect)} if isinstance(expect, (str, JobState)) else {JobState(s) for s in expect}
        )
    else:
        expected = None
    allowed = to in ALLOWED_TRANSITIONS[job.state]
    if not allowed or (expected is not None and job.state not in expected):
        if action:
            sources = expected or {s for s, targets in ALLOWED_TRANSITIONS.items() if to in targets}
            raise InvalidTransition(
                f"job {job_id} is {job.state.value}; only {_states_phrase(sources)} jobs can be {action}"
            )
        raise InvalidTransition(f"job {job_id} is {job.state.value} and cannot become {to.value}")
    unknown = set(fields) - _UPDATABLE_COLUMNS
    if unknown:
        raise ValueError(f"transition cannot set {sorted(unknown)}")
    now = time.time()
    assignments = {"state": to.value, "reason": reason, "updated_at": now}
    assignments.update({column: _encode(column, value) for column, value in fields.items()})
    columns = ", ".join(f"{column} = ?" for column in assignments)
    conn.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*assignments.values(), job_id))
    attempt = int(fields.get("attempt", job.attempt))
    _record_event(conn, job_id, job.state, to, reason, attempt)
    if to in (JobState.FAILED, JobState.CANCELLED):
        _cancel_dependents(conn, job_id, to)
    return _fetch(conn, job_id)


def _cancel_dependents(conn: sqlite3.Connection, job_id: int, outcome: JobState) -> None:
    """Cancel waiting jobs that depend on a job that failed or was cancelled (and theirs, in turn)."""
    pending = [(job_id, outcome)]
    while pending:
        parent, parent_outcome = pending.pop()
        rows = conn.execute(
            "SELECT jobs.id, jobs.state, jobs.attempt FROM jobs, json_each(jobs.after) "
            "WHERE json_each.value = ? AND jobs.state IN ('queued', 'held')",
            (parent,),
        ).fetchall()
        word = "failed" if parent_outcome == JobState.FAILED else "was cancelled"
        for child_id, child_state, attempt in rows:
            reason = f"dependency never satisfied (job {parent} {word})"
            conn.execute(
                "UPDATE jobs SET state = 'cancelled', reason = ?, finished_at = ?, updated_at = ? "
                "WHERE id = ?",
                (reason, time.time(), time.time(), child_id),
            )
            _record_event(conn, child_id, JobState(child_state), JobState.CANCELLED, reason, attempt)
            pending.append((child_id, JobState.CANCELLED))


def transition(
    db: Database,
    job_id: int,
    to: JobState | str,
    *,
    reason: str = "",
    expect: Iterable[JobState] | JobState | None = None,
    **fields: Any,
) -> Job:
    """Move a job to state ``to`` if allowed (and if it is in ``expect``), setting ``fields`` too.

    Writes the event row in the same transaction. Raises `InvalidTransition` when refused.
    Moving a job to failed or cancelled also cancels the waiting jobs that depend on it.
    """
    with write_txn(db) as conn:
        return _apply_transition(conn, job_id, JobState(to), reason=reason, expect=expect, fields=fields)


def _check_name(name: str) -> None:
    if not _NAME_PATTERN.match(name or ""):
        raise UserError(
            f"job name {name!r} is not usable; use up to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def _check_name_free(
    conn: sqlite3.Connection, namespace: str, name: str, except_job: int | None = None
) -> None:
    """Refuse a name that a waiting or active job of the namespace has (finished jobs free theirs)."""
    row = conn.execute(
        "SELECT id, state FROM jobs WHERE state IN ('queued', 'held', 'starting', 'running', 'cancelling') "
        "AND namespace = ? AND name = ? AND id IS NOT ? LIMIT 1",
        (namespace, name, except_job),
    ).fetchone()
    if row is not None:
        job_id, state = row
        raise UserError(
            f"job {job_id} ({state}) already has task_name {name!r} in namespace {namespace!r}; "
            f"pick another task_name (or --name), or cancel/delete job {job_id} or let it finish"
        )


def check_name_free(db: Database, namespace: str, name: str) -> None:
    """Raise `UserError` when a queued, held or active job already has ``(namespace, name)``."""
    _check_name_free(db.conn, namespace, name)


def submit(
    db: Database,
    *,
    task_yaml: str,
    name: str,
    namespace: str = "default",
    kind: str = "train",
    gpus: int = 1,
    vram_gib: float | None = None,
    allow_share: bool = False,
    priority: int = 0,
    after: Iterable[int] = (),
    hold: bool = False,
    preset_ref: str | None = None,
    group_id: str | None = None,
) -> Job:
    """Queue a new job (held when ``hold``) and return it. Writes no files; the runner creates the run dir.

    ``(namespace, name)`` must not belong to a queued, held or active job (a finished job's name is free).
    """
    _check_name(name)
    if kind not in JOB_KINDS:
        raise UserError(f"job kind {kind!r} is unknown; use one of {', '.join(JOB_KINDS)}")
    if int(gpus) < 0:
        raise UserError(f"--gpus {gpus} is negative; ask for 0 (CPU only) or more GPUs")
    if vram_gib is not None and float(vram_gib) <= 0:
        raise UserError(f"--vram {vram_gib} must be a positive number of GiB")
    if allow_share and vram_gib is None:
        raise UserError("sharing a GPU needs a VRAM amount; add --vram GIB or drop --share")
    dependencies = sorted({int(dep) for dep in after})
    state = JobState.HELD if hold else JobState.QUEUED
    now = time.time()
    with write_txn(db) as conn:
        _check_name_free(conn, namespace, name)
        for dep in dependencies:
            if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (dep,)).fetchone() is None:
                raise UserError(f"no job {dep} to wait for; `tunequeue ls` lists job ids")
        cursor = conn.execute(
            "INSERT INTO jobs (name, namespace, kind, state, priority, task_yaml, requested_gpus, "
            "requested_vram_gib, allow_share, attempt, submitted_at, reason, after, preset_ref, group_id, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
            (
                name,
                namespace,
                kind,
                state.value,
                int(priority),
                task_yaml,
                int(gpus),
                float(vram_gib) if vram_gib is not None else None,
                int(bool(allow_share)),
                now,
                "Held" if hold else "",
                json.dumps(dependencies),
                preset_ref,
                group_id,
                now,
            ),
        )
        assert cursor.lastrowid is not None  # set by every INSERT that succeeded
        job_id = int(cursor.lastrowid)
        run_dir = paths.home() / "runs" / f"{job_id}-{name}"
        conn.execute("UPDATE jobs SET run_dir = ? WHERE id = ?", (str(run_dir), job_id))
        _record_event(conn, job_id, None, state, "submitted", 1)
        return _fetch(conn, job_id)


def get(db: Database, job_id: int) -> Job:
    """Return job ``job_id``; a missing one is a `UserError`."""
    return _fetch(db.conn, int(job_id))


_ORDERS = {
    "id": "id",
    "-id": "id DESC",
    "priority": "priority DESC, submitted_at, id",
    "submitted": "submitted_at, id",
    "-submitted": "submitted_at DESC, id DESC",
}


def list_jobs(
    db: Database,
    states: Iterable[JobState | str] | None = None,
    limit: int | None = None,
    order: str = "id",
) -> list[Job]:
    """List jobs, optionally only those in ``states``.

    ``order``: "id" (default), "-id" (newest first), "priority" (scheduling order: priority, then
    submission), "submitted" or "-submitted".
    """
    if order not in _ORDERS:
        raise UserError(f"unknown order {order!r}; use one of {', '.join(_ORDERS)}")
    sql = f"SELECT {_SELECT_COLUMNS} FROM jobs"
    params: list[Any] = []
    if states is not None:
        wanted = [JobState(s).value for s in states]
        if not wanted:
            return []
        sql += f" WHERE state IN ({', '.join('?' * len(wanted))})"
        params.extend(wanted)
    sql += f" ORDER BY {_ORDERS[order]}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [_job_from_row(row) for row in db.conn.execute(sql, params)]


def claim(
    db: Database, job_id: int, gpus: Sequence[int], gpu_uuids: Sequence[str]
) -> Job | None:
    """Move a queued job to starting with its GPUs; None when it is no longer queued (someone took it)."""
    now = time.time()
    with write_txn(db) as conn:
        row = conn.execute(
            "UPDATE jobs SET state = 'starting', reason = '', assigned_gpus = ?, gpu_uuids = ?, "
            "started_at = ?, "
            "finished_at = NULL, exit_code = NULL, signal = NULL, pid = NULL, pgid = NULL, "
            "proc_start_time = NULL, updated_at = ? WHERE id = ? AND state = 'queued' RETURNING attempt",
            (json.dumps([int(g) for g in gpus]), json.dumps(list(gpu_uuids)), now, now, int(job_id)),
        ).fetchone()
        if row is None:
            return None
        _record_event(conn, int(job_id), JobState.QUEUED, JobState.STARTING, "claimed", int(row[0]))
        return _fetch(conn, int(job_id))


def mark_running(db: Database, job_id: int, pid: int, pgid: int, proc_start_time: float) -> Job:
    """Record the launched process of a starting job and move it to running.

    ``proc_start_time`` is the process's start time in clock ticks since boot (`tunequeue.runner.procs`),
    not a wall-clock time, so a clock step never changes it.
    """
    return transition(
        db,
        job_id,
        JobState.RUNNING,
        reason="launched",
        expect=JobState.STARTING,
        pid=int(pid),
        pgid=int(pgid),
        proc_start_time=float(proc_start_time),
    )


def describe_exit(exit_code: int | None, signal: int | None) -> str:
    """Human phrase for how a process ended: "exit code 1" or "killed by SIGKILL"."""
    if signal:
        try:
            return f"killed by {signal_module.Signals(signal).name}"
        except ValueError:
            return f"killed by signal {signal}"
    if exit_code is None:
        return "process lost (no exit status was recorded)"
    return f"exit code {exit_code}"


def finish(
    db: Database,
    job_id: int,
    *,
    exit_code: int | None,
    signal: int | None = None,
    reason: str = "",
) -> Job:
    """Record the end of an active job's process.

    Exit code 0 → succeeded; a cancelling job or exit code 3 → cancelled; anything else → failed,
    with ``reason`` (or a description of the exit code / signal). A job that is not active raises
    `InvalidTransition`, so an exit is never recorded twice.
    """
    with write_txn(db) as conn:
        job = _fetch(conn, job_id)
        if exit_code == 0 and not signal:
            to, default_reason = JobState.SUCCEEDED, ""
        elif job.state == JobState.CANCELLING or exit_code == EXIT_CODE_CANCELLED:
            to, default_reason = JobState.CANCELLED, "cancelled"
        else:
            to, default_reason = JobState.FAILED, describe_exit(exit_code, signal)
        return _apply_transition(
            conn,
            job_id,
            to,
            reason=reason or default_reason,
            expect=ACTIVE_STATES,
            fields={"exit_code": exit_code, "signal": signal, "finished_at": time.time()},
            action="finished",
        )


def request_cancel(db: Database, job_id: int) -> Job:
    """Cancel a job: waiting ones at once, starting/running ones via cancelling (the runner kills them)."""
    with write_txn(db) as conn:
        job = _fetch(conn, job_id)
        if job.state == JobState.CANCELLING:
            return job
        if job.state in WAITING_STATES:
            return _apply_transition(
                conn,
                job_id,
                JobState.CANCELLED,
                reason="cancelled by user",
                expect=None,
                fields={"finished_at": time.time()},
            )
        return _apply_transition(
            conn,
            job_id,
            JobState.CANCELLING,
            reason="cancel requested",
            expect={JobState.QUEUED, JobState.HELD, JobState.STARTING, JobState.RUNNING},
            fields={},
            action="cancelled",
        )


def retry(db: Database, job_id: int) -> Job:
    """Queue a failed or cancelled job again as a new attempt; its run dir (and checkpoints) are kept.

    Refused while another queued, held or active job has the same namespace and name.
    """
    with write_txn(db) as conn:
        job = _fetch(conn, job_id)
        if job.state in FINAL_STATES:
            _check_name_free(conn, job.namespace, job.name, except_job=job_id)
        return _apply_transition(
            conn,
            job_id,
            JobState.QUEUED,
            reason="retry",
            expect={JobState.FAILED, JobState.CANCELLED},
            fields={
                "attempt": job.attempt + 1,
                "pid": None,
                "pgid": None,
                "proc_start_time": None,
                "started_at": None,
                "finished_at": None,
                "exit_code": None,
                "signal": None,
                "assigned_gpus": [],
                "gpu_uuids": [],
            },
            action="retried",
        )


def requeue(db: Database, job_id: int, *, reason: str) -> Job:
    """Queue a running job whose process just ended again, as a new attempt that never shares a GPU.

    The runner's automatic retry after a CUDA out-of-memory on a shared GPU: unlike a failure, the
    jobs waiting for this one stay queued; the run dir (and checkpoints) are kept, ``reason`` is recorded.
    """
    with write_txn(db) as conn:
        job = _fetch(conn, job_id)
        return _apply_transition(
            conn,
            job_id,
            JobState.QUEUED,
            reason=reason,
            expect=JobState.RUNNING,
            fields={
                "attempt": job.attempt + 1,
                "allow_share": False,
                "pid": None,
                "pgid": None,
                "proc_start_time": None,
                "started_at": None,
                "finished_at": None,
                "exit_code": None,
                "signal": None,
                "assigned_gpus": [],
                "gpu_uuids": [],
            },
            action="queued again",
        )


def hold(db: Database, job_id: int) -> Job:
    """Keep a queued job from being scheduled until it is released."""
    with write_txn(db) as conn:
        return _apply_transition(
            conn, job_id, JobState.HELD, reason="Held", expect=JobState.QUEUED, fields={}, action="held"
        )


def release(db: Database, job_id: int) -> Job:
    """Make a held job schedulable again."""
    with write_txn(db) as conn:
        return _apply_transition(
            conn,
            job_id,
            JobState.QUEUED,
            reason="released",
            expect=JobState.HELD,
            fields={},
            action="released",
        )


def set_priority(db: Database, job_id: int, priority: int) -> Job:
    """Change the priority of a queued or held job (higher runs first). Not a state change: no event."""
    with write_txn(db) as conn:
        job = _fetch(conn, job_id)
        if job.state not in WAITING_STATES:
            raise InvalidTransition(
                f"job {job_id} is {job.state.value}; only queued or held jobs can change priority"
            )
        conn.execute(
            "UPDATE jobs SET priority = ?, updated_at = ? WHERE id = ?", (int(priority), time.time(), job_id)
        )
        return _fetch(conn, job_id)


def update_task(
    db: Database,
    job_id: int,
    task_yaml: str,
    name: str | None = None,
    *,
    namespace: str | None = None,
    gpus: int | None = None,
    vram_gib: float | None = None,
    allow_share: bool | None = None,
    kind: str | None = None,
    preset_ref: str | None = None,
) -> Job:
    """Replace the task of a queued or held job (edited in the wizard); optionally its name, namespace,
    resources, kind and preset (`tunequeue.jobqueue.submission.update_task` passes them all).
    The job may keep its own name; another waiting or active job's name is refused.

    The run dir follows a new name only while it does not exist yet (a retried job keeps its checkpoints).
    Not a state change: no event.
    """
    if name is not None:
        _check_name(name)
    if gpus is not None and int(gpus) < 0:
        raise UserError(f"--gpus {gpus} is negative; ask for 0 (CPU only) or more GPUs")
    with write_txn(db) as conn:
        job = _fetch(conn, job_id)
        if job.state not in WAITING_STATES:
            raise InvalidTransition(
                f"job {job_id} is {job.state.value}; only queued or held jobs can be edited"
            )
        changes: dict[str, Any] = {"task_yaml": task_yaml, "updated_at": time.time()}
        new_namespace = job.namespace if namespace is None else namespace
        _check_name_free(conn, new_namespace, job.name if name is None else name, except_job=job_id)
        if new_namespace != job.namespace:
            changes["namespace"] = new_namespace
        if name is not None and name != job.name:
            changes["name"] = name
            if not Path(job.run_dir).exists():
                changes["run_dir"] = str(Path(job.run_dir).with_name(f"{job_id}-{name}"))
        if gpus is not None:
            changes["requested_gpus"] = int(gpus)
        if vram_gib is not None:
            changes["requested_vram_gib"] = float(vram_gib)
        if allow_share is not None:
            changes["allow_share"] = int(bool(allow_share))
        if kind is not None:
            if kind not in JOB_KINDS:
                raise UserError(f"job kind {kind!r} is unknown; use one of {', '.join(JOB_KINDS)}")
            changes["kind"] = kind
        if preset_ref is not None:
            changes["preset_ref"] = preset_ref
        columns = ", ".join(f"{column} = ?" for column in changes)
        conn.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*changes.values(), job_id))
        return _fetch(conn, job_id)


def set_wait_reason(db: Database, job_id: int, reason: str) -> None:
    """Store why a queued job waits (no state change, no event; no write when unchanged)."""
    set_wait_reasons(db, {job_id: reason})


def set_wait_reasons(db: Database, reasons: dict[int, str]) -> None:
    """Store the wait reasons of several queued jobs in one transaction, skipping unchanged ones."""
    if not reasons:
        return
    with write_txn(db) as conn:
        for job_id, reason in reasons.items():
            conn.execute(
                "UPDATE jobs SET reason = ? WHERE id = ? AND state = 'queued' AND reason IS NOT ?",
                (reason, int(job_id), reason),
            )


def set_backend_job(
    db: Database, job_id: int, backend_job_id: str | None, reason: str
) -> Job | None:
    """Record an active job's cluster job id and its current reason (no state change, no event).

    Returns the job, or None when it is no longer active (then nothing is written).
    """
    with write_txn(db) as conn:
        updated = conn.execute(
            "UPDATE jobs SET backend_job_id = ?, reason = ?, updated_at = ? "
            "WHERE id = ? AND state IN ('starting', 'running', 'cancelling')",
            (backend_job_id, reason, time.time(), int(job_id)),
        ).rowcount
        return _fetch(conn, int(job_id)) if updated else None


def delete(db: Database, job_id: int, keep_files: bool = False) -> None:
    """Delete a job that is not active, with its events and metrics, and its run dir unless ``keep_files``."""
    with write_txn(db) as conn:
        job = _fetch(conn, job_id)
        if job.is_active:
            raise InvalidTransition(
                f"job {job_id} is {job.state.value}; cancel it first (`tunequeue cancel {job_id}`), "
                "then delete it"
            )
        conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
    if not keep_files and job.run_dir:
        run_dir = Path(job.run_dir)
        # Only ever remove a directory shaped like a run dir of this very job.
        # A run dir replaced by a symlink is removed as a link only, never what it points to.
        if run_dir.parent.name == "runs" and run_dir.name.startswith(f"{job_id}-"):
            private_files.remove_tree(run_dir)


def events(db: Database, job_id: int) -> list[dict[str, Any]]:
    """Return the job's state changes, oldest first (time, from_state, to_state, reason, attempt)."""
    cursor = db.conn.execute(
        "SELECT id, job_id, time, from_state, to_state, reason, attempt FROM job_events "
        "WHERE job_id = ? ORDER BY id",
        (int(job_id),),
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def dependency_status(db: Database, job: Job) -> tuple[str, str]:
    """Whether a job's ``after`` jobs allow it to start: ("ready"|"waiting"|"failed", reason)."""
    return dependency_statuses(db, [job])[job.id]


def dependency_statuses(db: Database, jobs: Iterable[Job]) -> dict[int, tuple[str, str]]:
    """`dependency_status` for many jobs with one query."""
    jobs = list(jobs)
    wanted = sorted({dep for job in jobs for dep in job.after})
    states: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = db.conn.execute(
            f"SELECT id, state FROM jobs WHERE id IN ({', '.join('?' * len(chunk))})", chunk
        ).fetchall()
        states.update({int(row[0]): row[1] for row in rows})
    result: dict[int, tuple[str, str]] = {}
    for job in jobs:
        result[job.id] = ("ready", "")
        waiting_on = None
        for dep in job.after:
            state = states.get(dep)
            if state is None:
                result[job.id] = ("failed", f"dependency never satisfied (job {dep} was deleted)")
                break
            if state == JobState.FAILED.value:
                result[job.id] = ("failed", f"dependency never satisfied (job {dep} failed)")
                break
            if state == JobState.CANCELLED.value:
                result[job.id] = ("failed", f"dependency never satisfied (job {dep} was cancelled)")
                break
            if state != JobState.SUCCEEDED.value and waiting_on is None:
                waiting_on = dep
        else:
            if waiting_on is not None:
                result[job.id] = ("waiting", f"Dependency (job {waiting_on})")
    return result


def counts_by_state(db: Database) -> dict[str, int]:
    """Number of jobs in each state (every state present, zero when none)."""
    counts = {state.value: 0 for state in JobState}
    for state, count in db.conn.execute("SELECT state, count(*) FROM jobs GROUP BY state"):
        counts[state] = count
    return counts
