"""Chat screen: `a` on a finished LoRA job's dashboard streams replies of the real trained adapter,
loaded in a child process on the device the GPU ledger gave (simulated GPUs here: GPU 0 is chosen,
and without CUDA the child runs on the CPU and says so)."""

from __future__ import annotations

import asyncio

import pytest
from tq_tui_testkit import finished_model_job, settle

from tunequeue.tui.screens.chat import UI_MAX_NEW_TOKENS, ChatScreen, chat_target
from tunequeue.tui.screens.dashboard import DashboardScreen

pytestmark = pytest.mark.anyio

async def _wait_for(pilot, condition, seconds: float = 60.0) -> bool:
    for _ in range(int(seconds / 0.1)):
        if condition():
            return True
        await pilot.pause(0.1)
    return condition()


@pytest.mark.slow
async def test_chat_with_a_trained_adapter_streams_a_reply(tq_home, app_factory):
    job_id = finished_model_job()
    app = app_factory(open_job=job_id, clock=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        target = chat_target(dashboard.data.job)
        assert target.adapter == dashboard.data.job.run_dir and target.model == "tunequeue/tiny-llama"
        assert target.max_new_tokens == UI_MAX_NEW_TOKENS and target.do_sample is False
        assert target.template == "qwen"
        await pilot.press("a")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        assert screen.transcript_lines()[0] == "loading model…"
        assert await _wait_for(pilot, lambda: screen.ready, 300), screen.transcript_lines()
        client = screen.client
        assert client.process.poll() is None
        lines = screen.transcript_lines()
        assert lines[1] == "GPU 0 is free (no job uses it); loading the model there."
        assert lines[-1].startswith("Model loaded from ")
        assert screen.picked_device == "cuda:0" and screen.device == "cpu"
        assert str(screen.query_one("#chat-title").render()) == f"Job {job_id} · chat · CPU"

        await pilot.press(*"hello")
        await pilot.press("enter")
        assert await _wait_for(pilot, lambda: not screen.replying, 300)
        lines = screen.transcript_lines()
        assert lines[-2] == "You: hello"
        reply = lines[-1].removeprefix("Assistant: ")
        assert lines[-1].startswith("Assistant: ") and reply.strip()
        assert reply != "(empty reply)"
        assert screen.turns == 1
        history = await asyncio.to_thread(client.request, "chat.history")
        assert history["history"][-1] == {"role": "assistant", "content": screen.reply_text.strip()}
        assert len(history["history"]) == 2

        await pilot.press("ctrl+l")
        assert await _wait_for(pilot, lambda: screen.transcript_lines() == ["History cleared."])
        assert screen.turns == 0
        history = await asyncio.to_thread(client.request, "chat.history")
        assert history["history"] == []

        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is dashboard
        assert await _wait_for(pilot, lambda: client.process.poll() is not None)


async def test_chat_on_a_failed_job_is_refused_with_a_notice(populated_home, app_factory):
    app = app_factory(open_job=populated_home.failed)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        assert [note.message for note in app._notifications] == [
            "Chat needs a job that finished successfully."
        ]


async def test_chat_on_a_job_without_adapter_or_model_is_refused(populated_home, app_factory):
    app = app_factory(open_job=populated_home.succeeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        assert [note.message for note in app._notifications] == [
            "This job's result holds no adapter or model to chat with."
        ]
