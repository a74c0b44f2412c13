"""Queue-level benchmark: submit→claim latency, listing 10,000 jobs, metric ingest rate.

These are figures of the SQLite queue alone (tunequeue.jobqueue), measured in a temporary home;
the latency through the runner daemon (tick interval, launching a process) is measured separately.

    python benchmarks/queue_bench.py [--jobs 10000] [--latency-jobs 200] [--metric-rows 20000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _claim_loop(db_path: str, home: str, expected: int) -> None:
    """Claim queued jobs as soon as they appear, like a runner tick with no sleep (1 ms polling)."""
    os.environ["TUNEQUEUE_HOME"] = home
    from tunequeue.jobqueue import db as queue_db
    from tunequeue.jobqueue import jobs

    db = queue_db.open_db(Path(db_path))
    claimed = 0
    deadline = time.monotonic() + 300
    while claimed < expected and time.monotonic() < deadline:
        queued = jobs.list_jobs(db, states=[jobs.JobState.QUEUED], order="priority", limit=8)
        for job in queued:
            if jobs.claim(db, job.id, [0], ["GPU-bench"]) is not None:
                claimed += 1
        if not queued:
            time.sleep(0.001)


def bench_submit_to_claim(db_path: Path, home: Path, count: int) -> dict[str, float]:
    """Submit ``count`` jobs one by one (10 ms apart) while another process claims them."""
    from tunequeue.jobqueue import db as queue_db
    from tunequeue.jobqueue import jobs

    db = queue_db.open_db(db_path)
    claimer = multiprocessing.get_context("fork").Process(
        target=_claim_loop, args=(str(db_path), str(home), count)
    )
    claimer.start()
    submit_times = []
    ids = []
    for i in range(count):
        started = time.perf_counter()
        ids.append(jobs.submit(db, task_yaml="stage: sft\n", name=f"latency-{i}", gpus=1).id)
        submit_times.append(time.perf_counter() - started)
        time.sleep(0.01)
    claimer.join(timeout=300)
    latencies = []
    for job_id in ids:
        job = jobs.get(db, job_id)
        claim_event = [e for e in jobs.events(db, job_id) if e["to_state"] == "starting"]
        if claim_event:
            latencies.append(claim_event[0]["time"] - job.submitted_at)
    return {
        "jobs": count,
        "claimed": len(latencies),
        "submit_ms_median": 1000 * statistics.median(submit_times),
        "submit_to_claim_ms_median": 1000 * statistics.median(latencies),
        "submit_to_claim_ms_p95": 1000 * _percentile(latencies, 0.95),
        "submit_to_claim_ms_max": 1000 * max(latencies),
    }


def _timed(function, repeat: int = 5) -> float:
    """Best wall time of ``repeat`` calls, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return 1000 * best


def bench_list(db_path: Path, count: int) -> dict[str, float]:
    """Fill the queue with ``count`` jobs in mixed states and time what `tunequeue ls` and the TUI ask."""
    from tunequeue.jobqueue import db as queue_db
    from tunequeue.jobqueue import jobs, metrics

    db = queue_db.open_db(db_path)
    started = time.perf_counter()
    for i in range(count):
        job = jobs.submit(db, task_yaml="stage: sft\nlearning_rate: 1.0e-4\n", name=f"ls-{i}", priority=i % 5)
        if i % 4 == 0:
            jobs.claim(db, job.id, [0], ["GPU-bench"])
            jobs.mark_running(db, job.id, 1000 + i, 1000 + i, 1.0)
            if i % 8 == 0:
                jobs.finish(db, job.id, exit_code=0)
            else:
                metrics.add_metrics(db, job.id, 1, [{"current_steps": 5, "total_steps": 10, "loss": 1.0}])
    fill_seconds = time.perf_counter() - started
    newest = [job.id for job in jobs.list_jobs(db, order="-id", limit=50)]
    return {
        "jobs": count,
        "submit_rate_jobs_per_s": count / fill_seconds,
        "list_all_ms": _timed(lambda: jobs.list_jobs(db)),
        "list_queued_by_priority_ms": _timed(lambda: jobs.list_jobs(db, states=["queued"], order="priority")),
        "list_newest_50_ms": _timed(lambda: jobs.list_jobs(db, order="-id", limit=50)),
        "list_running_ms": _timed(lambda: jobs.list_jobs(db, states=["running"])),
        "counts_by_state_ms": _timed(lambda: jobs.counts_by_state(db)),
        "latest_metrics_50_jobs_ms": _timed(lambda: metrics.latest_metrics(db, newest)),
    }


