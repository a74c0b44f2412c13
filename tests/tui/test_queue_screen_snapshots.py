"""Snapshots of the queue screen at 80×24 (English), from a pinned queue and a fixed clock."""

from __future__ import annotations

import pytest
from tq_tui_testkit import run_before_settled


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
        await pilot.pause()

    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=select_queued_and_cancel)
