"""TUI responsiveness: time to first paint and time per keystroke of the wizard, the queue and a
dashboard, each as a ratio to a bare Textual app with one Input measured in the same run (the floor).

The wizard's first paint is from the `n` key on the queue until step 1 is shown and takes keys: the
key is posted as a terminal's key arrives, and the figure is the median of five opens (the first
open is printed too). The queue's is from start until its table shows jobs; the dashboard's until
its chart shows points (a long run's first read shows what it has so far), and the time until every
metric row was read is printed too. Screens are watched every millisecond without forcing updates.

The queue holds 10,000 jobs and the dashboard's job 1,000,000 metric rows (``--quick``: 1,000 and
50,000), built through `tunequeue.jobqueue` in a temporary home. Everything runs headless with
`App.run_test`; a keystroke is timed from `Pilot.press` until the app is idle again.

    python benchmarks/tui_bench.py [--quick] [--keys 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SIZE = (80, 24)
TASK = "task_name: {name}\nmodel_name_or_path: tunequeue/tiny-llama\ndataset: demo_alpaca\n"


def build_home(jobs_count: int, metric_rows: int) -> int:
    """Fill the current home's queue; return the id of the running job holding the metric rows."""
    from tunequeue.jobqueue import jobs, metrics
    from tunequeue.jobqueue.db import open_db

    db = open_db()
    try:
        for i in range(jobs_count - 1):
            jobs.submit(db, task_yaml=TASK.format(name=f"job-{i}"), name=f"job-{i}")
        job = jobs.submit(db, task_yaml=TASK.format(name="big-run"), name="big-run")
        jobs.claim(db, job.id, [0], ["GPU-bench-0"])
        jobs.mark_running(db, job.id, os.getpid(), os.getpid(), time.time())
        chunk = 50_000
        for start in range(0, metric_rows, chunk):
            rows = [
                {"current_steps": step + 1, "total_steps": metric_rows, "loss": 2.0 / (1 + step * 1e-4),
                 "lr": 1e-4, "epoch": step / metric_rows, "throughput": 1000.0}
                for step in range(start, min(metric_rows, start + chunk))
            ]
            metrics.add_metrics(db, job.id, 1, rows)
        return job.id
    finally:
        db.conn.close()


