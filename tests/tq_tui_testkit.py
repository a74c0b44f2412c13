"""Helpers of the TUI tests: fixed clock, the real tiny run's logs, a populated queue, settling a Pilot.

Test modules import these by name (`from tq_tui_testkit import settle`); the fixtures that wrap
them live in `tests/tui/conftest.py`. `build_populated_home` builds a real SQLite queue through
`tunequeue.jobqueue` (submit, claim, mark_running, finish, hold) and then pins every timestamp to
`FIXED_NOW` so that snapshots never change. The metrics come from `tests/fixtures/tui/trainer_log.jsonl`,
written by a real tiny training run of the bundled model (see `scripts/tui_fixture.py`), ingested with
`jobqueue.metrics.add_metrics`.

Waiting: tests never sleep a fixed time. `wait_until` polls a condition between Pilot pauses,
`wait_for_screen` waits until a screen of a given type is on top, `wait_for_file` waits for a file (and
optionally a text in it), all with generous limits so that a busy two-core machine passes too.
`generous_screen_wait` raises the 30 s limit Textual's Pilot gives a screen to process its pending
messages (`WaitForScreenTimeout` under load); `tests/tui/conftest.py` applies it to every TUI test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tui"
TRAINER_LOG = FIXTURES / "trainer_log.jsonl"
TRAIN_LOG = FIXTURES / "train.log"
FIXED_NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
SIM_UUID = "GPU-00000000-0000-4000-8000-sim{:09d}"
WAIT_SECONDS = 90.0  # how long a test waits for a condition before it fails
SCREEN_WAIT_SECONDS = 180.0  # how long Pilot lets a screen work through its pending messages
POLL_SECONDS = 0.05

T = TypeVar("T")


def fixed_clock() -> float:
    """The clock every snapshot test runs with."""
    return FIXED_NOW


def trainer_rows() -> list[dict]:
    """The trainer_log.jsonl rows of the real tiny run."""
    return [json.loads(line) for line in TRAINER_LOG.read_text().splitlines() if line.strip()]


@dataclass
class PopulatedHome:
    """Ids of the jobs of `populated_home`, by what they show."""

    home: Path
    succeeded: int
    running: int
    queued: int
    held: int
    failed: int


TASK_YAML = """\
task_name: {name}
model_name_or_path: tunequeue/tiny-llama
stage: sft
finetuning_type: lora
template: qwen
dataset: demo_alpaca
learning_rate: 0.001
num_train_epochs: 1
"""


def _task(name: str) -> str:
    return TASK_YAML.format(name=name)


def _pin_times(db, job_id: int, **times: float | None) -> None:
    from tunequeue.jobqueue.db import write_txn

    columns = ", ".join(f"{key} = ?" for key in times)
    with write_txn(db) as conn:
        conn.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*times.values(), job_id))
        conn.execute("UPDATE job_events SET time = ? WHERE job_id = ?", (FIXED_NOW - 4000, job_id))


def _gpu_samples(index: int, job_id: int | None, count: int, end: float) -> list[dict]:
    samples = []
    for i in range(count):
        samples.append(
            {
                "time": end - (count - 1 - i) * 2.0,
                "uuid": SIM_UUID.format(index),
                "gpu_index": index,
                "utilization": float((i * 37) % 100) if job_id else 0.0,
                "memory_used_mib": 6000.0 + 150.0 * (i % 7) if job_id else 0.0,
                "memory_total_mib": 24576.0,
                "temperature": 55.0 + (i % 5),
                "power_w": 180.0 + 5 * (i % 4),
                "job_id": job_id,
                "simulated": True,
            }
        )
    return samples


def build_populated_home(home: Path) -> PopulatedHome:
    """Fill the queue of the current TUNEQUEUE_HOME (`home`) with the jobs `populated_home` describes."""
    from tunequeue.jobqueue import jobs, metrics
    from tunequeue.jobqueue.db import open_db

    rows = trainer_rows()
    db = open_db()
    try:
        done = jobs.submit(db, task_yaml=_task("lora-demo"), name="lora-demo")
        jobs.claim(db, done.id, [0], [SIM_UUID.format(0)])
        jobs.mark_running(db, done.id, 999_001, 999_001, FIXED_NOW - 3500)
        metrics.add_metrics(db, done.id, 1, rows)
        metrics.add_gpu_samples(db, _gpu_samples(0, done.id, 30, FIXED_NOW - 3300))
        jobs.finish(db, done.id, exit_code=0)
        _pin_times(
            db,
            done.id,
            submitted_at=FIXED_NOW - 3600,
            started_at=FIXED_NOW - 3500,
            finished_at=FIXED_NOW - 3300,
            updated_at=FIXED_NOW - 3300,
        )

        running = jobs.submit(db, task_yaml=_task("sft-live"), name="sft-live")
        jobs.claim(db, running.id, [1], [SIM_UUID.format(1)])
        jobs.mark_running(db, running.id, 999_002, 999_002, FIXED_NOW - 125)
        half = rows[: max(2, len(rows) // 2)]
        metrics.add_metrics(db, running.id, 1, half)
        metrics.add_gpu_samples(db, _gpu_samples(1, running.id, 40, FIXED_NOW - 1))
        metrics.add_gpu_samples(db, _gpu_samples(0, None, 40, FIXED_NOW - 1))
        _pin_times(
            db,
            running.id,
            submitted_at=FIXED_NOW - 200,
            started_at=FIXED_NOW - 120,
            updated_at=FIXED_NOW - 120,
        )

        queued = jobs.submit(db, task_yaml=_task("full-ft-big"), name="full-ft-big", gpus=2, priority=5)
        jobs.set_wait_reason(db, queued.id, "Resources (needs 2 GPUs, 1 free)")
        _pin_times(db, queued.id, submitted_at=FIXED_NOW - 100, updated_at=FIXED_NOW - 100)

        held = jobs.submit(db, task_yaml=_task("later-run"), name="later-run", hold=True)
        _pin_times(db, held.id, submitted_at=FIXED_NOW - 90, updated_at=FIXED_NOW - 90)

        failed = jobs.submit(db, task_yaml=_task("oom-run"), name="oom-run")
        jobs.claim(db, failed.id, [0], [SIM_UUID.format(0)])
        jobs.mark_running(db, failed.id, 999_003, 999_003, FIXED_NOW - 80)
        metrics.add_metrics(db, failed.id, 1, rows[:2])
        jobs.finish(db, failed.id, exit_code=1, reason="out of memory (CUDA out of memory)")
        _pin_times(
            db,
            failed.id,
            submitted_at=FIXED_NOW - 85,
            started_at=FIXED_NOW - 80,
            finished_at=FIXED_NOW - 60,
            updated_at=FIXED_NOW - 60,
        )
        all_jobs = {job.id: job for job in jobs.list_jobs(db)}
    finally:
        db.conn.close()

    full_log = TRAIN_LOG.read_text()
    done_dir = Path(all_jobs[done.id].run_dir)
    done_dir.mkdir(parents=True, exist_ok=True)
    (done_dir / "train.log").write_text(full_log)
    # the running job has written its log up to the last step it logged so far
    last_step = half[-1]["current_steps"]
    cut = full_log.index(f"step {last_step}/")
    running_dir = Path(all_jobs[running.id].run_dir)
    running_dir.mkdir(parents=True, exist_ok=True)
    (running_dir / "train.log").write_text(full_log[: full_log.index("\n", cut) + 1])
    failed_dir = Path(all_jobs[failed.id].run_dir)
    failed_dir.mkdir(parents=True, exist_ok=True)
    (failed_dir / "train.log").write_text(
        "loading model tunequeue/tiny-llama\n"
        "Traceback (most recent call last):\n"
        '  File "train.py", line 12, in <module>\n'
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
    )
    return PopulatedHome(home, done.id, running.id, queued.id, held.id, failed.id)


async def settle(pilot, rounds: int = 3) -> None:
    """Let thread workers finish and their messages be handled (a few rounds: reads start reads)."""
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def run_before_settled(pilot):
    """`snap_compare` hook: wait until the screen shows its data."""
    return settle(pilot)


async def wait_until(
    pilot,
    predicate: Callable[[], T],
    timeout: float = WAIT_SECONDS,
    what: str = "condition",
) -> T:
    """Let the app run until `predicate()` returns something truthy and return it; fail after `timeout` s.

    Between checks the Pilot pauses (pending messages are handled, timers fire), so screens can
    finish their reads. The failure names `what` and the last exception `predicate` raised, if any.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
        except Exception as error:  # noqa: BLE001 - a widget not mounted yet: keep waiting
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        await pilot.pause(POLL_SECONDS)


