"""GPUs screen: every GPU with our job or a foreign process on it, live stats; snapshot at 80×24."""

from __future__ import annotations

import json

import pytest
from tq_tui_testkit import run_before_settled, settle

from tunequeue.tui.screens.gpus import GpusScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def gpus_home(populated_home, tmp_path, monkeypatch):
    """Three simulated GPUs: 0 free, 1 running our job, 2 used by a process that is not ours."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "2x24,1x80")
    (populated_home.home / "simulated-gpus.json").write_text(
        json.dumps(
            {
                "1": {"memory_used_mib": 6900, "utilization_pct": 88, "temperature_c": 61, "power_w": 210},
                "2": {
                    "memory_used_mib": 30000,
                    "utilization_pct": 97,
                    "processes": [{"pid": 4242, "used_memory_mib": 30000, "name": "python"}],
                },
            }
        )
    )
    return populated_home


async def test_gpus_screen_shows_users_and_stats(gpus_home, app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GpusScreen)
        table = screen.query_one("#gpus-table")
        rows = {row.key.value: [str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows}
        assert rows["0"][-1] == "free"
        assert rows["1"][2:6] == ["88%", "6.7/24.0", "61°C", "210 W"]
        assert rows["1"][-1] == f"job {gpus_home.running} sft-live"
        assert rows["2"][-1] == "pid 4242 python"
        assert "3 GPUs [simulated]" in str(screen.query_one("#gpus-heading").render())
        table.move_cursor(row=1)
        await pilot.pause()
        assert "GPU 1" in str(screen.query_one("#gpus-history-label").render())
        assert len(screen.query_one("#gpus-history").data) == 40


def test_gpus_screen_en(gpus_home, app_factory, snap_compare):
    async def open_gpus(pilot):
        await run_before_settled(pilot)
        await pilot.press("g")
        await run_before_settled(pilot)

    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=open_gpus)