async def _until(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    """Wait until `predicate` holds, looking every millisecond.

    It only sleeps between looks: `Pilot.pause` would force a screen update on each look, extra work
    that a person typing into a terminal never causes and that would be counted as the screen's.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the screen never got ready")
        await asyncio.sleep(0.001)


async def _keys(pilot, keys: list[str]) -> float:
    """Mean seconds per key, each key timed until the app is idle again."""
    times = []
    for key in keys:
        start = time.perf_counter()
        await pilot.press(key)
        times.append(time.perf_counter() - start)
    return statistics.mean(times)


async def floor(count: int) -> tuple[float, float]:
    """A bare app with one Input: first paint and seconds per key."""
    from textual.app import App, ComposeResult
    from textual.widgets import Input

    class Bare(App):
        def compose(self) -> ComposeResult:
            yield Input(id="only")

    start = time.perf_counter()
    app = Bare()
    async with app.run_test(size=SIZE) as pilot:
        await _until(lambda: app.focused is not None)
        paint = time.perf_counter() - start
        per_key = await _keys(pilot, ["a"] * count)
    return paint, per_key


async def wizard(count: int, opens: int = 5) -> tuple[list[float], float]:
    """The task wizard opened with n from the queue, until step 1 takes keys: the seconds of each of
    `opens` opens (Esc closes it between them), and the time per key typed into task_name."""
    from textual import events

    from tunequeue.tui.app import make_app
    from tunequeue.tui.screens.wizard import WizardScreen

    app = make_app(lang="en")
    times = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for _ in range(opens):
            start = time.perf_counter()
            # posted as a terminal's key arrives: Pilot.press would also wait until every widget of
            # the new screen is idle, well after it took keys
            app.post_message(events.Key("n", "n"))
            await _until(lambda: isinstance(app.screen, WizardScreen) and app.screen.ready
                         and not app.screen.keys_held and app.focused is not None)
            times.append(time.perf_counter() - start)
            await pilot.press("escape")
            await _until(lambda: not isinstance(app.screen, WizardScreen))
        await pilot.press("n")
        await _until(lambda: isinstance(app.screen, WizardScreen) and not app.screen.keys_held)
        per_key = await _keys(pilot, ["a"] * count)
    return times, per_key


async def queue(count: int) -> tuple[float, float]:
    """The queue screen at start: until its table shows jobs; moving the cursor."""
    from textual.widgets import DataTable

    from tunequeue.tui.app import make_app

    start = time.perf_counter()
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        await _until(lambda: any(t.row_count for t in app.screen.query(DataTable)))
        paint = time.perf_counter() - start
        per_key = await _keys(pilot, ["down", "up"] * (count // 2))
    return paint, per_key


async def dashboard(job_id: int, count: int) -> tuple[float, float, float]:
    """A running job's dashboard opened at start: until its chart shows points (first paint) and
    until every metric row was read; scrolling keys after that."""
    from tunequeue.tui.app import make_app
    from tunequeue.tui.screens.dashboard import DashboardScreen
    from tunequeue.tui.widgets.loss_chart import LossChart

    start = time.perf_counter()
    app = make_app(lang="en", open_job=job_id)
    async with app.run_test(size=SIZE) as pilot:
        await _until(lambda: isinstance(app.screen, DashboardScreen)
                     and bool(app.screen.query_one(LossChart).series.steps))
        paint = time.perf_counter() - start
        await app.workers.wait_for_complete()
        await pilot.pause()
        complete = time.perf_counter() - start
        per_key = await _keys(pilot, ["down", "up"] * (count // 2))
    return paint, per_key, complete


def main(argv: list[str] | None = None) -> int:
    """Build the home, measure, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 jobs and 50,000 metric rows")
    parser.add_argument("--keys", type=int, default=40, help="keystrokes timed per screen")
    args = parser.parse_args(argv)
    jobs_count, metric_rows = (1_000, 50_000) if args.quick else (10_000, 1_000_000)
    os.environ["TUNEQUEUE_HOME"] = tempfile.mkdtemp(prefix="tq-tui-bench-")
    os.environ.setdefault("TUNEQUEUE_SIMULATED_GPUS", "2x24")
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    started = time.perf_counter()
    base_paint, base_key = asyncio.run(floor(args.keys))
    wizard_figures = asyncio.run(wizard(args.keys))
    build_start = time.perf_counter()
    job_id = build_home(jobs_count, metric_rows)
    built = time.perf_counter() - build_start
    queue_figures = asyncio.run(queue(args.keys))
    dash_figures = asyncio.run(dashboard(job_id, args.keys))

    print(f"home: {jobs_count} jobs, {metric_rows} metric rows (built in {built:.1f} s)")
    print(f"floor (bare app, one Input): first paint {base_paint * 1000:.0f} ms, "
          f"{base_key * 1000:.1f} ms per key")
    print(f"{'screen':<12}{'first paint':>14}{'x floor':>9}{'per key':>12}{'x floor':>9}")
    wizard_opens, wizard_key = wizard_figures
    rows = (("wizard", (statistics.median(wizard_opens), wizard_key)), ("queue", queue_figures),
            ("dashboard", dash_figures[:2]))
    for name, (paint, per_key) in rows:
        print(f"{name:<12}{paint * 1000:>11.0f} ms{paint / base_paint:>9.2f}"
              f"{per_key * 1000:>9.1f} ms{per_key / base_key:>9.2f}")
    print(f"wizard: median of {len(wizard_opens)} opens, each in ms: "
          + " ".join(f"{seconds * 1000:.0f}" for seconds in wizard_opens))
    print(f"dashboard: every metric row read after {dash_figures[2] * 1000:.0f} ms")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
