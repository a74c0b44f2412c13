"""Submit, claim, finish, cancel, retry, delete, hold/release, priority and dependencies on a real queue."""

from __future__ import annotations

import signal

import pytest

from tunequeue.core.errors import UserError
from tunequeue.jobqueue import db as queue_db
from tunequeue.jobqueue import jobs
from tunequeue.jobqueue.jobs import InvalidTransition, JobState


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def db(home):
    return queue_db.open_db()


def submit(db, name="job", **options):
    return jobs.submit(db, task_yaml="stage: sft\nlearning_rate: 1.0e-4\n", name=name, **options)


def start(db, job_id, gpus=(0,)):
    jobs.claim(db, job_id, list(gpus), [f"GPU-{g}" for g in gpus])
    return jobs.mark_running(db, job_id, pid=4321, pgid=4321, proc_start_time=100.0)


def test_open_db_configures_connection_and_schema(home):
    db = queue_db.open_db()
    assert (home / "queue.db").exists()
    conn = db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == queue_db.BUSY_TIMEOUT_MS
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert queue_db.schema_version(db) == queue_db.SCHEMA_VERSION
    assert {"jobs", "job_events", "metrics", "gpu_samples", "ingest_offsets", "schema_version"} <= set(
        db.table_names()
    )
    # Opening again applies nothing twice.
    again = queue_db.open_db()
    assert again.conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == queue_db.SCHEMA_VERSION


def test_newer_schema_is_refused(home):
    db = queue_db.open_db()
    with queue_db.write_txn(db) as conn:
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)")
    with pytest.raises(UserError, match="schema version 99"):
        queue_db.open_db()


def test_write_txn_rolls_back_on_error(db):
    job = submit(db)
    with pytest.raises(RuntimeError), queue_db.write_txn(db) as conn:
        conn.execute("UPDATE jobs SET name = 'changed' WHERE id = ?", (job.id,))
        raise RuntimeError("boom")
    assert jobs.get(db, job.id).name == "job"


def test_submit_fills_the_row_and_writes_no_files(db, home):
    job = submit(db, name="llama-lora", gpus=2, priority=5, preset_ref="team/lora", group_id="g1")
    assert job.state == JobState.QUEUED
    assert (job.requested_gpus, job.priority, job.attempt) == (2, 5, 1)
    assert job.run_dir == str(home / "runs" / f"{job.id}-llama-lora")
    assert not (home / "runs" / f"{job.id}-llama-lora").exists()
    assert (job.preset_ref, job.group_id) == ("team/lora", "g1")
    assert job.submitted_at > 0 and job.started_at is None
    assert [e["to_state"] for e in jobs.events(db, job.id)] == ["queued"]
    assert jobs.get(db, job.id) == job


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "bad name"}, "job name"),
        ({"name": ""}, "job name"),
        ({"kind": "dance"}, "job kind"),
        ({"gpus": -1}, "negative"),
        ({"vram_gib": 0}, "positive"),
        ({"allow_share": True}, "--vram"),
        ({"after": [999]}, "no job 999"),
    ],
)
def test_submit_rejects_bad_input_with_one_sentence(db, options, message):
    options = {"name": "ok", **options}
    with pytest.raises(UserError, match=message):
        jobs.submit(db, task_yaml="stage: sft\n", **options)
    assert jobs.list_jobs(db) == []


def test_get_missing_job(db):
    with pytest.raises(UserError, match=r"no job 12; `tunequeue ls` lists job ids"):
        jobs.get(db, 12)


def test_claim_happens_once(db):
    job = submit(db)
    claimed = jobs.claim(db, job.id, [1, 3], ["GPU-a", "GPU-b"])
    assert claimed.state == JobState.STARTING
    assert (claimed.assigned_gpus, claimed.gpu_uuids) == ([1, 3], ["GPU-a", "GPU-b"])
    assert claimed.started_at is not None
    assert jobs.claim(db, job.id, [0], ["GPU-c"]) is None
    assert jobs.get(db, job.id).assigned_gpus == [1, 3]


