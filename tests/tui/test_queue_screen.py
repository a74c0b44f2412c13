"""Queue screen: the table shows every job; cancel and delete ask first and then change the database.

Wider terminals show more columns (why a job waits, priority, submitted, attempt); `?` lists the keys.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tq_tui_testkit import settle, wait_for_screen, wait_until, wizard_ready

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
    await wait_until(
        pilot, lambda: pilot.app.screen.selected_job_id() == job_id, what=f"job {job_id} selected"
    )


def _plain(renderable) -> str:
    import io

    from rich.console import Console

    console = Console(width=100, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue()


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
        assert queued[2:4] == ["queued", "need 2"]
        await _select(pilot, populated_home.queued)

        def detail() -> str:
            return str(screen.query_one("#job-detail").render())

        await wait_until(pilot, lambda: "runner is not running: press s" in detail(), what="the reason")
        assert "needs 2 GPU(s) and only 1 is free" in detail()
        await _select(pilot, populated_home.failed)
        await wait_until(pilot, lambda: "out of memory" in detail(), what="the failure")
        await pilot.press("f")  # active only
        await settle(pilot)
        assert [row.key.value for row in table.ordered_rows] == [str(populated_home.running)]


async def test_cancel_asks_then_cancels(populated_home, app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.queued)
        await pilot.press("c")
        dialog = await wait_for_screen(pilot, ConfirmDialog)
        assert "Cancel job" in dialog.question
        await pilot.press("n")  # refuse: nothing changes
        await settle(pilot)
        assert _job(populated_home.queued).state == "queued"
        await pilot.press("c")
        await wait_for_screen(pilot, ConfirmDialog)
        await pilot.press("y")
        await wait_until(pilot, lambda: _job(populated_home.queued).state == "cancelled", what="cancelled")
        await wait_until(pilot, lambda: _cell_texts(app, populated_home.queued)[2] == "cancelled")
        # a running job goes to cancelling: the runner stops it
        await _select(pilot, populated_home.running)
        await pilot.press("c")
        await wait_for_screen(pilot, ConfirmDialog)
        await pilot.press("y")
        await wait_until(pilot, lambda: _job(populated_home.running).state == "cancelling", what="cancelling")


async def test_delete_asks_then_removes_job_and_files(populated_home, app_factory):
    failed = _job(populated_home.failed)
    assert Path(failed.run_dir).is_dir()
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.failed)
        await pilot.press("d")
        await wait_for_screen(pilot, ConfirmDialog)
        await pilot.press("escape")
        await wait_for_screen(pilot, QueueScreen)
        await settle(pilot)
        assert _job(populated_home.failed) is not None
        await pilot.press("d")
        await wait_for_screen(pilot, ConfirmDialog)
        await pilot.press("y")
        await wait_until(pilot, lambda: _job(populated_home.failed) is None, what="job deleted")
        assert not Path(failed.run_dir).exists()

        def row_keys() -> list[str]:
            return [row.key.value for row in app.screen.query_one("#jobs").ordered_rows]

        await wait_until(pilot, lambda: str(populated_home.failed) not in row_keys(), what="row removed")
        # deleting a running job is refused with the queue's message, nothing changes
        await _select(pilot, populated_home.running)
        await pilot.press("d")
        await wait_for_screen(pilot, ConfirmDialog)
        await pilot.press("y")
        await wait_for_screen(pilot, QueueScreen)
        await settle(pilot)
        assert _job(populated_home.running).state == "running"


async def test_retry_hold_release_and_priority(populated_home, app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.failed)
        await pilot.press("r")
        await wait_until(pilot, lambda: _job(populated_home.failed).attempt == 2, what="retry")
        assert _job(populated_home.failed).state == "queued"
        await _select(pilot, populated_home.held)
        await pilot.press("h")
        await wait_until(pilot, lambda: _job(populated_home.held).state == "queued", what="release")
        await pilot.press("h")
        await wait_until(pilot, lambda: _job(populated_home.held).state == "held", what="hold")
        for key, priority in (("plus", 1), ("plus", 2), ("minus", 1)):
            await pilot.press(key)
            await wait_until(
                pilot, lambda p=priority: _job(populated_home.held).priority == p, what="priority"
            )


async def test_enter_opens_dashboard_and_g_opens_gpus(populated_home, app_factory):
    from tunequeue.tui.screens.dashboard import DashboardScreen
    from tunequeue.tui.screens.gpus import GpusScreen

    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.running)
        await pilot.press("enter")
        dashboard = await wait_for_screen(pilot, DashboardScreen)
        assert dashboard.job_id == populated_home.running
        await pilot.press("escape")
        await wait_for_screen(pilot, QueueScreen)
        await pilot.press("g")
        await wait_for_screen(pilot, GpusScreen)


async def test_edit_and_clone_open_the_wizard_on_the_selected_job(populated_home, app_factory):
    from tunequeue.tui.screens.wizard import WizardScreen

    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.running)
        await pilot.press("e")  # a running job cannot be edited: the screen stays and says why
        await wait_until(pilot, lambda: app._notifications, what="the refusal")
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("k")
        wizard = await wait_for_screen(pilot, WizardScreen)
        assert wizard.clone_job_id == populated_home.running
        await pilot.press("escape")
        await wait_for_screen(pilot, QueueScreen)
        await settle(pilot)
        await _select(pilot, populated_home.queued)
        await pilot.press("e")
        wizard = await wait_for_screen(pilot, WizardScreen)
        assert wizard.edit_job_id == populated_home.queued


def test_columns_follow_the_terminal_width():
    from tunequeue.tui.screens.queue import table_columns

    narrow = table_columns(80)
    assert [key for key, _ in narrow] == ["id", "name", "state", "gpus", "progress", "loss", "time"]
    assert sum(width + 2 for _, width in narrow) <= 78
    wide = table_columns(160)
    assert [key for key, _ in wide] == [
        *(key for key, _ in narrow),
        "priority",
        "submitted",
        "attempt",
        "reason",
    ]
    assert sum(width + 2 for _, width in wide) == 158  # the table uses the whole width
    assert dict(wide)["name"] > dict(narrow)["name"] - 1 and dict(wide)["reason"] >= 18


async def test_wide_terminal_shows_priority_and_why_jobs_wait(populated_home, app_factory):
    app = app_factory()
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#jobs")
        labels = [str(column.label) for column in table.ordered_columns]
        assert labels[-4:] == ["Pri", "Submitted", "Try", "Why waiting"]
        queued = _cell_texts(app, populated_home.queued)
        assert queued[7:] == ["5", "1:40 ago", "1", "runner stopped (s)"]
        assert _cell_texts(app, populated_home.held)[-1] == "held (h releases)"
        assert _cell_texts(app, populated_home.running)[-1] == ""
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: len(table.ordered_columns) == 7, what="narrow columns")
        assert _cell_texts(app, populated_home.queued)[3] == "need 2"


async def test_reasons_follow_the_runner_and_the_scheduler(populated_home, app_factory, monkeypatch):
    """With the runner running the stored reason is shown; a job it has not looked at yet is explained
    by the scheduler; a held job says how to release it."""
    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db
    from tunequeue.tui import data
    from tunequeue.tui.data import RunnerInfo

    monkeypatch.setattr(data, "runner_info", lambda: RunnerInfo(True, 4242))
    db = open_db()
    try:
        after = jobs.submit(db, task_yaml="task_name: x\n", name="after-it", after=[populated_home.running])
        small = jobs.submit(db, task_yaml="task_name: y\n", name="one-gpu", gpus=1, priority=-1)
    finally:
        db.conn.close()
    app = app_factory()
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        assert _cell_texts(app, populated_home.queued)[-1] == "needs 2 GPU, 1 free"
        assert _cell_texts(app, after.id)[-1] == f"after job {populated_home.running}"
        # one GPU is free: the scheduler would start it at the runner's next tick
        assert _cell_texts(app, small.id)[-1] == "starts next tick"
        await pilot.press("l")
        await wait_until(pilot, lambda: _cell_texts(app, populated_home.held)[-1] == "暂缓（h 放行）")
        assert _cell_texts(app, populated_home.queued)[3] == "需2"


async def test_question_mark_lists_the_screens_keys_first(populated_home, app_factory):
    from tunequeue.tui.screens.help import HelpScreen

    app = app_factory()
    async with app.run_test(size=(80, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        help_screen = await wait_for_screen(pilot, HelpScreen)
        text = _plain(help_screen.query_one("#help-keys").content)
        words = ("Jobs", "New", "Hold", "Prio+", "Clone", "Filter", "Start runner", "Moving around")
        order = [text.index(word) for word in words]
        assert order == sorted(order), text
        assert text.index("Moving around") > text.index("Quit")
        await pilot.press("question_mark")
        await wait_for_screen(pilot, QueueScreen)


async def test_keys_typed_right_after_n_reach_the_wizard_not_the_table(populated_home, app_factory):
    """`n` and the keys after it in one burst: `c` and `d` would cancel or delete on the queue; they must
    land in the wizard's first field instead."""
    from textual.widgets import Input
    from tq_tui_testkit import burst

    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _select(pilot, populated_home.queued)
        burst(pilot, "n", "c", "d", "tab", "e", "f")
        screen = await wizard_ready(pilot)
        await wait_until(pilot, lambda: screen.query_one("#edit-namespace", Input).value.endswith("ef"))
        assert screen.query_one("#edit-task_name", Input).value == "cd"
        assert not any(isinstance(each, ConfirmDialog) for each in app.screen_stack)
        assert _job(populated_home.queued).state == "queued"
