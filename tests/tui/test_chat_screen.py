"""Chat screen: `a` on a finished LoRA job's dashboard streams replies of the real trained adapter,
loaded in a child process on the device the GPU ledger gave (simulated GPUs here: GPU 0 is chosen,
and without CUDA the child runs on the CPU and says so)."""

from __future__ import annotations

import asyncio

import pytest
from tq_tui_testkit import finished_model_job, settle, wait_for_screen, wait_until

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
        screen = await wait_for_screen(pilot, ChatScreen)
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


def _notices(app) -> list[str]:
    return [note.message for note in app._notifications]


async def test_chat_on_a_failed_job_is_refused_with_a_notice(populated_home, app_factory):
    app = app_factory(open_job=populated_home.failed)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        notes = await wait_until(pilot, lambda: _notices(app), what="a notice")
        assert isinstance(app.screen, DashboardScreen)
        assert notes == ["Chat needs a job that finished successfully."]


async def test_chat_on_a_job_without_adapter_or_model_is_refused(populated_home, app_factory, monkeypatch):
    import threading

    from tunequeue.tui.screens import chat

    threads = []
    real_chat_target = chat.chat_target

    def recording_chat_target(job):
        threads.append(threading.current_thread())
        return real_chat_target(job)

    monkeypatch.setattr(chat, "chat_target", recording_chat_target)
    app = app_factory(open_job=populated_home.succeeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        notes = await wait_until(pilot, lambda: _notices(app), what="a notice")
        assert isinstance(app.screen, DashboardScreen)
        assert notes == ["This job's result holds no adapter or model to chat with."]
        # the files were looked at in a worker thread, not on the UI thread
        assert threads and threads[0] is not threading.main_thread()


async def test_chat_check_answered_after_leaving_the_dashboard_opens_nothing_then_a_opens_it(
    populated_home, app_factory, monkeypatch
):
    """The check finds an adapter, but the user opened the task screen meanwhile: no chat opens, not
    even when the user is back before the answer; `a` answered on the dashboard opens it."""
    import threading
    from pathlib import Path

    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db
    from tunequeue.tui.screens import chat
    from tunequeue.tui.screens.job import JobScreen

    db = open_db()
    run_dir = Path(jobs.get(db, populated_home.succeeded).run_dir)
    db.conn.close()
    (run_dir / "adapter_config.json").write_text("{}")
    release, answers = threading.Event(), []
    real_chat_target = chat.chat_target

    def slow_chat_target(job):
        assert release.wait(120), "the test never let the check finish"
        answers.append(real_chat_target(job))
        return answers[-1]

    monkeypatch.setattr(chat, "chat_target", slow_chat_target)
    app = app_factory(open_job=populated_home.succeeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # the answer comes while the task screen is on top
        await pilot.press("a")
        await pilot.press("a")  # a second press while the check runs starts no second check
        await pilot.press("t")
        await wait_for_screen(pilot, JobScreen)
        release.set()
        await wait_until(pilot, lambda: answers, what="the check's answer")
        await settle(pilot)
        assert len(answers) == 1 and answers[0].adapter == str(run_dir)
        assert isinstance(app.screen, JobScreen) and not app._notifications
        await pilot.press("escape")
        await wait_for_screen(pilot, DashboardScreen)
        # the answer comes after the user went to the task screen and back
        release.clear()
        await pilot.press("a")
        await pilot.press("t")
        await wait_for_screen(pilot, JobScreen)
        await pilot.press("escape")
        await wait_for_screen(pilot, DashboardScreen)
        release.set()
        await wait_until(pilot, lambda: len(answers) == 2, what="the second answer")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen) and not app._notifications
        # `a` on the dashboard, answered there: the adapter being there, the chat opens
        await pilot.press("a")
        chat_screen = await wait_for_screen(pilot, ChatScreen)
        assert len(answers) >= 3  # the chat screen itself checks once more when it loads
        assert chat_screen.job_id == populated_home.succeeded
