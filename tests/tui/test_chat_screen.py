"""Chat screen: `a` on a finished LoRA job's dashboard streams replies of the real trained adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
from tq_tui_testkit import FIXED_NOW, settle

from tunequeue.tui.screens.chat import UI_MAX_NEW_TOKENS, ChatScreen, chat_target
from tunequeue.tui.screens.dashboard import DashboardScreen

pytestmark = pytest.mark.anyio

TINY_LORA_TASK = """\
task_name: chat-lora
model_name_or_path: tunequeue/tiny-llama
stage: sft
finetuning_type: lora
template: qwen
dataset: demo_alpaca
cutoff_len: 64
max_samples: 4
per_device_train_batch_size: 2
num_train_epochs: 1
learning_rate: 0.001
lora_rank: 4
logging_steps: 1
save_steps: 1000
max_new_tokens: 4096
do_sample: false
"""


def _finished_lora_job() -> int:
    """Train the tiny model with LoRA for two steps in a job's run dir and mark the job succeeded."""
    import torch

    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db
    from tunequeue.train.runtime import run_task_file

    torch.set_num_threads(1)
    db = open_db()
    try:
        job = jobs.submit(db, task_yaml=TINY_LORA_TASK, name="chat-lora", gpus=0)
        jobs.claim(db, job.id, [], [])
        run_dir = Path(job.run_dir)
        run_dir.mkdir(parents=True)
        (run_dir / "task.yaml").write_text(TINY_LORA_TASK)
        jobs.mark_running(db, job.id, 999_010, 999_010, FIXED_NOW)
        assert run_task_file(run_dir / "task.yaml") == 0
        assert (run_dir / "adapter_config.json").is_file()
        jobs.finish(db, job.id, exit_code=0)
        return job.id
    finally:
        db.conn.close()


async def _wait_for(pilot, condition, seconds: float = 60.0) -> bool:
    for _ in range(int(seconds / 0.1)):
        if condition():
            return True
        await pilot.pause(0.1)
    return condition()


@pytest.mark.slow
async def test_chat_with_a_trained_adapter_streams_a_reply(tq_home, app_factory):
    job_id = _finished_lora_job()
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
        assert await _wait_for(pilot, lambda: screen.session is not None), screen.transcript_lines()
        assert screen.transcript_lines()[-1].startswith("Model loaded from ")

        await pilot.press(*"hello")
        await pilot.press("enter")
        assert await _wait_for(pilot, lambda: not screen.replying)
        lines = screen.transcript_lines()
        assert lines[-2] == "You: hello"
        reply = lines[-1].removeprefix("Assistant: ")
        assert lines[-1].startswith("Assistant: ") and reply.strip()
        assert reply != "(empty reply)"
        assert screen.session.history[-1] == {"role": "assistant", "content": screen.reply_text.strip()}
        assert len(screen.session.history) == 2

        await pilot.press("ctrl+l")
        await pilot.pause()
        assert screen.session.history == []
        assert screen.transcript_lines() == ["History cleared."]

        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is dashboard


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
