"""Why a queued or held job has not started, in words for the queue table and the dashboard.

The runner stores the scheduler's reason on every waiting job (``Resources (needs 2 GPUs, 1 free)``,
``Dependency (job 4)``, ``Priority``, …). `wait_reasons` reads those while the runner runs; when the
runner is stopped, or has not looked at a job yet, it asks the real scheduler
(`tunequeue.runner.scheduler.schedule`) with the queue, the GPUs and the runner settings as they are
now. A stopped runner is always the first reason: nothing starts without it. `parse_reason` turns a
stored reason into a `WaitReason` (a key and its values), and `short_text` / `sentence` render it in
the interface language; a reason this module does not know is shown as it was stored.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tunequeue.tui.text import tr

GPU_SNAPSHOT_SECONDS = 10.0

# The GPU snapshot is read at most every 10 s (NVML calls are not free), per home and simulation.
_SNAPSHOT: dict[str, Any] = {"time": 0.0, "value": None, "key": None}

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("dependency", re.compile(r"Dependency \(job (?P<job>\d+)\)")),
    (
        "gpus_vram",
        re.compile(
            r"Resources \(needs (?P<need>\d+) GPUs? with (?P<gib>[\d.]+) GiB free, (?P<free>\d+) "
            r"(?:free|with room)\)"
        ),
    ),
    (
        "unusable",
        re.compile(
            r"Resources \(needs (?P<need>\d+) GPUs?(?: with [\d.]+ GiB)?, only (?P<usable>\d+) usable"
            r"(?:; (?P<detail>.*))?\)"
        ),
    ),
    ("gpus", re.compile(r"Resources \(needs (?P<need>\d+) GPUs?, (?P<free>\d+) free\)")),
    ("cpu_limit", re.compile(r"Resources \(CPU job limit of (?P<limit>\d+) reached\)")),
    ("no_gpu_cpu", re.compile(r"Resources \(no GPU found and the task sets allow_cpu: false\)")),
    ("reserved", re.compile(r"Priority \(GPUs reserved for job (?P<job>\d+)\)")),
    ("priority", re.compile(r"Priority")),
]


@dataclass(frozen=True)
class WaitReason:
    """Why one job waits: a `key` ("held", "gpus", "dependency", …), its values, and the raw text.

    `then` is what would hold the job up once the runner runs (only with key "runner_stopped").
    """

    key: str
    values: dict[str, str] = field(default_factory=dict)
    raw: str = ""
    then: WaitReason | None = None


def parse_reason(stored: str) -> WaitReason:
    """The `WaitReason` of a reason text as the scheduler writes it ("other" when not one of its forms)."""
    text = (stored or "").strip()
    for key, pattern in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            values = {name: value for name, value in match.groupdict().items() if value is not None}
            return WaitReason(key, values, text)
    return WaitReason("other", {}, text)


def short_text(reason: WaitReason, lang: str) -> str:
    """A few words for the queue table's reason column."""
    if reason.key == "other":
        return reason.raw or "-"
    return tr(f"reason.short.{reason.key}", lang, **reason.values)


def sentence(reason: WaitReason, lang: str) -> str:
    """The whole reason for the detail line and the dashboard (what would hold it next, too)."""
    if reason.key == "other":
        text = reason.raw or "-"
    else:
        values = dict(reason.values)
        if reason.key == "unusable":
            values["detail"] = f" ({values['detail']})" if values.get("detail") else ""
        text = tr(f"reason.long.{reason.key}", lang, **values)
    if reason.then is not None:
        text += tr("reason.then", lang, next=sentence(reason.then, lang))
    return text


def _gpu_snapshot(now: float) -> Any:
    from tunequeue.gpus import read_gpus

    key = (os.environ.get("TUNEQUEUE_HOME"), os.environ.get("TUNEQUEUE_SIMULATED_GPUS"))
    cached = _SNAPSHOT["value"]
    if cached is not None and _SNAPSHOT["key"] == key and 0 <= now - _SNAPSHOT["time"] < GPU_SNAPSHOT_SECONDS:
        return cached
    snapshot = read_gpus()
    _SNAPSHOT.update(value=snapshot, time=now, key=key)
    return snapshot


def _runner_settings() -> Any:
    from tunequeue.core.errors import UserError
    from tunequeue.runner.settings import load_settings

    try:
        return load_settings()
    except (UserError, OSError, ValueError):
        return None


def scheduler_reasons(db: Any, jobs: list[Any], now: float) -> dict[int, WaitReason]:
    """Ask the scheduler, as the runner would this moment, why each queued job of `jobs` would wait."""
    from tunequeue.core.errors import UserError
    from tunequeue.jobqueue import jobs as jobs_module
    from tunequeue.runner.scheduler import SchedulerSettings, schedule

    queued = [job for job in jobs if job.state == jobs_module.JobState.QUEUED]
    if not queued:
        return {}
    settings = _runner_settings()
    if settings is not None and getattr(settings, "backend", "local") != "local":
        return {}  # the cluster decides; its pending reason is stored on the job
    try:
        snapshot = _gpu_snapshot(now)
    except UserError:
        return {}
    active = [job for job in jobs if job.is_active]
    busy: dict[int, list[int]] = {}
    for job in active:
        for index in job.assigned_gpus:
            busy.setdefault(index, []).append(job.id)
    decision = schedule(
        queued,
        snapshot.gpus,
        busy=busy,
        settings=settings.scheduler_settings() if settings is not None else SchedulerSettings(),
        now=now,
        dependency=jobs_module.dependency_statuses(db, queued),
        active_jobs=active,
    )
    reasons = {job_id: parse_reason(text) for job_id, text in decision.waiting.items()}
    for job_id, text in decision.dependency_failed:
        reasons[job_id] = WaitReason("other", {}, text)
    for job_id, _gpus in decision.start:
        reasons[job_id] = WaitReason("starts")
    return reasons


def wait_reasons(
    db: Any, jobs: list[Any], runner_running: bool, now: float | None = None
) -> dict[int, WaitReason]:
    """Why each queued or held job of `jobs` has not started (by job id)."""
    from tunequeue.jobqueue.jobs import JobState

    now = time.time() if now is None else now
    waiting = [job for job in jobs if job.state in (JobState.QUEUED, JobState.HELD)]
    if not waiting:
        return {}
    needs_scheduler = not runner_running or any(
        job.state == JobState.QUEUED and not job.reason for job in waiting
    )
    computed = scheduler_reasons(db, jobs, now) if needs_scheduler else {}
    reasons: dict[int, WaitReason] = {}
    for job in waiting:
        if job.state == JobState.HELD:
            reasons[job.id] = WaitReason("held")
            continue
        if runner_running and job.reason:
            reasons[job.id] = parse_reason(job.reason)
            continue
        found = computed.get(job.id) or (parse_reason(job.reason) if job.reason else WaitReason("starts"))
        if runner_running:
            reasons[job.id] = found
        else:
            then = None if found.key == "starts" else found
            reasons[job.id] = WaitReason("runner_stopped", then=then)
    return reasons