def test_finish_outcomes(db):
    ok = start(db, submit(db).id)
    assert jobs.finish(db, ok.id, exit_code=0).state == JobState.SUCCEEDED

    bad = start(db, submit(db).id)
    failed = jobs.finish(db, bad.id, exit_code=1)
    assert (failed.state, failed.exit_code, failed.reason) == (JobState.FAILED, 1, "exit code 1")
    assert failed.finished_at is not None

    oom = start(db, submit(db).id)
    assert jobs.finish(db, oom.id, exit_code=1, reason="out of memory").reason == "out of memory"

    killed = start(db, submit(db).id)
    result = jobs.finish(db, killed.id, exit_code=None, signal=signal.SIGKILL)
    assert (result.state, result.signal, result.reason) == (JobState.FAILED, 9, "killed by SIGKILL")

    stopped = start(db, submit(db).id)
    assert jobs.finish(db, stopped.id, exit_code=3).state == JobState.CANCELLED


def test_finish_is_recorded_once(db):
    job = start(db, submit(db).id)
    jobs.finish(db, job.id, exit_code=0)
    with pytest.raises(InvalidTransition):
        jobs.finish(db, job.id, exit_code=1)
    assert jobs.get(db, job.id).state == JobState.SUCCEEDED
    assert [e["to_state"] for e in jobs.events(db, job.id)].count("succeeded") == 1


def test_cancel_waiting_jobs_at_once_and_active_ones_via_cancelling(db):
    queued = submit(db)
    assert jobs.request_cancel(db, queued.id).state == JobState.CANCELLED
    held = submit(db, hold=True)
    assert jobs.request_cancel(db, held.id).state == JobState.CANCELLED

    starting = submit(db)
    jobs.claim(db, starting.id, [0], ["GPU-0"])
    assert jobs.request_cancel(db, starting.id).state == JobState.CANCELLING
    # A launch that races the cancel is refused; the runner then kills it and records the end.
    with pytest.raises(InvalidTransition):
        jobs.mark_running(db, starting.id, 1, 1, 1.0)
    assert jobs.finish(db, starting.id, exit_code=None, signal=15).state == JobState.CANCELLED

    running = start(db, submit(db).id)
    assert jobs.request_cancel(db, running.id).state == JobState.CANCELLING
    assert jobs.request_cancel(db, running.id).state == JobState.CANCELLING  # twice is harmless
    finished = jobs.finish(db, running.id, exit_code=-15)
    assert (finished.state, finished.reason) == (JobState.CANCELLED, "cancelled")

    done = start(db, submit(db).id)
    jobs.finish(db, done.id, exit_code=0)
    expected = "only queued, held, starting or running jobs can be cancelled"
    with pytest.raises(InvalidTransition, match=expected):
        jobs.request_cancel(db, done.id)


def test_retry_starts_a_new_attempt_in_the_same_run_dir(db):
    job = start(db, submit(db).id)
    jobs.finish(db, job.id, exit_code=1)
    retried = jobs.retry(db, job.id)
    assert (retried.state, retried.attempt, retried.reason) == (JobState.QUEUED, 2, "retry")
    assert (retried.pid, retried.exit_code, retried.finished_at) == (None, None, None)
    assert retried.assigned_gpus == []
    assert retried.run_dir == job.run_dir
    start(db, job.id)
    assert jobs.events(db, job.id)[-1]["attempt"] == 2

    cancelled = submit(db, name="cancelled")
    jobs.request_cancel(db, cancelled.id)
    assert jobs.retry(db, cancelled.id).state == JobState.QUEUED

    running = start(db, submit(db, name="running").id)
    with pytest.raises(InvalidTransition, match="only failed or cancelled jobs can be retried"):
        jobs.retry(db, running.id)


