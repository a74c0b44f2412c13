"""GPUs screen: GPU cards with history, the host, the processes on the GPUs and acting on our job from them.

Simulated GPUs list their processes in simulated-gpus.json; a process of ours is a real process in the
process group of a job that the queue (real SQLite) has as running, so matching goes through the same
pid / process-group lookup as on a machine with GPUs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from tq_tui_testkit import run_before_settled, settle, wait_until

from tunequeue.gpus import processes
from tunequeue.tui.dialogs import ConfirmDialog
from tunequeue.tui.screens.gpus import GpuCard, GpusScreen

pytestmark = pytest.mark.anyio

FOREIGN = {
    "pid": 4242,
    "used_memory_mib": 30000,
    "name": "python",
    "user": "alice",
    "command": "python other_lab/train.py --lr 3e-4",
}
# A job's process group: the leader starts a member (same group), prints its pid and waits.
LEADER = (
    "import subprocess, sys, time\n"
    "member = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print(member.pid, flush=True)\n"
    "time.sleep(600)\n"
)
FIXED_HOST = processes.HostStats(
    cpu_pct=37.0,
    cpu_count=64,
    memory_used_mib=200 * 1024,
    memory_total_mib=512 * 1024,
    swap_used_mib=0.0,
    swap_total_mib=8 * 1024,
    load_average=(12.5, 11.0, 10.0),
)


def _write_state(home, state: dict) -> None:
    (home / "simulated-gpus.json").write_text(json.dumps(state))


@pytest.fixture
def gpus_home(populated_home, tmp_path, monkeypatch):
    """Three simulated GPUs: 0 free, 1 assigned to our running job, 2 used by alice and a display server."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "2x24,1x80")
    _write_state(
        populated_home.home,
        {
            "1": {"memory_used_mib": 6900, "utilization_pct": 88, "temperature_c": 61, "power_w": 210},
            "2": {
                "memory_used_mib": 30100,
                "utilization_pct": 97,
                "processes": [FOREIGN],
                "graphics_processes": [
                    {"pid": 1201, "used_memory_mib": 40, "name": "Xorg", "user": "root", "command": "Xorg :0"}
                ],
            },
        },
    )
    return populated_home


@pytest.fixture
def our_process(gpus_home):
    """The running job of the queue backed by a real process group: a leader and a second member on GPU 1.

    Yields the pid of the member, which the simulated GPU lists (it is neither the job's pid nor known
    to the queue by itself: it is ours through its process group).
    """
    from tunequeue.jobqueue.db import open_db, write_txn

    leader = subprocess.Popen([sys.executable, "-c", LEADER], start_new_session=True, stdout=subprocess.PIPE)
    member_pid = int(leader.stdout.readline())
    try:
        db = open_db()
        try:
            with write_txn(db) as conn:
                conn.execute(
                    "UPDATE jobs SET pid = ?, pgid = ? WHERE id = ?",
                    (leader.pid, leader.pid, gpus_home.running),
                )
        finally:
            db.conn.close()
        state = json.loads((gpus_home.home / "simulated-gpus.json").read_text())
        state["1"]["processes"] = [
            {
                "pid": member_pid,
                "used_memory_mib": 6800,
                "name": "python",
                "user": "trainer",
                "command": "tq-train",
            }
        ]
        _write_state(gpus_home.home, state)
        yield member_pid
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(timeout=30)
        leader.stdout.close()


