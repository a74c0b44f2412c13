"""Eight processes submit 100 jobs each while two other processes claim: every job is claimed once."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from tunequeue.jobqueue import db as queue_db
from tunequeue.jobqueue import jobs
from tunequeue.jobqueue.jobs import JobState

SUBMITTERS = 8
JOBS_PER_SUBMITTER = 100
CLAIMERS = 2
TOTAL = SUBMITTERS * JOBS_PER_SUBMITTER


def submitter(db_path: str, home: str, number: int) -> None:
    os.environ["TUNEQUEUE_HOME"] = home
    db = queue_db.open_db(Path(db_path))
    for i in range(JOBS_PER_SUBMITTER):
        jobs.submit(db, task_yaml="stage: sft\n", name=f"s{number}-{i}", gpus=0)


def claimer(db_path: str, home: str, number: int, results: multiprocessing.Queue) -> None:
    os.environ["TUNEQUEUE_HOME"] = home
    db = queue_db.open_db(Path(db_path))
    claimed: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        candidates = jobs.list_jobs(db, states=[JobState.QUEUED], order="priority", limit=16)
        if not candidates:
            counts = jobs.counts_by_state(db)
            if counts["starting"] == TOTAL:
                break
            time.sleep(0.002)
            continue
        for job in candidates:
            won = jobs.claim(db, job.id, [number], [f"GPU-claimer-{number}"])
            if won is not None:
                claimed.append(won.id)
    results.put((number, claimed))


def test_eight_submitters_two_claimers_every_job_claimed_exactly_once(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TUNEQUEUE_HOME", str(home))
    db_path = tmp_path / "queue.db"
    queue_db.open_db(db_path)  # create the schema once, like the runner does on start

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    claimers = [
        context.Process(target=claimer, args=(str(db_path), str(home), n, results)) for n in range(CLAIMERS)
    ]
    submitters = [
        context.Process(target=submitter, args=(str(db_path), str(home), n)) for n in range(SUBMITTERS)
    ]
    for process in claimers + submitters:
        process.start()
    claimed_by: dict[int, list[int]] = {}
    for _ in range(CLAIMERS):
        number, claimed = results.get(timeout=180)
        claimed_by[number] = claimed
    for process in claimers + submitters:
        process.join(timeout=60)
        assert process.exitcode == 0

    all_claimed = [job_id for claimed in claimed_by.values() for job_id in claimed]
    assert len(all_claimed) == TOTAL
    assert len(set(all_claimed)) == TOTAL

    db = queue_db.open_db(db_path)
    every_job = jobs.list_jobs(db)
    assert len(every_job) == TOTAL
    assert {job.state for job in every_job} == {JobState.STARTING}
    # The event log proves it: exactly one queued → starting event per job, by the claimer that won.
    rows = db.conn.execute(
        "SELECT job_id, count(*) FROM job_events WHERE from_state = 'queued' AND to_state = 'starting' "
        "GROUP BY job_id"
    ).fetchall()
    assert len(rows) == TOTAL
    assert all(count == 1 for _, count in rows)
    for number, claimed in claimed_by.items():
        for job_id in claimed[:50]:
            assert jobs.get(db, job_id).assigned_gpus == [number]
    submitted_names = {job.name for job in every_job}
    assert len(submitted_names) == TOTAL
