"""Queue screen: the table shows every job; cancel and delete ask first and then change the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from tq_tui_testkit import settle

from tunequeue.tui.dialogs import ConfirmDialog
from tunequeue.tui.screens.queue import QueueScreen

pytestmark = pytest.mark.anyio


def _job(job_id: int):
    from tunequeue.core.errors import UserError
    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db

    db = open_db()
    try:
        return jobs.get(db, job_id)
    except UserError:
        return None
    finally:
        db.conn.close()


async def _select(pilot, job_id: int) -> None:
    table = pilot.app.screen.query_one("#jobs")
    keys = [row.key.value for row in table.ordered_rows]
    table.move_cursor(row=keys.index(str(job_id)))
    await pilot.pause()


def _cell_texts(app, job_id: int) -> list[str]:
    table = app.screen.query_one("#jobs")
    return [str(cell) for cell in table.get_row(str(job_id))]


async def test_table_shows_jobs_with_progress_loss_and_times(populated_home, app_factory):
    from tq_tui_testkit import trainer_rows

    rows = trainer_rows()
    last_loss = next(row["loss"] for row in reversed(rows) if "loss" in row)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        table = screen.query_one("#jobs")
        assert table.row_count == 5
        done = _cell_texts(app, populated_home.succeeded)
        assert done[1:5] == ["lora-demo", "succeeded", "0", "100%"]
        assert done[5] == f"{last_loss:.4g}"
        assert done[6] == "3:20"
        running = _cell_texts(app, populated_home.running)
        assert running[2:4] == ["running", "1"]
        assert running[6].startswith("2:00/")
        queued = _cell_texts(app, populated_home.queued)
        assert queued[2:4] == ["queued", "2?"]
        await _select(pilot, populated_home.queued)
        assert "Resources (needs 2 GPUs, 1 free)" in str(screen.query_one("#job-detail").render())
        await _select(pilot, populated_home.failed)
        assert "out of memory" in str(screen.query_one("#job-detail").render())
        await pilot.press("f")  # active only
        await settle(pilot)
        assert [row.key.value for row in table.ordered_rows] == [str(populated_home.running)]


async def test_cancel_asks_then_cancels(populated_home, app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.queued)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "Cancel job" in app.screen.question
        await pilot.press("n")  # refuse: nothing changes
        await settle(pilot)
        assert _job(populated_home.queued).state == "queued"
        await pilot.press("c")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert _job(populated_home.queued).state == "cancelled"
        await settle(pilot)
        assert _cell_texts(app, populated_home.queued)[2] == "cancelled"
        # a running job goes to cancelling: the runner stops it
        await _select(pilot, populated_home.running)
        await pilot.press("c", "y")
        await settle(pilot)
        assert _job(populated_home.running).state == "cancelling"


async def test_delete_asks_then_removes_job_and_files(populated_home, app_factory):
    failed = _job(populated_home.failed)
    assert Path(failed.run_dir).is_dir()
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.failed)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        await settle(pilot)
        assert _job(populated_home.failed) is not None
        await pilot.press("d", "y")
        await settle(pilot)
        assert _job(populated_home.failed) is None
        assert not Path(failed.run_dir).exists()
        await settle(pilot)
        keys = [row.key.value for row in app.screen.query_one("#jobs").ordered_rows]
        assert str(populated_home.failed) not in keys
        # deleting a running job is refused with the queue's message, nothing changes
        await _select(pilot, populated_home.running)
        await pilot.press("d", "y")
        await settle(pilot)
        assert _job(populated_home.running).state == "running"


async def test_retry_hold_release_and_priority(populated_home, app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.failed)
        await pilot.press("r")
        await settle(pilot)
        retried = _job(populated_home.failed)
        assert (retried.state, retried.attempt) == ("queued", 2)
        await _select(pilot, populated_home.held)
        await pilot.press("h")
        await settle(pilot)
        assert _job(populated_home.held).state == "queued"
        await pilot.press("h")
        await settle(pilot)
        assert _job(populated_home.held).state == "held"
        await pilot.press("plus")
        await settle(pilot)
        await pilot.press("plus")
        await settle(pilot)
        await pilot.press("minus")
        await settle(pilot)
        assert _job(populated_home.held).priority == 1


async def test_enter_opens_dashboard_and_g_opens_gpus(populated_home, app_factory):
    from tunequeue.tui.screens.dashboard import DashboardScreen
    from tunequeue.tui.screens.gpus import GpusScreen

    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.running)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        assert app.screen.job_id == populated_home.running
        await pilot.press("escape")
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GpusScreen)


async def test_edit_and_clone_open_the_wizard_on_the_selected_job(populated_home, app_factory):
    from tunequeue.tui.screens.wizard import WizardScreen

    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.running)
        await pilot.press("e")  # a running job cannot be edited: the screen stays
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, WizardScreen)
        assert app.screen.clone_job_id == populated_home.running
        await pilot.press("escape")
        await settle(pilot)
        await _select(pilot, populated_home.queued)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, WizardScreen)
        assert app.screen.edit_job_id == populated_home.queued
