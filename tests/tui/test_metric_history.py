"""The dashboard's metric history on a real SQLite queue: incremental reads give what `get_metrics`
gives, a resumed attempt replaces steps, an eval line merges into its step, a deleted job starts the
history over, and a long run reaches the chart as at most `max_points` bucket means."""

from __future__ import annotations

import random

import pytest

from tunequeue.jobqueue import db as queue_db
from tunequeue.jobqueue import jobs, metrics
from tunequeue.tui.data import load_dashboard
from tunequeue.tui.formatting import ema
from tunequeue.tui.metric_history import _NEW_ROWS_SQL, MetricHistory

KEPT = ("loss", "eval_loss", "lr", "throughput")


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    database = queue_db.open_db()
    yield database
    database.conn.close()


@pytest.fixture
def job(db):
    return jobs.submit(db, task_yaml="stage: sft\n", name="h")


def line(step, total=100, **values):
    """One trainer_log.jsonl object as the training engine writes it."""
    return {
        "current_steps": step,
        "total_steps": total,
        "percentage": round(100 * step / total, 2),
        "epoch": round(step / total, 4),
        "remaining_time": f"0:00:{(total - step) % 60:02d}",
        **values,
    }


def expected_entries(db, job_id):
    """`get_metrics` reduced to what the history keeps for every step."""
    return [
        {"step": row["step"], "attempt": row["attempt"], **{key: row.get(key) for key in KEPT}}
        for row in metrics.get_metrics(db, job_id)
    ]


def expected_last(db, job_id):
    rows = metrics.get_metrics(db, job_id)
    return {key: next((row[key] for row in reversed(rows) if row.get(key) is not None), None) for key in KEPT}


def bucket_means(entries, key, width):
    """Mean step and mean value of `key` per bucket of `width` steps, computed directly."""
    buckets: dict[int, list[tuple[int, float]]] = {}
    for entry in entries:
        if entry[key] is not None:
            buckets.setdefault(entry["step"] // width, []).append((entry["step"], entry[key]))
    groups = [buckets[b] for b in sorted(buckets)]
    steps = [sum(s for s, _ in group) / len(group) for group in groups]
    return steps, [sum(v for _, v in group) / len(group) for group in groups]


def test_resumed_attempt_replaces_the_steps_it_repeats(db, job):
    history = MetricHistory(job.id)
    metrics.add_metrics(db, job.id, 1, [line(s, loss=3.0 - 0.1 * s, lr=1e-4) for s in range(1, 7)])
    first = history.update(db)
    assert first.count == 6 and first.latest["step"] == 6 and first.latest["attempt"] == 1
    # the retry resumed from the step-3 checkpoint: steps 4 and 5 again, step 6 not yet
    metrics.add_metrics(db, job.id, 2, [line(4, loss=0.4), line(5, loss=0.5)])
    summary = history.update(db)
    entries = history.entries()
    assert [(e["step"], e["attempt"]) for e in entries] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 1)]
    assert entries[3]["loss"] == 0.4 and entries[3]["lr"] is None  # attempt 2 logged no lr there
    assert entries == expected_entries(db, job.id)
    assert summary.latest["attempt"] == 1 and summary.latest["step"] == 6
    assert summary.last == expected_last(db, job.id)
    assert summary.last["lr"] == 1e-4  # step 6 of attempt 1 still carries it
    assert summary.chart.steps == [1, 2, 3, 4, 5, 6]
    assert summary.chart.losses == [2.9, 2.8, 2.7, 0.4, 0.5, 3.0 - 0.6]
    # a late line of the older attempt does not take a step back
    metrics.add_metrics(db, job.id, 1, [line(5, loss=9.0)])
    assert history.update(db).chart.losses[4] == 0.5
    metrics.add_metrics(db, job.id, 2, [line(6, loss=0.6, lr=2e-5)])
    summary = history.update(db)
    assert summary.latest["attempt"] == 2 and summary.last["lr"] == 2e-5
    assert history.entries() == expected_entries(db, job.id)


