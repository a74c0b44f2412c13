"""Job state machine on a real SQLite file: every allowed transition works, every other is refused."""

from __future__ import annotations

import itertools

import pytest

from tunequeue.core.errors import UserError
from tunequeue.jobqueue import db as queue_db
from tunequeue.jobqueue import jobs
from tunequeue.jobqueue.jobs import ALLOWED_TRANSITIONS, InvalidTransition, JobState


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    return queue_db.open_db(tmp_path / "queue.db")


def make_job_in(db, state: JobState) -> int:
    """Bring a fresh job to ``state`` through the public API only."""
    job = jobs.submit(db, task_yaml="stage: sft\n", name=f"job-{state.value}", hold=state == JobState.HELD)
    if state in (JobState.QUEUED, JobState.HELD):
        return job.id
    if state == JobState.CANCELLED:
        jobs.request_cancel(db, job.id)
        return job.id
    assert jobs.claim(db, job.id, [0], ["GPU-x"]) is not None
    if state == JobState.STARTING:
        return job.id
    jobs.mark_running(db, job.id, pid=1234, pgid=1234, proc_start_time=1.0)
    if state == JobState.RUNNING:
        return job.id
    if state == JobState.CANCELLING:
        jobs.request_cancel(db, job.id)
    elif state == JobState.SUCCEEDED:
        jobs.finish(db, job.id, exit_code=0)
    elif state == JobState.FAILED:
        jobs.finish(db, job.id, exit_code=1)
    return job.id


def test_every_state_is_reachable_and_described(db):
    assert set(ALLOWED_TRANSITIONS) == set(JobState)
    for state in JobState:
        assert jobs.get(db, make_job_in(db, state)).state == state


@pytest.mark.parametrize(("source", "target"), list(itertools.product(JobState, JobState)))
def test_transition_table(db, source, target):
    job_id = make_job_in(db, source)
    events_before = jobs.events(db, job_id)
    if target in ALLOWED_TRANSITIONS[source]:
        job = jobs.transition(db, job_id, target, reason="table test")
        assert job.state == target
        last = jobs.events(db, job_id)[-1]
        assert (last["from_state"], last["to_state"]) == (source.value, target.value)
        assert last["reason"] == "table test"
        assert len(jobs.events(db, job_id)) == len(events_before) + 1
    else:
        with pytest.raises(InvalidTransition) as refused:
            jobs.transition(db, job_id, target, reason="table test")
        assert f"job {job_id} is {source.value}" in str(refused.value)
        assert jobs.get(db, job_id).state == source
        assert jobs.events(db, job_id) == events_before


def test_expect_guards_the_current_state(db):
    job_id = make_job_in(db, JobState.RUNNING)
    with pytest.raises(InvalidTransition):
        jobs.transition(db, job_id, JobState.FAILED, expect=JobState.STARTING)
    assert jobs.transition(db, job_id, JobState.FAILED, expect=[JobState.RUNNING]).state == JobState.FAILED


def test_invalid_transition_is_a_user_error_with_a_helpful_sentence(db):
    job_id = make_job_in(db, JobState.RUNNING)
    with pytest.raises(UserError, match=rf"^job {job_id} is running; only held jobs can be released$"):
        jobs.release(db, job_id)
    with pytest.raises(UserError, match="only queued jobs can be held"):
        jobs.hold(db, job_id)


def test_transition_refuses_unknown_fields(db):
    job_id = make_job_in(db, JobState.QUEUED)
    with pytest.raises(ValueError):
        jobs.transition(db, job_id, JobState.HELD, name="renamed")
    assert jobs.get(db, job_id).state == JobState.QUEUED
