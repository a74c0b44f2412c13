"""The runner's measurements summarised for the scheduler: utilisation, ETAs, expected run times."""

from __future__ import annotations

import json

import pytest

from tunequeue.jobqueue import jobs, metrics
from tunequeue.jobqueue.db import open_db
from tunequeue.jobqueue.jobs import Job, JobState
from tunequeue.runner import observed

NOW = 50_000.0
LONG_AGO = NOW - 600


def running(job_id, gpus, started_at=LONG_AGO):
    return Job(
        id=job_id, name=f"j{job_id}", state=JobState.RUNNING, assigned_gpus=gpus, started_at=started_at
    )


def sample(index, age, utilization):
    return {"gpu_index": index, "time": NOW - age, "utilization": utilization}


UTILIZATION_CASES = [
    pytest.param(
        [sample(0, 10, 90), sample(0, 20, 95), sample(0, 30, 20)],
        [running(1, [0])],
        {0: 90},
        id="median of the window",
    ),
    pytest.param(
        [sample(0, 200, 10), sample(0, 5, 95)],
        [running(1, [0])],
        {0: 95},
        id="older than two minutes ignored",
    ),
    pytest.param(
        [sample(0, 50, 5), sample(0, 5, 85)],
        [running(1, [0]), running(2, [0], started_at=NOW - 60)],
        {0: 85},
        id="the first 30 s of the newest job are ignored",
    ),
    pytest.param(
        [sample(0, 5, 5)], [running(1, [0], started_at=NOW - 20)], {0: None}, id="no sample yet: unknown"
    ),
    pytest.param([sample(1, 5, 99)], [running(1, [0])], {0: None}, id="GPUs without our jobs are left out"),
    pytest.param(
        [sample(0, 5, 40), sample(1, 5, 60)],
        [running(1, [0, 1])],
        {0: 40, 1: 60},
        id="a multi-GPU job counts on each of its GPUs",
    ),
    pytest.param(
        [sample(0, 5, None), sample(0, 6, 70)], [running(1, [0])], {0: 70}, id="missing readings skipped"
    ),
]


@pytest.mark.parametrize(("samples", "active", "expected"), UTILIZATION_CASES)
def test_summarize_utilization(samples, active, expected):
    assert observed.summarize_utilization(samples, active, NOW) == expected


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    return open_db()


def _run(db, name, group=None, gpus=(0,)):
    job = jobs.submit(db, task_yaml="stage: sft\n", name=name, group_id=group)
    jobs.claim(db, job.id, list(gpus), [f"GPU-{g}" for g in gpus])
    return jobs.mark_running(db, job.id, pid=1, pgid=1, proc_start_time=1.0)


def test_gpu_utilization_reads_the_stored_samples(db):
    job = _run(db, "sampled")
    started = job.started_at
    rows = [
        {"time": started + 40 + i, "uuid": "GPU-0", "gpu_index": 0, "utilization": u}
        for i, u in enumerate((70, 75, 99))
    ]
    metrics.add_gpu_samples(db, rows)
    assert observed.gpu_utilization(db, [job], started + 45) == {0: 75}


def test_job_etas_from_the_newest_metrics_row(db):
    seconds = _run(db, "numeric")
    clock = _run(db, "clock", gpus=(1,))
    silent = _run(db, "silent", gpus=(2,))
    metrics.add_metrics(db, seconds.id, 1, [{"current_steps": 1, "remaining_seconds": 9000}])
    metrics.add_metrics(db, seconds.id, 1, [{"current_steps": 2, "remaining_seconds": 600.0}])
    metrics.add_metrics(db, clock.id, 1, [{"current_steps": 1, "remaining_time": "1 day, 1:00:00"}])
    stored = db.conn.execute("SELECT max(time) FROM metrics").fetchone()[0]
    etas = observed.job_etas(db, [seconds, clock, silent], stored + 100)
    assert etas[seconds.id] == pytest.approx(500.0, abs=1)
    assert etas[clock.id] == pytest.approx(90000.0 - 100, abs=1)
    assert silent.id not in etas


def test_expected_run_seconds_from_finished_jobs_of_the_group(db):
    for name, seconds in (("a", 100.0), ("b", 300.0), ("c", 200.0)):
        job = _run(db, name, group="sweep-1")
        jobs.finish(db, job.id, exit_code=0)
        db.conn.execute("UPDATE jobs SET finished_at = started_at + ? WHERE id = ?", (seconds, job.id))
    failed = _run(db, "failed", group="sweep-1")
    jobs.finish(db, failed.id, exit_code=1)
    waiting = jobs.submit(db, task_yaml="stage: sft\n", name="d", group_id="sweep-1")
    alone = jobs.submit(db, task_yaml="stage: sft\n", name="e", group_id="other")
    loose = jobs.submit(db, task_yaml="stage: sft\n", name="f")
    assert observed.expected_run_seconds(db, [waiting, alone, loose]) == {waiting.id: 200.0}


def test_clock_seconds_rejects_what_is_not_a_duration():
    assert observed._clock_seconds(json.loads("true")) is None
    assert observed._clock_seconds("soon") is None
    assert observed._clock_seconds("0:01:30") == 90.0