def test_eval_line_merges_into_its_step(db, job):
    history = MetricHistory(job.id)
    metrics.add_metrics(db, job.id, 1, [line(1, loss=2.0, lr=1e-4), line(2, loss=1.8, lr=9e-5)])
    history.update(db)
    metrics.add_metrics(db, job.id, 1, [{"current_steps": 2, "eval_loss": 1.7, "epoch": 0.5}])
    summary = history.update(db)
    assert summary.count == 2
    assert history.entries()[1] == {
        "step": 2, "attempt": 1, "loss": 1.8, "eval_loss": 1.7, "lr": 9e-5, "throughput": None
    }
    latest = summary.latest
    # the newest step's own columns merge the same way: a later non-null value wins, a null keeps
    assert (latest["loss"], latest["eval_loss"], latest["epoch"]) == (1.8, 1.7, 0.5)
    assert latest["total_steps"] == 100
    assert latest["remaining_time"] == "0:00:38"
    assert summary.chart.eval_steps == [2] and summary.chart.eval_losses == [1.7]
    assert summary.chart.smoothed == pytest.approx(ema([2.0, 1.8]))
    assert history.entries() == expected_entries(db, job.id)


def test_rows_over_many_polls_give_what_get_metrics_gives(db, job):
    rng = random.Random(7)
    history = MetricHistory(job.id, max_points=40)
    summaries = []
    step, attempt = 0, 1
    for _poll in range(30):
        batch = []
        for _ in range(rng.randint(0, 12)):
            roll = rng.random()
            if roll < 0.08 and step > 5:
                attempt += 1  # a resumed attempt goes back a few steps
                step -= rng.randint(1, 5)
            elif roll < 0.15 and step > 3:
                # a late line for an earlier step, out of order
                batch.append((attempt, line(rng.randint(1, step), eval_loss=rng.random())))
                continue
            step += rng.choice((1, 1, 2))
            values = {"loss": rng.random() * 3}
            if rng.random() < 0.3:
                values["lr"] = rng.random() * 1e-4
            if rng.random() < 0.2:
                values["throughput"] = rng.random() * 1000
            batch.append((attempt, line(step, **values)))
            if rng.random() < 0.2:
                batch.append((attempt, {"current_steps": step, "eval_loss": rng.random()}))
        for row_attempt, row in batch:
            metrics.add_metrics(db, job.id, row_attempt, [row])
        summaries.append(history.update(db))
    assert attempt > 1 and len(history) > 40  # the run was resumed and outgrew the raw chart
    assert history.entries() == expected_entries(db, job.id)
    summary = summaries[-1]
    assert summary.last == expected_last(db, job.id)
    newest = metrics.get_metrics(db, job.id)[-1]
    for key in ("step", "attempt", "epoch", "remaining_time", "total_steps"):
        assert summary.latest[key] == newest[key], key
    entries = expected_entries(db, job.id)
    width = summary.chart.width
    assert (summary.chart.steps, summary.chart.losses) == tuple(
        pytest.approx(series) for series in bucket_means(entries, "loss", width)
    )
    assert (summary.chart.eval_steps, summary.chart.eval_losses) == tuple(
        pytest.approx(series) for series in bucket_means(entries, "eval_loss", width)
    )
    assert len(summary.chart.steps) <= 40
    assert summary.chart.smoothed == pytest.approx(ema(summary.chart.losses))
    # read at once, the same rows give the same chart
    fresh = MetricHistory(job.id, max_points=40).update(db)
    assert fresh.chart.width == summary.chart.width > 1
    assert fresh.chart.steps == pytest.approx(summary.chart.steps)
    assert fresh.chart.losses == pytest.approx(summary.chart.losses)
    assert fresh.chart.eval_losses == pytest.approx(summary.chart.eval_losses)
    assert fresh.last == summary.last and fresh.latest == summary.latest


