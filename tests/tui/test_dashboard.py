"""Job dashboard fed by a real trainer_log.jsonl: chart, progress, stats, GPU panes and log tail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import ProgressBar
from tq_tui_testkit import FIXED_NOW, TRAIN_LOG, settle, trainer_rows, wait_for_screen, wait_until

from tunequeue.tui.formatting import ema
from tunequeue.tui.screens.dashboard import DashboardScreen
from tunequeue.tui.widgets.gpu_pane import GpuPane
from tunequeue.tui.widgets.log_tail import LogTail
from tunequeue.tui.widgets.loss_chart import LossChart

pytestmark = pytest.mark.anyio


def _text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    by_step: dict[int, float] = {}
    for row in rows:
        if row.get(key) is not None:
            by_step[int(row["current_steps"])] = float(row[key])
    steps = sorted(by_step)
    return steps, [by_step[step] for step in steps]


async def test_finished_job_shows_whole_history_and_result(populated_home, app_factory):
    rows = trainer_rows()
    steps, losses = _series(rows, "loss")
    eval_steps, eval_losses = _series(rows, "eval_loss")
    app = app_factory(open_job=populated_home.succeeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        chart = screen.query_one(LossChart)
        assert chart.series.steps == steps and chart.series.losses == losses
        assert chart.series.smoothed == pytest.approx(ema(losses))
        assert chart.series.eval_steps == eval_steps and chart.series.eval_losses == eval_losses
        bar = screen.query_one(ProgressBar)
        total = rows[-1]["total_steps"]
        assert (bar.total, bar.progress) == (total, total)
        assert f"step {total}/{total}" in _text(screen, "#dash-times")
        assert "elapsed 3:20" in _text(screen, "#dash-times")
        stats = _text(screen, "#dash-stats")
        assert f"loss {losses[-1]:.4g}" in stats
        assert f"eval {eval_losses[-1]:.4g}" in stats
        last_lr = next(row["lr"] for row in reversed(rows) if row.get("lr") is not None)
        assert f"lr {last_lr:.1e}" in stats
        message = _text(screen, "#dash-message")
        assert "Finished. Result:" in message and "1-lora-demo" in message
        pane = screen.query_one(GpuPane)
        assert pane.index == 0 and len(pane.history.samples) == 30
        last = pane.history.samples[-1]
        title, util, mem, temp_power = pane.stat_lines()
        assert title == "GPU 0 simulated" or title.startswith("GPU 0")
        assert util == f"util {last['utilization']:.0f}%"
        assert mem == f"mem {last['memory_used_mib'] / 1024:.1f}/24.0 GiB"
        assert temp_power == f"{last['temperature']:.0f}°C {last['power_w']:.0f} W"
        log = screen.query_one(LogTail)
        last_line = TRAIN_LOG.read_text().rstrip("\n").splitlines()[-1]
        assert log.shown[-1] == last_line


async def test_running_job_shows_progress_eta_and_live_gpu(populated_home, app_factory):
    rows = trainer_rows()
    half = rows[: max(2, len(rows) // 2)]
    app = app_factory(open_job=populated_home.running)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        bar = screen.query_one(ProgressBar)
        assert bar.total == half[-1]["total_steps"]
        assert bar.progress == half[-1]["current_steps"]
        times = _text(screen, "#dash-times")
        assert "elapsed 2:00 · ETA " in times
        assert screen.query_one(LossChart).series.steps == _series(half, "loss")[0]
        pane = screen.query_one("#gpu-pane-1", GpuPane)
        assert len(pane.history.samples) == 40
        assert pane.history.samples[-1]["time"] == FIXED_NOW - 1
        assert "#dash-message" and not screen.query_one("#dash-message").has_class("shown")


async def test_failed_job_shows_exit_code_reason_and_log(populated_home, app_factory):
    app = app_factory(open_job=populated_home.failed)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        message = _text(screen, "#dash-message")
        assert "Failed with exit code 1: out of memory" in message
        assert any("CUDA out of memory" in line for line in screen.query_one(LogTail).shown)


async def test_log_tail_follows_new_lines(populated_home, app_factory):
    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db

    db = open_db()
    run_dir = Path(jobs.get(db, populated_home.running).run_dir)
    db.conn.close()
    app = app_factory(open_job=populated_home.running, refresh_seconds=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        log_view = app.screen.query_one(LogTail)
        before = len(log_view.shown)
        with (run_dir / "train.log").open("a") as log:
            log.write("step 99/99 | loss 1.2345\n")
        # the next ticks pick the line up
        await wait_until(pilot, lambda: log_view.shown[-1] == "step 99/99 | loss 1.2345", what="the new line")
        assert len(log_view.shown) == before + 1
        await wait_until(
            pilot, lambda: log_view.max_scroll_y > 0 and log_view.is_vertical_scroll_end, what="end"
        )
        # scrolled up by the user: new lines do not pull the view down
        log_view.scroll_home(animate=False)
        await wait_until(pilot, lambda: log_view.scroll_y == 0, what="scrolled up")
        with (run_dir / "train.log").open("a") as log:
            log.write("step 100/100 | loss 1.2\n")
        await wait_until(pilot, lambda: log_view.shown[-1] == "step 100/100 | loss 1.2", what="another line")
        await settle(pilot)
        assert log_view.scroll_y == 0


async def test_log_tail_folds_repeated_warnings_and_wraps(populated_home, app_factory):
    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db

    db = open_db()
    run_dir = Path(jobs.get(db, populated_home.running).run_dir)
    db.conn.close()
    warning = (
        "/x/site-packages/torch/utils/checkpoint.py:92: UserWarning: None of the inputs have requires_grad"
    )
    with (run_dir / "train.log").open("a") as log:
        for step in range(3):
            log.write(f"{warning}\n  warnings.warn(\nstep {step} | loss 1.0 | " + "x" * 150 + "\n")
    app = app_factory(open_job=populated_home.running, refresh_seconds=0.2)
    async with app.run_test(size=(80, 40)) as pilot:
        await settle(pilot)
        log_view = app.screen.query_one(LogTail)
        await wait_until(pilot, lambda: log_view.shown[-1].startswith("step 2 |"), what="the steps")
        assert log_view.shown.count(warning) == 1
        assert not any("warnings.warn(" in line for line in log_view.shown)
        assert any(warning in strip.text and "(×3)" in strip.text for strip in log_view.lines)
        assert log_view.virtual_size.width > 150  # long lines scroll sideways
        await pilot.press("w")
        await wait_until(pilot, lambda: log_view.wrap and log_view.virtual_size.width < 100, what="wrapped")
        await pilot.press("z")
        await wait_until(pilot, lambda: log_view.shown.count(warning) == 3, what="every line")
        assert log_view.shown == log_view.lines_read


def test_chart_ticks_are_round_and_short():
    from tunequeue.tui.widgets.loss_chart import nice_ticks, tick_label

    ticks = nice_ticks(0.8123456789, 2.34567891)
    assert ticks == [1.0, 1.5, 2.0]
    assert [tick_label(value) for value in (0.1 + 0.2, 1234.5678, 2.0)] == ["0.3", "1.23e+03", "2"]


async def test_chinese_chart_keeps_its_legend_on_its_own_line(populated_home, app_factory):
    app = app_factory(open_job=populated_home.succeeded, lang="zh")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        legend = _text(app.screen, "#chart-legend")
        assert "损失" in legend and "平滑" in legend and "步数" in legend
        chart = app.screen.query_one(LossChart)
        assert chart.region.height >= 6


async def test_queued_job_says_why_it_waits_and_language_switch(populated_home, app_factory):
    app = app_factory(open_job=populated_home.queued)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert "Waiting to start: needs 2 GPU(s) and only 1 is free" in _text(screen, "#dash-message")
        assert "No metrics yet" in _text(screen, "#dash-stats")
        await pilot.press("l")
        await settle(pilot)
        assert "等待启动" in _text(screen, "#dash-message")
        assert "排队中" in _text(screen, "#dash-header")


@pytest.mark.slow
async def test_dashboard_of_a_real_training_run_ingested_by_the_runner(tq_home, app_factory):
    """Train the tiny model for real in a job's run dir, ingest it like the runner, open the dashboard."""
    from tunequeue.jobqueue import jobs, metrics
    from tunequeue.jobqueue.db import open_db
    from tunequeue.runner.ingest import ingest_job

    task = (
        "task_name: real-run\nmodel_name_or_path: tunequeue/tiny-llama\nstage: sft\nfinetuning_type: lora\n"
        "template: qwen\ndataset: demo_alpaca\ncutoff_len: 128\nper_device_train_batch_size: 4\n"
        "learning_rate: 0.002\nnum_train_epochs: 1\nmax_samples: 64\nval_size: 8\neval_steps: 4\n"
        "logging_steps: 2\nsave_steps: 100\nlora_rank: 4\n"
    )
    db = open_db()
    job = jobs.submit(db, task_yaml=task, name="real-run", gpus=0)
    jobs.claim(db, job.id, [], [])
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "task.yaml").write_text(task)
    with (run_dir / "train.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tunequeue.train", str(run_dir / "task.yaml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
        )
    jobs.mark_running(db, job.id, process.pid, process.pid, FIXED_NOW)
    assert process.wait(timeout=300) == 0, (run_dir / "train.log").read_text()[-2000:]
    job = jobs.get(db, job.id)
    assert ingest_job(db, job) > 0
    jobs.finish(db, job.id, exit_code=0)
    stored = metrics.get_metrics(db, job.id)
    db.conn.close()

    import json

    rows = [json.loads(line) for line in (run_dir / "trainer_log.jsonl").read_text().splitlines()]
    steps, losses = _series(rows, "loss")
    assert steps and len(stored) == len({row["current_steps"] for row in rows})
    app = app_factory(open_job=job.id, clock=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        chart = screen.query_one(LossChart)
        assert (chart.series.steps, chart.series.losses) == (steps, losses)
        total = rows[-1]["total_steps"]
        bar = screen.query_one(ProgressBar)
        assert (bar.total, bar.progress) == (total, total)
        assert f"loss {losses[-1]:.4g}" in _text(screen, "#dash-stats")
        assert "Finished. Result:" in _text(screen, "#dash-message")
        assert any("done:" in line for line in screen.query_one(LogTail).shown)


async def test_task_screen_shows_yaml_and_history(populated_home, app_factory):
    from tunequeue.tui.screens.job import JobScreen

    app = app_factory(open_job=populated_home.succeeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("t")
        screen = await wait_for_screen(pilot, JobScreen)
        await wait_until(pilot, lambda: screen.job is not None, what="the job read")
        assert "task_name: lora-demo" in screen.job.task_yaml
        events = str(screen.query_one("#job-events").render())
        assert "queued → starting" in events and "running → succeeded" in events
        await pilot.press("escape")
        await wait_for_screen(pilot, DashboardScreen)


async def test_long_run_is_charted_in_buckets_and_followed_row_by_row(tq_home, app_factory, monkeypatch):
    """A running job with 20,000 metric rows: the chart gets bucket means, polls without new rows redraw
    nothing, and rows stored later reach progress, stats and chart."""
    from tunequeue.jobqueue import jobs, metrics
    from tunequeue.jobqueue.db import open_db
    from tunequeue.tui.metric_history import CHART_POINTS

    total = 30_000

    def rows(first, last):
        return [
            {"current_steps": s, "total_steps": total, "loss": 4.0 / (1 + s / 1000),
             "lr": 1e-4 * (1 - s / total), "epoch": s / total, "remaining_time": "0:10:00"}
            for s in range(first, last + 1)
        ]

    db = open_db()
    job = jobs.submit(db, task_yaml="task_name: long\nstage: sft\n", name="long", gpus=0)
    jobs.claim(db, job.id, [], [])
    jobs.mark_running(db, job.id, 999_020, 999_020, FIXED_NOW)
    metrics.add_metrics(db, job.id, 1, rows(1, 20_000))
    draws, reads = [], []
    real_draw, real_show = LossChart._draw, DashboardScreen.show_data

    def counted_draw(chart):
        draws.append(len(chart.series.steps))
        real_draw(chart)

    def counted_show(screen, data):
        reads.append(data.metrics.count)
        real_show(screen, data)

    monkeypatch.setattr(LossChart, "_draw", counted_draw)
    monkeypatch.setattr(DashboardScreen, "show_data", counted_show)
    app = app_factory(open_job=job.id, refresh_seconds=0.2)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await wait_for_screen(pilot, DashboardScreen)
            chart = screen.query_one(LossChart)
            await wait_until(pilot, lambda: reads and reads[-1] == 20_000, what="the first read")
            await settle(pilot)
            assert 0 < len(chart.series.steps) <= CHART_POINTS and chart.series.width > 1
            assert len(chart.series.smoothed) == len(chart.series.losses) == len(chart.series.steps)
            assert chart.series.steps[-1] > 19_900 and chart.series.losses[0] > chart.series.losses[-1]
            bar = screen.query_one(ProgressBar)
            assert (bar.total, bar.progress) == (total, 20_000)
            assert f"loss {4.0 / 21:.4g}" in _text(screen, "#dash-stats")
            # polls that find no new rows draw nothing again
            drawn, polls = len(draws), len(reads)
            await wait_until(pilot, lambda: len(reads) >= polls + 3, what="three more polls")
            assert len(draws) == drawn
            metrics.add_metrics(db, job.id, 1, rows(20_001, 20_500))
            await wait_until(pilot, lambda: bar.progress == 20_500, what="the new rows")
            await settle(pilot)
            assert len(draws) > drawn
            assert chart.series.steps[-1] > 20_400 and len(chart.series.steps) <= CHART_POINTS
            assert f"loss {4.0 / 21.5:.4g}" in _text(screen, "#dash-stats")
            assert reads[-1] == 20_500
    finally:
        db.conn.close()
