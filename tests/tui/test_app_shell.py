"""The app shell: boots on the queue screen, switches language with `l` and remembers it."""

from __future__ import annotations

import pytest
from tq_tui_testkit import settle

from tunequeue.tui.screens.queue import QueueScreen

pytestmark = pytest.mark.anyio


async def test_empty_home_shows_queue_with_hint(tq_home, app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        empty = app.screen.query_one("#empty")
        assert "Press n to create a task" in str(empty.render())
        status = str(app.screen.query_one("#queue-status").render())
        assert "Runner: stopped" in status
        assert "GPUs: 2 (0 busy) [simulated]" in status


async def test_language_switch_relabels_and_is_remembered(tq_home, app_factory, monkeypatch):
    monkeypatch.delenv("TUNEQUEUE_LANG")
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        assert app.lang == "zh"
        table = app.screen.query_one("#jobs")
        labels = [str(column.label) for column in table.columns.values()]
        assert labels[:3] == ["ID", "名称", "状态"]
        assert "调度器：已停止" in str(app.screen.query_one("#queue-status").render())
        footer_keys = {active.binding.description for active in app.screen.active_bindings.values()}
        assert "新建" in footer_keys
    reopened = app_factory(lang=None)
    assert reopened.lang == "zh"
    async with reopened.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        assert reopened.lang == "en"
        assert "Runner: stopped" in str(reopened.screen.query_one("#queue-status").render())
    assert app_factory(lang=None).lang == "en"


def test_ui_command_rejects_unknown_language_in_one_line(tq_home, capsys):
    from tunequeue.cli import main

    assert main(["ui", "--lang", "fr"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --lang 'fr' is not a language tunequeue speaks; use --lang en or --lang zh"]


def test_cli_import_loads_no_textual():
    import subprocess
    import sys

    code = "import sys, tunequeue.cli; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