def test_requeue_after_oom_keeps_dependents_and_turns_sharing_off(db):
    job = start(db, submit(db, vram_gib=10, allow_share=True).id)
    dependent = submit(db, name="dependent", after=[job.id])
    again = jobs.requeue(db, job.id, reason="CUDA out of memory while sharing GPU 0; queued again")
    assert (again.state, again.attempt, again.allow_share) == (JobState.QUEUED, 2, False)
    assert (again.pid, again.assigned_gpus, again.started_at) == (None, [], None)
    last = jobs.events(db, job.id)[-1]
    assert (last["from_state"], last["to_state"], last["attempt"]) == ("running", "queued", 2)
    assert last["reason"] == "CUDA out of memory while sharing GPU 0; queued again"
    assert jobs.get(db, dependent.id).state == JobState.QUEUED
    with pytest.raises(InvalidTransition, match="only running jobs can be queued again"):
        jobs.requeue(db, job.id, reason="twice")


def test_delete_removes_row_history_and_run_dir(db, home):
    from tunequeue.jobqueue import metrics

    job = start(db, submit(db, name="gone").id)
    run_dir = home / "runs" / f"{job.id}-gone"
    (run_dir / "checkpoint-2").mkdir(parents=True)
    (run_dir / "train.log").write_text("log\n")
    metrics.add_metrics(db, job.id, 1, [{"current_steps": 1, "loss": 1.0}])
    with pytest.raises(InvalidTransition, match=f"cancel it first \\(`tunequeue cancel {job.id}`\\)"):
        jobs.delete(db, job.id)
    assert run_dir.exists()

    jobs.finish(db, job.id, exit_code=0)
    jobs.delete(db, job.id)
    assert not run_dir.exists()
    with pytest.raises(UserError):
        jobs.get(db, job.id)
    for table in ("job_events", "metrics"):
        assert db.conn.execute(f"SELECT count(*) FROM {table} WHERE job_id = ?", (job.id,)).fetchone()[0] == 0


def test_delete_keep_files_and_ids_are_never_reused(db, home):
    job = submit(db, name="kept")
    run_dir = home / "runs" / f"{job.id}-kept"
    run_dir.mkdir(parents=True)
    jobs.delete(db, job.id, keep_files=True)
    assert run_dir.exists()
    assert submit(db).id == job.id + 1


def test_delete_never_removes_a_directory_that_is_not_the_jobs_run_dir(db, tmp_path):
    job = submit(db)
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    with queue_db.write_txn(db) as conn:
        conn.execute("UPDATE jobs SET run_dir = ? WHERE id = ?", (str(elsewhere), job.id))
    jobs.delete(db, job.id)
    assert elsewhere.exists()


def test_hold_and_release(db):
    job = submit(db)
    held = jobs.hold(db, job.id)
    assert (held.state, held.reason) == (JobState.HELD, "Held")
    assert jobs.claim(db, job.id, [0], ["GPU-0"]) is None
    assert jobs.release(db, job.id).state == JobState.QUEUED
    assert submit(db, name="held", hold=True).state == JobState.HELD


def test_priority_changes_scheduling_order_without_an_event(db):
    first, second = submit(db, name="a"), submit(db, name="b")
    assert [j.id for j in jobs.list_jobs(db, order="priority")] == [first.id, second.id]
    events_before = jobs.events(db, second.id)
    assert jobs.set_priority(db, second.id, 10).priority == 10
    assert [j.id for j in jobs.list_jobs(db, order="priority")] == [second.id, first.id]
    assert jobs.events(db, second.id) == events_before
    running = start(db, first.id)
    with pytest.raises(InvalidTransition, match="only queued or held jobs can change priority"):
        jobs.set_priority(db, running.id, 1)


def test_wait_reasons_only_touch_queued_jobs(db):
    queued, running = submit(db, name="queued"), start(db, submit(db, name="running").id)
    jobs.set_wait_reason(db, queued.id, "Resources (needs 2 GPUs, 1 free)")
    jobs.set_wait_reasons(db, {running.id: "Priority"})
    assert jobs.get(db, queued.id).reason == "Resources (needs 2 GPUs, 1 free)"
    assert jobs.get(db, running.id).reason == "launched"
    assert len(jobs.events(db, queued.id)) == 1