def bench_ingest(db_path: Path, rows: int, batch: int = 50) -> dict[str, float]:
    """Store ``rows`` trainer_log.jsonl objects in batches (with the offset), then GPU samples."""
    from tunequeue.jobqueue import db as queue_db
    from tunequeue.jobqueue import jobs, metrics

    db = queue_db.open_db(db_path)
    job = jobs.submit(db, task_yaml="stage: sft\n", name="ingest")
    lines = [
        {
            "current_steps": step,
            "total_steps": rows,
            "loss": 2.0 / (1 + step),
            "lr": 1e-4,
            "epoch": step / rows,
            "percentage": 100 * step / rows,
            "elapsed_time": "0:01:00",
            "remaining_time": "0:02:00",
        }
        for step in range(1, rows + 1)
    ]
    started = time.perf_counter()
    offset = 0
    for first in range(0, rows, batch):
        offset += 200 * batch
        metrics.ingest_rows(db, job.id, 1, lines[first : first + batch], offset)
    ingest_seconds = time.perf_counter() - started
    read_ms = _timed(lambda: metrics.get_metrics(db, job.id), repeat=3)

    samples = [
        {
            "time": 1000.0 + i,
            "uuid": f"GPU-{i % 8}",
            "gpu_index": i % 8,
            "utilization": 50.0,
            "memory_used_mib": 1000.0,
            "memory_total_mib": 81920.0,
            "temperature": 60.0,
            "power_w": 300.0,
            "job_id": job.id,
            "simulated": True,
        }
        for i in range(rows)
    ]
    started = time.perf_counter()
    for first in range(0, rows, 8):
        metrics.add_gpu_samples(db, samples[first : first + 8])
    sample_seconds = time.perf_counter() - started
    return {
        "metric_rows": rows,
        "batch_rows": batch,
        "metric_ingest_rows_per_s": rows / ingest_seconds,
        "get_metrics_all_rows_ms": read_ms,
        "gpu_sample_rows_per_s_in_batches_of_8": rows / sample_seconds,
    }


def _print(title: str, figures: dict[str, float]) -> None:
    print(title)
    for key, value in figures.items():
        shown = f"{value:,.0f}" if isinstance(value, int) or value >= 100 else f"{value:.2f}"
        print(f"  {key:<40} {shown}")


def main() -> None:
    """Run the three queue benchmarks in a temporary home and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs", type=int, default=10_000, help="jobs in the queue for the listing benchmark"
    )
    parser.add_argument("--latency-jobs", type=int, default=200, help="jobs for the submit→claim latency")
    parser.add_argument("--metric-rows", type=int, default=20_000, help="trainer_log rows to ingest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tunequeue-bench-") as tmp:
        home = Path(tmp)
        os.environ["TUNEQUEUE_HOME"] = str(home)
        import sqlite3

        print(f"queue-level benchmark (SQLite {sqlite3.sqlite_version}, WAL, synchronous=NORMAL) in {home}")
        _print(
            "submit→claim latency (queue level: one claiming process polling every 1 ms, no runner)",
            bench_submit_to_claim(home / "latency.db", home, args.latency_jobs),
        )
        _print(f"listing with {args.jobs:,} jobs", bench_list(home / "list.db", args.jobs))
        _print("ingest", bench_ingest(home / "ingest.db", args.metric_rows))


if __name__ == "__main__":
    main()
