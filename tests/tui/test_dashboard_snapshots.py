"""Snapshots of job dashboards at 80×24: finished, running and failed in English, running in Chinese."""

from __future__ import annotations

import pytest
from tq_tui_testkit import run_before_settled


@pytest.fixture
def snapshot_home(populated_home, tmp_path, monkeypatch):
    """The populated queue, with HOME pinned so paths render as ``~/…`` in every run."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return populated_home


def test_dashboard_finished_en(snapshot_home, app_factory, snap_compare):
    app = app_factory(open_job=snapshot_home.succeeded)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before_settled)


def test_dashboard_running_en(snapshot_home, app_factory, snap_compare):
    app = app_factory(open_job=snapshot_home.running)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before_settled)


def test_dashboard_failed_en(snapshot_home, app_factory, snap_compare):
    app = app_factory(open_job=snapshot_home.failed)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before_settled)


def test_dashboard_running_zh(snapshot_home, app_factory, snap_compare):
    app = app_factory(open_job=snapshot_home.running, lang="zh")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before_settled)


def test_dashboard_finished_wide_tall_en(snapshot_home, app_factory, snap_compare):
    """A tall terminal gives the log tail the extra rows; the chart stops growing."""
    app = app_factory(open_job=snapshot_home.succeeded)
    assert snap_compare(app, terminal_size=(140, 48), run_before=run_before_settled)


def test_dashboard_finished_zh(snapshot_home, app_factory, snap_compare):
    app = app_factory(open_job=snapshot_home.succeeded, lang="zh")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before_settled)