def test_list_jobs_filters_orders_and_limits(db):
    ids = [submit(db, name=f"j{i}", priority=i % 3).id for i in range(6)]
    start(db, ids[0])
    assert [j.id for j in jobs.list_jobs(db)] == ids
    assert [j.id for j in jobs.list_jobs(db, order="-id", limit=2)] == ids[:-3:-1]
    assert [j.id for j in jobs.list_jobs(db, states=["running"])] == [ids[0]]
    assert len(jobs.list_jobs(db, states=[JobState.QUEUED, JobState.HELD])) == 5
    assert jobs.list_jobs(db, states=[]) == []
    assert [j.priority for j in jobs.list_jobs(db, order="priority")] == [2, 2, 1, 1, 0, 0]
    assert jobs.counts_by_state(db)["queued"] == 5
    with pytest.raises(UserError, match="unknown order"):
        jobs.list_jobs(db, order="random")


def test_dependencies_wait_then_become_ready(db):
    first = submit(db, name="first")
    second = submit(db, name="second", after=[first.id])
    assert second.after == [first.id]
    assert jobs.dependency_status(db, second) == ("waiting", f"Dependency (job {first.id})")
    start(db, first.id)
    jobs.finish(db, first.id, exit_code=0)
    assert jobs.dependency_status(db, second) == ("ready", "")
    assert jobs.dependency_status(db, first) == ("ready", "")


def test_dependents_of_a_failed_job_are_cancelled_with_a_reason(db):
    first = submit(db, name="first")
    second = submit(db, name="second", after=[first.id])
    third = submit(db, name="third", after=[second.id], hold=True)
    unrelated = submit(db, name="unrelated")
    start(db, first.id)
    jobs.finish(db, first.id, exit_code=1)
    second_now, third_now = jobs.get(db, second.id), jobs.get(db, third.id)
    assert (second_now.state, second_now.reason) == (
        JobState.CANCELLED,
        f"dependency never satisfied (job {first.id} failed)",
    )
    assert (third_now.state, third_now.reason) == (
        JobState.CANCELLED,
        f"dependency never satisfied (job {second.id} was cancelled)",
    )
    assert jobs.events(db, third.id)[-1]["from_state"] == "held"
    assert jobs.get(db, unrelated.id).state == JobState.QUEUED


def test_dependency_status_reports_failed_and_deleted_dependencies(db):
    first = submit(db, name="first")
    waiting = submit(db, name="waiting", after=[first.id])
    # Submitting after a job that already failed: the scheduler is told the dependency failed.
    start(db, first.id)
    jobs.finish(db, first.id, exit_code=2)
    late = submit(db, name="late", after=[first.id])
    reason = f"dependency never satisfied (job {first.id} failed)"
    assert jobs.dependency_status(db, late) == ("failed", reason)
    assert jobs.get(db, waiting.id).state == JobState.CANCELLED
    gone = submit(db, name="gone")
    orphan = submit(db, name="orphan", after=[gone.id])
    jobs.delete(db, gone.id)
    assert jobs.dependency_status(db, orphan)[0] == "failed"
    assert "was deleted" in jobs.dependency_status(db, orphan)[1]
    statuses = jobs.dependency_statuses(db, [late, orphan])
    assert set(statuses) == {late.id, orphan.id}


def test_job_to_dict_is_json_ready(db):
    import json

    job = submit(db, after=[])
    data = job.to_dict()
    assert data["state"] == "queued"
    assert json.loads(json.dumps(data))["name"] == "job"


def test_a_second_connection_sees_committed_writes_only(db, home):
    other = queue_db.open_db()
    job = submit(db)
    assert jobs.get(other, job.id).state == JobState.QUEUED
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        # busy_timeout applies: a second writer waits, then gives up with one line saying it is locked.
        other.conn.execute("PRAGMA busy_timeout = 100")
        other.lock_wait_seconds = 0.0
        with pytest.raises(queue_db.QueueLocked, match="locked"):
            jobs.hold(other, job.id)
    finally:
        db.conn.execute("ROLLBACK")
    assert jobs.hold(other, job.id).state == JobState.HELD


def _open_and_submit(db_path, home, results):
    import os

    os.environ["TUNEQUEUE_HOME"] = home
    db = queue_db.open_db(db_path)
    results.put(jobs.submit(db, task_yaml="stage: sft\n", name=f"racer-{os.getpid()}").id)


