"""Walk every screen of the TUI in a Pilot app and print which heavy libraries this process imported.

Run by `test_no_heavy_imports.py` in a fresh interpreter (other tests' imports must not leak in), with
TUNEQUEUE_HOME set to an empty temp home: it fills a queue (`build_populated_home`), trains a tiny
adapter in a child process (`finished_model_job`), then visits the queue, every page of the wizard
(with a dataset preview), the dashboard, the job's task, presets, GPUs, a chat with a real reply and
the help panel. The last stdout line is JSON: the heavy modules loaded and what the screens showed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tq_tui_testkit import build_populated_home, finished_model_job, settle  # noqa: E402

HEAVY = ("torch", "transformers", "peft", "datasets", "accelerate")


async def wait_for(pilot, condition, seconds: float = 300.0) -> bool:
    """Pause the pilot until `condition()` holds or `seconds` of pauses passed."""
    for _ in range(int(seconds / 0.1)):
        if condition():
            return True
        await pilot.pause(0.1)
    return condition()


async def walk() -> dict:
    """Visit every screen; return what was seen."""
    from tunequeue.tui.app import make_app
    from tunequeue.tui.screens.chat import ChatScreen
    from tunequeue.tui.screens.dashboard import DashboardScreen
    from tunequeue.tui.screens.gpus import GpusScreen
    from tunequeue.tui.screens.job import JobScreen
    from tunequeue.tui.screens.presets import PresetsScreen
    from tunequeue.tui.screens.wizard import PAGES, WizardScreen

    home = Path(os.environ["TUNEQUEUE_HOME"])
    populated = build_populated_home(home)
    chat_job = finished_model_job()
    seen: dict = {"screens": []}
    app = make_app(lang="en")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        seen["screens"].append(type(app.screen).__name__)

        wizard = WizardScreen(
            values={
                "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca", "template": "qwen",
            }
        )
        app.push_screen(wizard)
        await settle(pilot)
        for index in range(len(PAGES)):
            await wizard.goto_page(index)
            await settle(pilot)
            seen["screens"].append(f"wizard:{PAGES[index]}")
        from textual.widgets import Static

        await wizard.goto_page(0)
        await settle(pilot)
        wizard.action_preview()
        preview = wizard.query_one("#preview", Static)
        await wait_for(pilot, lambda: not str(preview.render()).startswith("Rendering"))
        seen["preview"] = str(preview.render())
        app.pop_screen()
        await settle(pilot)

        for screen in (DashboardScreen(populated.succeeded), JobScreen(populated.succeeded), PresetsScreen(),
                       GpusScreen()):
            app.push_screen(screen)
            await settle(pilot)
            seen["screens"].append(type(app.screen).__name__)
            app.pop_screen()
            await settle(pilot)

        chat = ChatScreen(chat_job)
        app.push_screen(chat)
        await wait_for(pilot, lambda: chat.ready or any("Cannot" in line for line in chat.transcript_lines()))
        await pilot.press(*"hi", "enter")
        await wait_for(pilot, lambda: chat.turns == 1 or not chat.replying and chat.reply_text != "")
        seen["chat"] = chat.transcript_lines()
        seen["chat_title"] = chat.title_text("en")
        seen["screens"].append("ChatScreen")
        client = chat.client
        app.pop_screen()
        await settle(pilot)
        await wait_for(pilot, lambda: client.process.poll() is not None, 60)
        seen["chat_child_ended"] = client.process.poll() is not None

        app.action_show_help_panel()
        await settle(pilot)
        seen["screens"].append("help" if app.screen.query("HelpPanel") else "no-help")
    seen["heavy"] = [name for name in HEAVY if name in sys.modules]
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(walk()), ensure_ascii=False))
