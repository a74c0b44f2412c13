"""Snapshots of the queue screen at 80×24 and 160×30 (English), from a pinned queue and a fixed clock."""

from __future__ import annotations

import pytest
from tq_tui_testkit import run_before_settled, wait_for_screen


@pytest.fixture
def snapshot_home(populated_home, tmp_path, monkeypatch):
    """The populated queue, with HOME pinned so paths render as ``~/…`` in every run."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return populated_home


def test_queue_screen_en(snapshot_home, app_factory, snap_compare):
    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=run_before_settled)


def test_queue_screen_waiting_reason_en(snapshot_home, app_factory, snap_compare):
    assert snap_compare(
        app_factory(), terminal_size=(80, 24), press=["down", "down"], run_before=run_before_settled
    )


def test_queue_screen_cancel_confirmation_en(snapshot_home, app_factory, snap_compare):
    async def select_queued_and_cancel(pilot):
        await run_before_settled(pilot)
        await pilot.press("down", "down", "c")
        from tunequeue.tui.dialogs import ConfirmDialog

        await wait_for_screen(pilot, ConfirmDialog)

    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=select_queued_and_cancel)


def test_queue_screen_wide_en(snapshot_home, app_factory, snap_compare):
    """At 160 columns the table adds priority, submitted, attempt and why each job waits."""
    assert snap_compare(
        app_factory(), terminal_size=(160, 30), press=["down", "down"], run_before=run_before_settled
    )


def test_queue_keys_help_en(snapshot_home, app_factory, snap_compare):
    async def open_help(pilot):
        from tunequeue.tui.screens.help import HelpScreen

        await run_before_settled(pilot)
        await pilot.press("question_mark")
        await wait_for_screen(pilot, HelpScreen)

    assert snap_compare(app_factory(), terminal_size=(80, 40), run_before=open_help)
