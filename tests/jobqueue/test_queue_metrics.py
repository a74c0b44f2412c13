"""Metric rows, the queue table's progress summary, GPU samples with retention, ingest offsets."""

from __future__ import annotations

import pytest

from tunequeue.jobqueue import db as queue_db
from tunequeue.jobqueue import jobs, metrics


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    return queue_db.open_db()


@pytest.fixture
def job(db):
    return jobs.submit(db, task_yaml="stage: sft\n", name="m")


def log_line(step, total=10, **values):
    """One trainer_log.jsonl object as the training engine writes it."""
    return {
        "current_steps": step,
        "total_steps": total,
        "percentage": round(100 * step / total, 2),
        "elapsed_time": f"0:00:{step:02d}",
        "remaining_time": f"0:00:{total - step:02d}",
        **values,
    }


def test_metrics_round_trip_in_step_order(db, job):
    stored = metrics.add_metrics(
        db,
        job.id,
        1,
        [log_line(2, loss=1.5, lr=1e-4, epoch=0.2), log_line(1, loss=2.0, lr=1e-4, epoch=0.1)],
    )
    assert stored == 2
    rows = metrics.get_metrics(db, job.id)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["loss"] == 2.0 and rows[0]["lr"] == 1e-4 and rows[0]["attempt"] == 1
    assert rows[1]["elapsed_time"] == "0:00:02"


def test_rows_without_a_step_are_skipped_and_unknown_keys_kept(db, job):
    stored = metrics.add_metrics(db, job.id, 1, [{"loss": 1.0}, log_line(1, loss=1.0, grad_norm=0.5)])
    assert stored == 1
    assert metrics.get_metrics(db, job.id)[0]["grad_norm"] == 0.5
    assert metrics.add_metrics(db, job.id, 1, []) == 0


def test_latest_attempt_wins_and_same_step_rows_merge(db, job):
    metrics.add_metrics(db, job.id, 1, [log_line(s, loss=3.0 - 0.1 * s) for s in range(1, 6)])
    # The retry resumed from the step-3 checkpoint and repeats steps 4 and 5.
    metrics.add_metrics(
        db, job.id, 2, [log_line(4, loss=0.4), log_line(5, loss=0.5), log_line(5, eval_loss=0.9)]
    )
    rows = metrics.get_metrics(db, job.id)
    assert [(r["step"], r["attempt"]) for r in rows] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)]
    assert rows[4]["loss"] == 0.5 and rows[4]["eval_loss"] == 0.9
    assert rows[3]["loss"] == 0.4


def test_latest_metrics_for_the_queue_table(db, job):
    other = jobs.submit(db, task_yaml="stage: sft\n", name="other")
    silent = jobs.submit(db, task_yaml="stage: sft\n", name="silent")
    metrics.add_metrics(
        db,
        job.id,
        1,
        [
            log_line(1, loss=2.0, lr=1e-4),
            log_line(2, loss=1.8, lr=9e-5),
            {"current_steps": 2, "eval_loss": 1.7},
        ],
    )
    metrics.add_metrics(db, other.id, 1, [{"current_steps": 5, "total_steps": 20, "loss": 1.1}])
    metrics.add_metrics(db, other.id, 2, [{"current_steps": 1, "total_steps": 20, "loss": 3.0}])
    latest = metrics.latest_metrics(db, [job.id, other.id, silent.id])
    assert set(latest) == {job.id, other.id}
    first = latest[job.id]
    assert (first["step"], first["total_steps"], first["percentage"]) == (2, 10, 20.0)
    assert (first["loss"], first["eval_loss"], first["lr"]) == (1.8, 1.7, 9e-5)
    assert first["elapsed_time"] == "0:00:02" and first["remaining_time"] == "0:00:08"
    second = latest[other.id]
    assert (second["attempt"], second["step"], second["loss"], second["percentage"]) == (2, 1, 3.0, 5.0)


def test_ingest_rows_moves_the_offset_in_the_same_transaction(db, job):
    assert metrics.get_ingest_offset(db, job.id, 1) == 0
    assert metrics.ingest_rows(db, job.id, 1, [log_line(1, loss=1.0)], offset=120) == 1
    assert metrics.get_ingest_offset(db, job.id, 1) == 120
    metrics.set_ingest_offset(db, job.id, 1, 240)
    assert metrics.get_ingest_offset(db, job.id, 1) == 240
    assert metrics.get_ingest_offset(db, job.id, 2) == 0


def sample(time, uuid="GPU-a", index=0, job_id=None, used=1000.0):
    return {
        "time": time,
        "uuid": uuid,
        "gpu_index": index,
        "utilization": 50.0,
        "memory_used_mib": used,
        "memory_total_mib": 81920.0,
        "temperature": 60.0,
        "power_w": 300.0,
        "job_id": job_id,
        "simulated": True,
    }


def test_gpu_samples_filters_and_retention(db, job):
    stored = metrics.add_gpu_samples(
        db,
        [
            sample(100.0),
            sample(100.0, uuid="GPU-b", index=1, job_id=job.id),
            sample(200.0, job_id=job.id),
            sample(300.0, uuid="GPU-b", index=1),
        ],
    )
    assert stored == 4
    assert [s["time"] for s in metrics.get_gpu_samples(db, uuid="GPU-a")] == [100.0, 200.0]
    assert [s["uuid"] for s in metrics.get_gpu_samples(db, job_id=job.id)] == ["GPU-b", "GPU-a"]
    assert len(metrics.get_gpu_samples(db, since=200.0)) == 2
    first = metrics.get_gpu_samples(db)[0]
    assert first["simulated"] is True and first["memory_total_mib"] == 81920.0

    deleted = metrics.prune_gpu_samples(db, keep_seconds=200.0, now=360.0)
    assert deleted == 2
    assert [s["time"] for s in metrics.get_gpu_samples(db)] == [200.0, 300.0]
    assert metrics.add_gpu_samples(db, []) == 0


def test_deleting_a_job_keeps_gpu_history_without_the_job(db, job):
    metrics.add_gpu_samples(db, [sample(100.0, job_id=job.id)])
    metrics.ingest_rows(db, job.id, 1, [log_line(1, loss=1.0)], offset=10)
    jobs.delete(db, job.id)
    remaining = metrics.get_gpu_samples(db)
    assert len(remaining) == 1 and remaining[0]["job_id"] is None
    assert metrics.get_metrics(db, job.id) == []
    assert metrics.get_ingest_offset(db, job.id, 1) == 0


@pytest.mark.parametrize(
    ("key", "index"), [("loss", "metrics_job_loss"), ("eval_loss", "metrics_job_eval_loss")]
)
def test_the_last_logged_loss_is_found_through_its_own_index(db, job, key, index):
    """A run that never logs an eval loss must not make the queue table walk all its rows each second."""
    metrics.add_metrics(db, job.id, 1, [log_line(step, total=500, loss=1.0) for step in range(1, 501)])
    plan = db.conn.execute(
        f"EXPLAIN QUERY PLAN SELECT {key} FROM metrics WHERE job_id = ? AND attempt = ? "
        f"AND {key} IS NOT NULL ORDER BY seq DESC LIMIT 1",
        (job.id, 1),
    ).fetchall()
    assert any(index in row[-1] for row in plan)
    assert metrics.latest_metrics(db, [job.id])[job.id]["eval_loss"] is None
    assert metrics.latest_metrics(db, [job.id])[job.id]["loss"] == 1.0
