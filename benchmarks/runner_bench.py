"""Runner-level benchmark: submit→start latency through the runner daemon.

Starts a real detached runner in a temporary home (simulated GPUs, a training command that exits at
once) and submits jobs one by one the way `tunequeue submit` does (insert, then SIGUSR1 to wake the
runner). Reports the time from submit until the job was claimed (started_at) and until its process
was recorded as running, with the default tick interval (the wake-up makes the tick interval matter
only when the signal is missed).

    python benchmarks/runner_bench.py [--jobs 50] [--tick 2.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--tick", type=float, default=2.0)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="tunequeue-runner-bench-")
    os.environ.update(
        TUNEQUEUE_HOME=home,
        TUNEQUEUE_SIMULATED_GPUS="8x80",
        TUNEQUEUE_TICK_SECONDS=str(args.tick),
        TUNEQUEUE_TRAIN_COMMAND=f"{sys.executable} -c pass",
    )
    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db
    from tunequeue.runner import daemon

    db = open_db()
    daemon.start_detached()
    try:
        claim_latency, run_latency = [], []
        task = "task_name: bench\nmodel_name_or_path: tunequeue/tiny-llama\ndataset: demo_alpaca\n"
        for _ in range(args.jobs):
            job = jobs.submit(db, task_yaml=task, name="bench", gpus=1)
            daemon.wake_runner()
            while True:
                current = jobs.get(db, job.id)
                if current.pid is not None or current.is_final:
                    break
                time.sleep(0.002)
            events = {e["to_state"]: e["time"] for e in jobs.events(db, job.id)}
            claim_latency.append(events["starting"] - current.submitted_at)
            run_latency.append(events["running"] - current.submitted_at)
        print(f"runner submit→start latency over {args.jobs} jobs (tick {args.tick:g} s, woken by submit):")
        for label, values in (("claimed (starting)", claim_latency), ("process running", run_latency)):
            print(
                f"  {label:<20} median {statistics.median(values) * 1000:7.1f} ms   "
                f"p95 {_percentile(values, 0.95) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"
            )
        deadline = time.time() + 60
        while jobs.list_jobs(db, states=list(jobs.ACTIVE_STATES)) and time.time() < deadline:
            time.sleep(0.05)
        counts = jobs.counts_by_state(db)
        succeeded, failed = counts.get("succeeded", 0), counts.get("failed", 0)
        print(f"  all jobs finished: {succeeded} succeeded, {failed} failed")
    finally:
        daemon.stop_runner()
        subprocess.run(["rm", "-rf", home], check=False)


if __name__ == "__main__":
    main()