def test_processes_creating_the_database_at_once_migrate_it_once(tmp_path, home):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    db_path = tmp_path / "fresh.db"
    racers = [context.Process(target=_open_and_submit, args=(db_path, str(home), results)) for _ in range(6)]
    for racer in racers:
        racer.start()
    ids = sorted(results.get(timeout=60) for _ in racers)
    for racer in racers:
        racer.join(timeout=30)
        assert racer.exitcode == 0
    assert ids == list(range(1, 7))
    db = queue_db.open_db(db_path)
    assert db.conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == queue_db.SCHEMA_VERSION


def test_a_lost_process_is_described(db):
    job = start(db, submit(db).id)
    assert jobs.finish(db, job.id, exit_code=None).reason == "process lost (no exit status was recorded)"


def test_update_task_of_a_waiting_job(db, home):
    job = submit(db, name="draft")
    updated = jobs.update_task(db, job.id, "stage: sft\nlearning_rate: 5.0e-5\n", name="final", gpus=2)
    assert (updated.name, updated.requested_gpus) == ("final", 2)
    assert "5.0e-5" in updated.task_yaml
    assert updated.run_dir == str(home / "runs" / f"{job.id}-final")
    assert len(jobs.events(db, job.id)) == 1
    with pytest.raises(UserError, match="job name"):
        jobs.update_task(db, job.id, "stage: sft\n", name="no spaces")
    running = start(db, job.id)
    with pytest.raises(InvalidTransition, match="only queued or held jobs can be edited"):
        jobs.update_task(db, running.id, "stage: pt\n")
    assert jobs.get(db, job.id).task_yaml == updated.task_yaml


def test_update_task_keeps_an_existing_run_dir(db, home):
    job = start(db, submit(db, name="first").id)
    jobs.finish(db, job.id, exit_code=1)
    (home / "runs" / f"{job.id}-first").mkdir(parents=True)
    jobs.retry(db, job.id)
    renamed = jobs.update_task(db, job.id, job.task_yaml, name="second")
    assert renamed.name == "second" and renamed.run_dir == job.run_dir


def test_a_name_is_unique_among_waiting_and_active_jobs_of_its_namespace(db):
    queued = submit(db, name="same")
    refusal = f"job {queued.id} \\(queued\\) already has task_name 'same'.*pick another task_name"
    with pytest.raises(UserError, match=refusal):
        submit(db, name="same")
    jobs.hold(db, queued.id)
    with pytest.raises(UserError, match="\\(held\\)"):
        submit(db, name="same")
    jobs.release(db, queued.id)
    start(db, queued.id)
    with pytest.raises(UserError, match="\\(running\\)"):
        submit(db, name="same", hold=True)
    other_namespace = submit(db, name="same", namespace="team-b")
    assert other_namespace.namespace == "team-b"
    assert len(jobs.list_jobs(db)) == 2

    jobs.finish(db, queued.id, exit_code=0)
    rerun = submit(db, name="same")
    assert rerun.run_dir != queued.run_dir


def test_edit_and_retry_respect_name_uniqueness(db):
    edited = submit(db, name="edited")
    taken = submit(db, name="taken")
    assert jobs.update_task(db, edited.id, "stage: pt\n", name="edited").name == "edited"
    with pytest.raises(UserError, match=f"job {taken.id} \\(queued\\) already has task_name 'taken'"):
        jobs.update_task(db, edited.id, "stage: pt\n", name="taken")
    moved = jobs.update_task(db, edited.id, "stage: pt\n", name="taken", namespace="team-b")
    assert (moved.namespace, moved.name) == ("team-b", "taken")

    failed = start(db, submit(db, name="flaky").id)
    jobs.finish(db, failed.id, exit_code=1)
    again = submit(db, name="flaky")
    with pytest.raises(UserError, match=f"job {again.id} \\(queued\\) already has task_name 'flaky'"):
        jobs.retry(db, failed.id)
    jobs.request_cancel(db, again.id)
    assert jobs.retry(db, failed.id).state == JobState.QUEUED
