"""Queue screen with many jobs: it shows a page at a time, touches only rows that changed, keeps the
cursor on its job when new ones arrive, and timed reads rest after a slow one.

The page size is lowered for these tests (`PAGE_ROWS`); the homes are real SQLite queues.
"""

from __future__ import annotations

import pytest
from tq_tui_testkit import settle, wait_for_screen, wait_until

from tunequeue.tui.screens import queue as queue_screen

pytestmark = pytest.mark.anyio


def _submit(count: int, prefix: str = "job") -> list[int]:
    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db

    db = open_db()
    try:
        return [
            jobs.submit(db, task_yaml=f"task_name: {prefix}-{i}\n", name=f"{prefix}-{i}").id
            for i in range(count)
        ]
    finally:
        db.conn.close()


def _status(app) -> str:
    return str(app.screen.query_one("#queue-status").render())


def _row_keys(app) -> list[str]:
    return [row.key.value for row in app.screen.query_one("#jobs").ordered_rows]


async def test_a_long_queue_shows_a_page_and_the_next_one_at_the_end(tq_home, app_factory, monkeypatch):
    monkeypatch.setattr(queue_screen, "PAGE_ROWS", 5)
    ids = _submit(12)
    app = app_factory()
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#jobs")
        assert _row_keys(app) == [str(job_id) for job_id in sorted(ids, reverse=True)[:5]]
        assert "5 of 12 shown" in _status(app)
        await pilot.press("end")
        await wait_until(pilot, lambda: table.row_count == 10, what="the second page")
        assert _row_keys(app) == [str(job_id) for job_id in sorted(ids, reverse=True)[:10]]
        assert app.screen.selected_job_id() == sorted(ids, reverse=True)[4]
        await pilot.press("end")
        await wait_until(pilot, lambda: table.row_count == 12, what="the last page")
        await wait_until(pilot, lambda: " of " not in _status(app), what="no page note once all are shown")
        await pilot.press("home")
        await wait_until(pilot, lambda: app.screen.selected_job_id() == max(ids), what="back to the newest")


async def test_the_id_column_grows_with_the_ids(tq_home, app_factory):
    from tunequeue.jobqueue.db import open_db

    db = open_db()
    try:
        db.conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('jobs', 123455)")
        db.conn.commit()
    finally:
        db.conn.close()
    (job_id,) = _submit(1)
    assert job_id == 123456
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: _row_keys(app) == ["123456"], what="the job")
        table = app.screen.query_one("#jobs")
        assert table.ordered_columns[0].width == len("123456")


async def test_a_refresh_touches_only_the_row_that_changed(populated_home, app_factory, monkeypatch):
    from textual.widgets import DataTable

    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db

    touched: list[tuple[str, str]] = []
    original = DataTable.update_cell

    def spy(self, row_key, column_key, value, **kwargs):
        row, column = (str(getattr(key, "value", key)) for key in (row_key, column_key))
        touched.append((row, column))
        return original(self, row_key, column_key, value, **kwargs)

    monkeypatch.setattr(DataTable, "update_cell", spy)
    app = app_factory()
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        touched.clear()
        db = open_db()
        try:
            jobs.set_priority(db, populated_home.held, 7)
        finally:
            db.conn.close()
        table = app.screen.query_one("#jobs")
        priority_column = [column.key.value for column in table.ordered_columns].index("priority")
        await wait_until(
            pilot,
            lambda: str(table.get_row(str(populated_home.held))[priority_column]) == "7",
            what="the new priority",
        )
        await settle(pilot)
        assert touched and set(touched) == {(str(populated_home.held), "priority")}


async def test_new_jobs_go_on_top_and_the_cursor_stays_on_its_job(populated_home, app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#jobs")
        keys = _row_keys(app)
        table.move_cursor(row=keys.index(str(populated_home.failed)))
        await wait_until(pilot, lambda: app.screen.selected_job_id() == populated_home.failed)
        (new,) = _submit(1, "late")
        await wait_until(pilot, lambda: _row_keys(app)[:1] == [str(new)], what="the new job on top")
        assert _row_keys(app)[1:] == keys
        assert app.screen.selected_job_id() == populated_home.failed


async def test_timed_reads_rest_after_a_slow_read_and_direct_reads_do_not(tq_home, app_factory, monkeypatch):
    from tunequeue.tui import polling

    monkeypatch.setattr(polling, "REST_FACTOR", 1e6)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        reads: list[object] = []
        monkeypatch.setattr(screen, "start_read", reads.append)
        screen.poll()
        assert reads == []
        screen.refresh_data()
        assert len(reads) == 1


async def test_a_covered_queue_does_not_read_while_its_dashboard_does(
    populated_home, app_factory, monkeypatch
):
    from tunequeue.tui.screens.dashboard import DashboardScreen

    dashboard_reads: list[int] = []
    real_refresh = DashboardScreen.refresh_data

    def counted_refresh(self):
        dashboard_reads.append(self.job_id)
        real_refresh(self)

    monkeypatch.setattr(DashboardScreen, "refresh_data", counted_refresh)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        queue = app.screen
        queue_reads: list[object] = []
        monkeypatch.setattr(queue, "start_read", queue_reads.append)
        await pilot.press("enter")
        await wait_for_screen(pilot, DashboardScreen)
        queue_reads.clear()  # a tick may have come just before the dashboard opened
        seen = len(dashboard_reads)
        await wait_until(pilot, lambda: len(dashboard_reads) >= seen + 3, what="three timed dashboard reads")
        assert queue_reads == []
        await pilot.press("escape")
        await wait_until(pilot, lambda: queue_reads, what="a read once the queue is shown again")