def test_long_run_reaches_the_chart_as_bucket_means(db, job):
    rows = [line(s, total=5000, loss=5.0 / s, lr=1e-4) for s in range(1, 5001)]
    rows += [{"current_steps": s, "eval_loss": 1.0 / s} for s in range(500, 5001, 500)]
    metrics.add_metrics(db, job.id, 1, rows)
    history = MetricHistory(job.id, max_points=100)
    summary = history.update(db)
    chart = summary.chart
    width = chart.width
    assert width == 64  # 5000 steps in at most 100 buckets of a power-of-two width
    assert len(chart.steps) <= 100 and len(chart.losses) == len(chart.steps) == len(chart.smoothed)
    buckets: dict[int, list[int]] = {}
    for s in range(1, 5001):
        buckets.setdefault(s // width, []).append(s)
    means = [buckets[b] for b in sorted(buckets)]
    assert chart.steps == pytest.approx([sum(group) / len(group) for group in means])
    assert chart.losses == pytest.approx([sum(5.0 / s for s in group) / len(group) for group in means])
    assert chart.smoothed == pytest.approx(ema(chart.losses))
    # the eval points are one per bucket here: their own steps and values
    assert chart.eval_steps == pytest.approx(list(range(500, 5001, 500)))
    assert chart.eval_losses == pytest.approx([1.0 / s for s in range(500, 5001, 500)])
    assert summary.last["loss"] == 5.0 / 5000 and summary.latest["step"] == 5000
    # nothing new: the very same series comes back, so the chart is not redrawn
    assert history.update(db).chart is chart


def test_deleted_job_or_vanished_rows_start_the_history_over(db, job):
    metrics.add_metrics(db, job.id, 1, [line(s, loss=1.0) for s in range(1, 4)])
    history = MetricHistory(job.id)
    data = load_dashboard(db, job.id, 0, 0.0, history)
    assert data.metrics.count == 3 and history.last_seq > 0
    # rows removed behind the history's back (here by hand): the next read starts over
    with queue_db.write_txn(db) as conn:
        conn.execute("DELETE FROM metrics WHERE job_id = ?", (job.id,))
    metrics.add_metrics(db, job.id, 1, [line(7, loss=0.7)])
    summary = history.update(db)
    assert summary.count == 1 and history.entries() == expected_entries(db, job.id)
    jobs.delete(db, job.id)
    data = load_dashboard(db, job.id, 0, 0.0, history)
    assert data.job is None and data.metrics.count == 0 and data.metrics.latest is None
    assert len(history) == 0 and history.last_seq == 0
    assert history.update(db).chart.steps == []


def test_new_rows_are_found_through_the_job_seq_index(db):
    plan = " ".join(str(row) for row in db.conn.execute("EXPLAIN QUERY PLAN " + _NEW_ROWS_SQL, (1, 0)))
    assert "metrics_job_seq" in plan and "TEMP B-TREE" not in plan


def test_a_long_first_read_shows_what_it_has_so_far(db, job, monkeypatch):
    """A first read of many rows hands out growing summaries, then the whole one; the log lines read
    with it reach the screen once."""
    from tunequeue.tui import metric_history

    monkeypatch.setattr(metric_history, "FETCH_ROWS", 100)
    metrics.add_metrics(db, job.id, 1, [line(s, total=1000, loss=1.0) for s in range(1, 1001)])
    run_dir = jobs.get(db, job.id).run_dir
    from pathlib import Path

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / "train.log").write_text("first line\nsecond line\n")
    shown = []

    def publish(data):
        shown.append(data)

    history = MetricHistory(job.id)
    monkeypatch.setattr(metric_history, "PROGRESS_SECONDS", 0.0)
    final = load_dashboard(db, job.id, 0, 0.0, history, publish)
    progress = [data.metrics.latest["step"] for data in shown]
    assert progress and progress == sorted(progress) and progress[0] < 1000
    assert final.metrics.latest["step"] == 1000
    lines = [line for data in [*shown, final] for line in data.log.lines]
    assert lines == ["first line", "second line"]
    assert final.log.offset == len("first line\nsecond line\n")
    # a later read with nothing new hands out nothing along the way
    shown.clear()
    load_dashboard(db, job.id, final.log.offset, 0.0, history, publish)
    assert shown == []