async def wizard_ready(pilot) -> Any:
    """Wait until the task wizard on top shows its first step and takes keys; return it."""
    from tunequeue.tui.screens.wizard import WizardScreen

    app = pilot.app
    await wait_until(
        pilot,
        lambda: isinstance(app.screen, WizardScreen) and app.screen.ready and not app.screen.keys_held,
        what="the wizard to open",
    )
    return app.screen


async def wait_for_screen(pilot, screen_type: type, timeout: float = WAIT_SECONDS) -> Any:
    """Wait until a `screen_type` screen is the app's current screen, and return it."""

    def on_top() -> Any:
        screen = pilot.app.screen
        return screen if isinstance(screen, screen_type) else None

    return await wait_until(pilot, on_top, timeout, what=f"{screen_type.__name__} on top")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = WAIT_SECONDS,
    what: str = "condition",
) -> T:
    """Outside an app: poll `predicate` until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_SECONDS)


def wait_for_file(path: Path, contains: str | None = None, timeout: float = WAIT_SECONDS) -> str:
    """Wait until `path` exists (and holds `contains`, when given); return its text."""
    found: list[str] = []

    def ready() -> bool:
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return False
        if contains is not None and contains not in text:
            return False
        found[:] = [text]
        return True

    wait_for(ready, timeout, f"{path}" + (f" to contain {contains!r}" if contains else ""))
    return found[0]


def generous_screen_wait(monkeypatch, limit: float = SCREEN_WAIT_SECONDS) -> None:
    """Give every Pilot at least `limit` seconds to let a screen process its pending messages.

    Textual's Pilot waits 30 s (its `_wait_for_screen`, called by `run_test`, `press`, `pause` and
    `click`) and raises `WaitForScreenTimeout` beyond; on a busy machine a screen that composes many
    widgets needs longer. Textual has no public setting for this limit, so the default is raised
    on the class for the test that asks; a Textual without the method is left as it is.
    """
    from textual.pilot import Pilot

    original = getattr(Pilot, "_wait_for_screen", None)
    if original is None:
        return

    async def patient(self, timeout: float = limit) -> bool:
        return await original(self, timeout=max(timeout, limit))

    monkeypatch.setattr(Pilot, "_wait_for_screen", patient)


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


def finished_model_job(task_yaml: str = TINY_LORA_TASK) -> int:
    """A succeeded job whose run dir holds a real LoRA adapter of the tiny model.

    The training runs in a child process (``python -m tunequeue.train``), so this process never
    imports torch; the job goes through the queue's states like a job the runner ran.
    """
    import os
    import subprocess
    import sys

    from tunequeue.jobqueue import jobs
    from tunequeue.jobqueue.db import open_db

    db = open_db()
    try:
        job = jobs.submit(db, task_yaml=task_yaml, name="chat-lora", gpus=0)
        jobs.claim(db, job.id, [], [])
        run_dir = Path(job.run_dir)
        run_dir.mkdir(parents=True)
        (run_dir / "task.yaml").write_text(task_yaml)
        jobs.mark_running(db, job.id, 999_010, 999_010, FIXED_NOW)
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
        subprocess.run(
            [sys.executable, "-m", "tunequeue.train", str(run_dir / "task.yaml")],
            check=True, cwd=run_dir, env=env, capture_output=True, timeout=600,
        )
        assert (run_dir / "adapter_config.json").is_file()
        jobs.finish(db, job.id, exit_code=0)
        return job.id
    finally:
        db.conn.close()


def key_event(key: str):
    """The Key event a terminal sends for ``key`` (a character or a key name such as "tab")."""
    from textual import events

    if len(key) == 1:
        names = {" ": "space", "/": "slash", "-": "minus", ".": "full_stop"}
        name = key if key.isalnum() else names.get(key, key)
        return events.Key(name, key)
    return events.Key(key, None)


def burst(pilot, *items) -> None:
    """Hand the app keys (strings) and pastes (`textual.events.Paste`) all at once, as a burst from a
    paste, a slow SSH link or a busy app arrives: nothing is handled before the last one is queued."""
    from textual import events

    for item in items:
        pilot.app.post_message(item if isinstance(item, events.Paste) else key_event(item))