def _rows(screen) -> dict[str, list[str]]:
    table = screen.query_one("#gpus-processes")
    return {row.key.value: [str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows}


def _card(screen, index: int) -> dict[str, str]:
    card = screen.query_one(f"#gpu-card-{index}", GpuCard)
    texts = {"title": str(card.query_one(".card-title").render())}
    for metric in ("util", "mem", "temp", "power"):
        texts[metric] = str(card.query_one(f".value-{metric}").render())
    return texts


async def _open_gpus(app, pilot) -> GpusScreen:
    await settle(pilot)
    await pilot.press("g")
    await wait_until(
        pilot, lambda: isinstance(app.screen, GpusScreen) and app.screen.view is not None, what="first read"
    )
    screen = app.screen
    await wait_until(
        pilot, lambda: bool(screen.query(GpuCard)) and _card(screen, 0)["util"] != "", what="cards filled"
    )
    return screen


async def _on_our_process(app, pilot, member_pid: int) -> tuple[GpusScreen, str]:
    """Open the GPUs screen, wait until our job's process (on GPU 1) is listed and put the cursor on its
    row; return the screen and the row's key."""
    screen = await _open_gpus(app, pilot)
    key = f"1:{member_pid}"
    await wait_until(pilot, lambda: key in _rows(screen), what="our process listed")
    screen.query_one("#gpus-processes").move_cursor(row=list(_rows(screen)).index(key))
    await pilot.pause()
    return screen, key


async def _open_gpus_settled(pilot) -> None:
    """`snap_compare` hook: open the GPUs screen from the queue once both showed their data."""
    await run_before_settled(pilot)
    await pilot.press("g")
    await run_before_settled(pilot)


async def test_cards_host_and_foreign_processes_with_user_and_command(gpus_home, app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_gpus(app, pilot)
        heading = str(screen.query_one("#gpus-heading").render())
        assert heading.startswith("3 GPUs") and "[simulated]" in heading
        assert str(screen.query_one("#gpus-host").render()).startswith("host CPU ")
        free, busy, foreign = _card(screen, 0), _card(screen, 1), _card(screen, 2)
        assert free["title"].endswith("free") and "[simulated]" in free["title"]
        assert f"job {gpus_home.running} sft-live" in busy["title"]
        assert [busy[m] for m in ("util", "mem", "temp", "power")] == [
            "UTL 88%",
            "MEM 6.7/24.0G",
            "TMP 61°C",
            "PWR 210/300W",
        ]
        assert "2 other process(es)" in foreign["title"]
        # GPU 1 has the runner's samples as history, GPU 2 (no samples) what the screen read itself
        util_1 = screen.query_one("#gpu-card-1 .history-util")
        assert len(util_1.data) == 40 and util_1.ceiling == 100.0
        assert screen.query_one("#gpu-card-1 .history-power").ceiling == 300.0
        assert screen.query_one("#gpu-card-2 .history-mem").data == [30100.0]
        rows = _rows(screen)
        assert list(rows) == ["2:4242", "2:1201"]  # largest GPU memory first
        assert rows["2:4242"][:6] == ["2", "4242", "alice", "C", "30000M", "—"]
        assert rows["2:4242"][6] == "python other_lab/train…"  # clipped to what 80 columns leave
        assert rows["2:1201"][2:5] == ["root", "G", "40M"]
        # a foreign process cannot be cancelled or opened
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is screen
        assert any("4242 is not one of our jobs" in n.message for n in app._notifications)


async def test_sort_cycles_through_keys_and_wide_screens_show_whole_commands(gpus_home, app_factory):
    app = app_factory()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _open_gpus(app, pilot)
        assert _rows(screen)["2:4242"][6] == FOREIGN["command"]
        label = screen.query_one("#gpus-processes-label")
        assert "by GPU memory" in str(label.render())
        await pilot.press("s", "s")  # memory → GPU → pid
        assert "by pid" in str(label.render())
        assert list(_rows(screen)) == ["2:1201", "2:4242"]


async def test_cancel_our_job_from_its_process_row(gpus_home, our_process, app_factory):
    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db

    def state() -> str:
        db = open_db()
        try:
            return jobs.get(db, gpus_home.running).state
        finally:
            db.conn.close()

    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen, key = await _on_our_process(app, pilot, our_process)
        row = _rows(screen)[key]
        assert row[2:6] == ["trainer", "C", "6800M", f"{gpus_home.running} sft-live"]
        assert list(_rows(screen))[1] == key  # 6800 MiB: after alice's 30000, before Xorg
        assert screen.query_one("#gpus-processes").cursor_row == 1
        assert "2 other process(es)" in _card(screen, 2)["title"]
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="confirmation")
        assert f"job {gpus_home.running}" in app.screen.question.lower()
        await pilot.press("n")
        await settle(pilot)
        assert state() == "running"
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: state() == "cancelling", what="the job to be cancelling")
        assert app.screen is screen


async def test_enter_on_our_process_opens_the_job_dashboard(gpus_home, our_process, app_factory):
    from tunequeue.tui.screens.dashboard import DashboardScreen

    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen, _key = await _on_our_process(app, pilot, our_process)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen), what="the dashboard")
        assert app.screen.job_id == gpus_home.running
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, what="back on the GPUs screen")


async def test_chinese_labels(gpus_home, app_factory):
    app = app_factory(lang="zh")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_gpus(app, pilot)
        assert _card(screen, 1)["util"] == "利用 88%"
        assert "【模拟】" in str(screen.query_one("#gpus-heading").render())
        assert str(screen.query_one("#gpus-host").render()).startswith("主机 CPU")
        assert "按显存排序" in str(screen.query_one("#gpus-processes-label").render())


@pytest.fixture
def fixed_host(monkeypatch):
    """The host's CPU and memory pinned, so a snapshot does not depend on this machine's load."""
    monkeypatch.setattr(processes, "read_host", lambda: FIXED_HOST)


def test_gpus_screen_en(gpus_home, fixed_host, app_factory, snap_compare):
    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=_open_gpus_settled)


def test_gpus_screen_wide(gpus_home, fixed_host, app_factory, snap_compare):
    assert snap_compare(app_factory(), terminal_size=(160, 48), run_before=_open_gpus_settled)
