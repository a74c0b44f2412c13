"""Pilot tests of the task wizard: the keyboard walk from the queue screen to a queued job, bound
errors blocking Next, warnings passing, presets filling the rows, and editing a queued job."""

from __future__ import annotations

import pytest
import yaml
from textual.widgets import Input
from tq_storage_testkit import fill_disk, mounted_small_disk
from tq_tui_testkit import wait_until, wizard_ready

from tunequeue.core.paths import DATA_DIR
from tunequeue.jobqueue import db as jobdb
from tunequeue.jobqueue import jobs
from tunequeue.tui.app import make_app
from tunequeue.tui.screens.wizard import PAGES, STEPS, WizardScreen, wizard_rows
from tunequeue.tui.widgets.fields import FieldEditor

SIZE = (80, 24)
pytestmark = pytest.mark.anyio


@pytest.fixture
def home(tq_home):
    """A fresh tunequeue home (from the tui conftest: temp dir, two simulated GPUs, English)."""
    return tq_home


def queued_jobs() -> list[jobs.Job]:
    database = jobdb.open_db()
    try:
        return jobs.list_jobs(database)
    finally:
        database.conn.close()


async def open_wizard(pilot) -> WizardScreen:
    await pilot.press("n")
    return await wizard_ready(pilot)


def review_shown(screen: WizardScreen) -> bool:
    """The review's checks finished (or the wizard is gone)."""
    return not screen.is_attached or not screen.query_one("#review-loading").display


async def submit(pilot, screen: WizardScreen) -> None:
    """Press ^s on the review and wait until its checks ran (and the job was written, if it passed)."""
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: review_shown(screen), what="the submit checks")


async def to_review(pilot) -> None:
    """Press Next through the five steps to the review."""
    for _ in range(5):
        await next_page(pilot)


async def new_task_at_review(pilot, name: str) -> WizardScreen:
    """Open the wizard with `n`, fill step 1 for a task called ``name`` and go on to the review."""
    screen = await open_wizard(pilot)
    await fill_basic(pilot, name)
    await to_review(pilot)
    return screen


async def reach_row(screen: WizardScreen, key: str) -> FieldEditor:
    """Build the step or advanced section holding ``key`` (rows are built when first shown)."""
    place = wizard_rows()[key][1]
    if place in STEPS:
        await screen.build_page(place)
    else:
        await screen.build_section(place)
    return screen.query_one(f"#field-{key}", FieldEditor)


async def tab_to(pilot, key: str, limit: int = 40) -> None:
    """Press Tab until the editor of ``key`` has focus (as a user would)."""
    for _ in range(limit):
        focused = pilot.app.focused
        if focused is not None and focused.id == f"edit-{key}":
            return
        await pilot.press("tab")
    raise AssertionError(f"Tab never reached {key}; focus is on {pilot.app.focused!r}")


async def type_into(pilot, key: str, text: str) -> None:
    """Tab to an Input row, clear it and type ``text``."""
    await tab_to(pilot, key)
    focused = pilot.app.focused
    assert isinstance(focused, Input)
    await pilot.press("end", *(["backspace"] * len(focused.value)))
    await pilot.press(*text)
    await pilot.pause()


async def choose(pilot, key: str, value: str) -> None:
    """Tab to a Select row, open it, move to ``value`` with the arrow keys and pick it."""
    await tab_to(pilot, key)
    select = pilot.app.focused
    options = [option_value for _label, option_value in select._options]
    current = options.index(select.value) if select.value in options else 0
    target = options.index(value)
    await pilot.press("enter")
    await pilot.pause()
    step = "down" if target >= current else "up"
    await pilot.press(*([step] * abs(target - current)), "enter")
    await pilot.pause()
    assert select.value == value


async def next_page(pilot) -> None:
    screen = pilot.app.screen
    await pilot.press("ctrl+n")
    await wait_until(pilot, lambda: not screen.keys_held, what="the next step")
    if PAGES[screen.page] == "review":
        await wait_until(pilot, lambda: review_shown(screen), what="the review")


def page_of(screen: WizardScreen) -> str:
    return PAGES[screen.page]


async def fill_basic(pilot, name: str = "wiz-e2e") -> None:
    await type_into(pilot, "task_name", name)
    await type_into(pilot, "model_name_or_path", "tunequeue/tiny-llama")
    await type_into(pilot, "dataset", "demo_alpaca")


async def test_keyboard_walk_submits_exactly_the_typed_values(home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_wizard(pilot)
        await fill_basic(pilot)
        await choose(pilot, "stage", "sft")
        await next_page(pilot)
        assert page_of(screen) == "task"
        await type_into(pilot, "gpu_count", "2")
        await next_page(pilot)
        assert page_of(screen) == "hyper"
        await type_into(pilot, "learning_rate", "0.0002")
        await type_into(pilot, "num_train_epochs", "2")
        await choose(pilot, "compute_type", "fp32")
        await type_into(pilot, "cutoff_len", "512")
        await type_into(pilot, "per_device_train_batch_size", "4")
        await choose(pilot, "lr_scheduler_type", "linear")
        await next_page(pilot)
        assert page_of(screen) == "lora"
        await type_into(pilot, "lora_rank", "16")
        await type_into(pilot, "lora_alpha", "32")
        await type_into(pilot, "lora_dropout", "0.05")
        await choose(pilot, "rope_scaling", "linear")
        await next_page(pilot)
        assert page_of(screen) == "other"
        await type_into(pilot, "logging_steps", "5")
        await type_into(pilot, "save_steps", "100")
        await choose(pilot, "optim", "adafactor")
        await next_page(pilot)
        assert page_of(screen) == "review"
        review_yaml = str(screen.query_one("#review-yaml").render())
        assert "task_name: wiz-e2e" in review_yaml
        await submit(pilot, screen)
        assert not isinstance(app.screen, WizardScreen)

    [job] = queued_jobs()
    assert job.name == "wiz-e2e"
    assert job.state == jobs.JobState.QUEUED
    assert job.requested_gpus == 2
    task = yaml.safe_load(job.task_yaml)
    expected = {
        "task_name": "wiz-e2e",
        "model_name_or_path": "tunequeue/tiny-llama",
        "dataset": "demo_alpaca",
        "finetuning_type": "lora",
        "stage": "sft",
        "gpu_count": 2,
        "learning_rate": 0.0002,
        "num_train_epochs": 2.0,
        "compute_type": "fp32",
        "cutoff_len": 512,
        "per_device_train_batch_size": 4,
        "lr_scheduler_type": "linear",
        "lora_rank": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "rope_scaling": "linear",
        "logging_steps": 5,
        "save_steps": 100,
        "optim": "adafactor",
    }
    assert {key: task.get(key) for key in expected} == expected


async def test_out_of_bounds_blocks_next_and_warning_passes(home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_wizard(pilot)
        await next_page(pilot)
        assert page_of(screen) == "basic", "required fields left empty must block Next"
        assert "task_name" in str(screen.query_one("#wizard-status").render())
        await fill_basic(pilot)
        await next_page(pilot)
        await next_page(pilot)
        assert page_of(screen) == "hyper"

        await type_into(pilot, "learning_rate", "0.5")
        await next_page(pilot)
        assert page_of(screen) == "hyper"
        row = screen.query_one("#field-learning_rate", FieldEditor)
        message = str(row.query_one(".field-message").render())
        assert "0.5" in message and "0.01" in message
        assert row.error

        await type_into(pilot, "learning_rate", "abc")
        await next_page(pilot)
        assert page_of(screen) == "hyper"
        assert "number" in str(row.query_one(".field-message").render())

        await type_into(pilot, "learning_rate", "0.005")
        assert row.error is None and row.warning
        assert "recommended" in str(row.query_one(".field-message").render())
        await next_page(pilot)
        assert page_of(screen) == "lora"


async def test_lora_rows_follow_the_method_and_learning_rate_is_resuggested(home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_wizard(pilot)
        await fill_basic(pilot)
        await choose(pilot, "finetuning_type", "full")
        lr = await reach_row(screen, "learning_rate")
        assert lr.read() == pytest.approx(1e-5)
        await next_page(pilot)
        await next_page(pilot)
        await next_page(pilot)
        assert page_of(screen) == "lora"
        assert not screen.query_one("#field-lora_rank").display
        assert screen.query_one("#field-quantization_bit").display
        assert screen.query_one("#lora-hidden-note").display


async def test_edit_queued_job_updates_its_task(home):
    database = jobdb.open_db()
    task = {"task_name": "old-name", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca",
            "learning_rate": 0.0003}
    job = jobs.submit(database, task_yaml=yaml.safe_dump(task), name="old-name")
    database.conn.close()

    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        results = []
        app.push_screen(WizardScreen(edit_job_id=job.id), results.append)
        screen = await wizard_ready(pilot)
        assert (await reach_row(screen, "learning_rate")).read() == pytest.approx(0.0003)
        await type_into(pilot, "task_name", "new-name")
        await to_review(pilot)
        assert page_of(screen) == "review"
        await submit(pilot, screen)
        assert results == [job.id]

    [updated] = queued_jobs()
    assert updated.id == job.id and updated.name == "new-name"
    stored = yaml.safe_load(updated.task_yaml)
    assert stored["task_name"] == "new-name" and stored["learning_rate"] == 0.0003


async def test_clone_prefills_from_a_previous_job(home):
    database = jobdb.open_db()
    task = {"task_name": "first", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca",
            "lora_rank": 4}
    job = jobs.submit(database, task_yaml=yaml.safe_dump(task), name="first")
    database.conn.close()
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(WizardScreen(clone_job_id=job.id))
        screen = await wizard_ready(pilot)
        assert screen.query_one("#field-task_name", FieldEditor).read() == "first-copy"
        assert (await reach_row(screen, "lora_rank")).read() == 4


async def test_preset_given_at_start_fills_the_rows(home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(WizardScreen(preset="default/sft-qlora"))
        screen = await wizard_ready(pilot)

        assert (await reach_row(screen, "lora_rank")).read() == 16
        assert (await reach_row(screen, "quantization_bit")).read() == 4
        assert (await reach_row(screen, "learning_rate")).read() == pytest.approx(2e-4)
        assert (await reach_row(screen, "optim")).read() == "paged_adamw_32bit"
        assert screen.collect()["preset_ref"] == "default/sft-qlora"


async def test_preset_picker_on_step_three_fills_the_rows_and_is_recorded(home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_wizard(pilot)
        await fill_basic(pilot, "with-preset")
        await next_page(pilot)
        await next_page(pilot)
        assert page_of(screen) == "hyper"
        await tab_to_id(pilot, "preset-select")
        await pilot.press("enter")
        await pilot.pause()
        # the list: blank prompt, dpo-lora, kto-lora, sft-full, sft-lora, sft-qlora
        await pilot.press("down", "down", "down", "down", "down", "enter")
        await pilot.pause()
        assert screen.preset_ref == "default/sft-qlora"
        assert (await reach_row(screen, "lora_alpha")).read() == 32
        for _ in range(3):
            await next_page(pilot)
        assert page_of(screen) == "review"
        await submit(pilot, screen)

    [job] = queued_jobs()
    task = yaml.safe_load(job.task_yaml)
    assert job.preset_ref == "default/sft-qlora"
    assert task["quantization_bit"] == 4 and task["lora_rank"] == 16


async def test_review_saves_yaml_and_preset(home, tmp_path):
    from tunequeue.core import presets

    app = make_app(lang="en")
    target = tmp_path / "out" / "task.yaml"
    async with app.run_test(size=SIZE) as pilot:
        values = {"task_name": "save-me", "model_name_or_path": "tunequeue/tiny-llama",
                  "dataset": "demo_alpaca", "lora_rank": 12}
        app.push_screen(WizardScreen(values=values))
        screen = await wizard_ready(pilot)
        await to_review(pilot)
        assert page_of(screen) == "review"
        estimate = str(screen.query_one("#review-estimate").render())
        assert "GiB" in estimate and "simulated" in estimate

        await tab_to_id(pilot, "save-yaml")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("ctrl+u", *str(target), "enter")
        await pilot.pause()
        assert yaml.safe_load(target.read_text())["lora_rank"] == 12

        await tab_to_id(pilot, "save-preset")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("ctrl+u", *"team/rank-twelve", "enter")
        await pilot.pause()
    preset = presets.get_preset("team/rank-twelve")
    assert preset.values["lora_rank"] == 12
    assert "task_name" not in preset.values and "model_name_or_path" not in preset.values


async def tab_to_id(pilot, widget_id: str, limit: int = 40) -> None:
    for _ in range(limit):
        focused = pilot.app.focused
        if focused is not None and focused.id == widget_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"Tab never reached #{widget_id}")


async def test_language_switch_rerenders_the_wizard(home):
    app = make_app(lang="en")
    async with app.run_test(size=(130, 30)) as pilot:
        screen = await open_wizard(pilot)
        assert screen.has_class("-wide"), "the help pane goes beside the form on wide terminals"
        app.set_language("zh", remember=False)
        await pilot.pause()
        assert "新建任务" in str(screen.query_one("#wizard-title").render())
        hint = str(screen.query_one("#field-task_name").query_one(".field-hint").render())
        assert "任务名称" in hint
        assert "任务名称" in str(screen.query_one("#wizard-help").render())


async def test_a_name_still_queued_is_refused_and_an_edit_keeps_its_own(home):
    database = jobdb.open_db()
    task = {"task_name": "taken", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}
    job = jobs.submit(database, task_yaml=yaml.safe_dump(task), name="taken")
    database.conn.close()
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await new_task_at_review(pilot, "taken")
        await submit(pilot, screen)
        assert app.screen is screen
        status = str(screen.query_one("#wizard-status").render())
        assert f"job {job.id} (queued) already has task_name 'taken'" in status
        assert [j.id for j in queued_jobs()] == [job.id]

        results = []
        app.pop_screen()
        app.push_screen(WizardScreen(edit_job_id=job.id), results.append)
        screen = await wizard_ready(pilot)
        await to_review(pilot)
        await submit(pilot, screen)
        assert results == [job.id]
    assert [(j.id, j.name) for j in queued_jobs()] == [(job.id, "taken")]


async def test_review_warns_when_the_model_has_no_chat_template(home, tmp_path):
    model = tmp_path / "plain-model"
    model.mkdir()
    (model / "tokenizer_config.json").write_text("{}", encoding="utf-8")
    config = (DATA_DIR / "tiny-llama" / "config.json").read_text(encoding="utf-8")
    (model / "config.json").write_text(config, encoding="utf-8")
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_wizard(pilot)
        await fill_basic(pilot, "no-template")
        await type_into(pilot, "model_name_or_path", str(model))
        await to_review(pilot)
        assert page_of(screen) == "review"
        warnings = str(screen.query_one("#review-warnings").render())
        assert "has no chat template" in warnings and "set template" in warnings
        estimate = str(screen.query_one("#review-estimate").render())
        assert "total steps: " in estimate and "training examples" in estimate


async def open_section(pilot, group_id: str, limit: int = 60) -> None:
    """Tab to the title of an advanced section on step 5 and open it with Enter."""
    for _ in range(limit):
        focused = pilot.app.focused
        if focused is not None and focused.parent is not None and focused.parent.id == f"advanced-{group_id}":
            await pilot.press("enter")
            await pilot.pause()
            assert not focused.parent.collapsed
            return
        await pilot.press("tab")
    raise AssertionError(f"Tab never reached the {group_id} section title")


def shown_sections(screen: WizardScreen) -> set[str]:
    from textual.widgets import Collapsible

    return {
        section.id.removeprefix("advanced-")
        for section in screen.query(Collapsible)
        if section.id and section.id.startswith("advanced-") and section.display
    }


async def test_preference_section_sets_dpo_loss_and_beta_of_the_queued_task(home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_wizard(pilot)
        await fill_basic(pilot, "wiz-dpo")
        await type_into(pilot, "dataset", "demo_pairwise")
        assert "preference" not in shown_sections(screen)
        await choose(pilot, "stage", "dpo")
        for _ in range(4):
            await next_page(pilot)
        assert page_of(screen) == "other"
        assert shown_sections(screen) == {"lora_extras", "preference", "dataset", "output", "eval", "export"}
        assert screen.query_one("#advanced-preference").collapsed, "sections start collapsed"
        await open_section(pilot, "preference")
        await type_into(pilot, "pref_beta", "0.2")
        await choose(pilot, "pref_loss", "orpo")
        await next_page(pilot)
        assert page_of(screen) == "review"
        review_yaml = str(screen.query_one("#review-yaml").render())
        assert "pref_loss: orpo" in review_yaml and "pref_beta: 0.2" in review_yaml
        await submit(pilot, screen)
        assert not isinstance(app.screen, WizardScreen)

    [job] = queued_jobs()
    task = yaml.safe_load(job.task_yaml)
    assert task["stage"] == "dpo" and task["dataset"] == "demo_pairwise"
    assert task["pref_loss"] == "orpo" and task["pref_beta"] == 0.2
    # untouched advanced rows keep their defaults without being spelled out
    assert "export_size" not in task and "simpo_gamma" not in task
    assert "packing" not in task, "packing left unset stays unset (auto), not false"


async def test_freeze_task_shows_the_freeze_section_and_its_bounds_block_next(home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_wizard(pilot)
        await fill_basic(pilot, "wiz-freeze")
        await choose(pilot, "finetuning_type", "freeze")
        for _ in range(4):
            await next_page(pilot)
        assert page_of(screen) == "other"
        shown = shown_sections(screen)
        assert "freeze" in shown and "lora_extras" not in shown
        assert not {"galore", "badam", "preference"} & shown
        assert {"dataset", "output", "eval", "export"} <= shown

        await open_section(pilot, "freeze")
        await type_into(pilot, "freeze_trainable_layers", "0")
        await next_page(pilot)
        assert page_of(screen) == "other"
        assert "freeze_trainable_layers" in str(screen.query_one("#wizard-status").render())
        row = screen.query_one("#field-freeze_trainable_layers", FieldEditor)
        assert "must not be 0" in str(row.query_one(".field-message").render())

        await type_into(pilot, "freeze_trainable_layers", "4")
        await next_page(pilot)
        assert page_of(screen) == "review"
        assert "freeze_trainable_layers: 4" in str(screen.query_one("#review-yaml").render())

        # back to LoRA: the freeze section goes, LoRA extras come, and the freeze value is dropped
        await pilot.press("ctrl+p", "ctrl+p", "ctrl+p", "ctrl+p", "ctrl+p")
        await pilot.pause()
        await choose(pilot, "finetuning_type", "lora")
        shown = shown_sections(screen)
        assert "lora_extras" in shown and "freeze" not in shown
        assert "freeze_trainable_layers" not in screen.collect()


async def test_advanced_values_from_the_start_fill_rows_and_a_bad_one_opens_its_section(home):
    values = {"task_name": "wiz-ppo", "model_name_or_path": "tunequeue/tiny-llama",
              "dataset": "demo_pairwise", "stage": "ppo", "reward_model": "/models/rm", "pref_beta": 0.3,
              "ppo_epochs": 0, "val_size": 0.1, "export_dir": "/tmp/exported"}
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(WizardScreen(values=values))
        screen = await wizard_ready(pilot)
        assert (await reach_row(screen, "pref_beta")).read() == pytest.approx(0.3)
        assert (await reach_row(screen, "export_dir")).read() == "/tmp/exported"
        for _ in range(4):
            await next_page(pilot)
        assert page_of(screen) == "other"
        section = screen.query_one("#advanced-preference")
        assert section.collapsed
        await next_page(pilot)
        assert page_of(screen) == "other", "ppo_epochs 0 is out of bounds"
        await pilot.pause()
        assert not section.collapsed, "the section holding the bad row opens"
        assert app.focused is not None and app.focused.id == "edit-ppo_epochs"
        await pilot.press("ctrl+u", "2")
        await next_page(pilot)
        assert page_of(screen) == "review"
        task = yaml.safe_load(str(screen.query_one("#review-yaml").render()).split("\n", 1)[1])
        assert task["ppo_epochs"] == 2 and task["reward_model"] == "/models/rm"
        assert task["export_dir"] == "/tmp/exported"


async def test_a_full_disk_refuses_the_submit_in_one_line_and_queues_nothing(home, tmp_path, monkeypatch):
    with mounted_small_disk(tmp_path) as disk:
        root = disk / "home"
        root.mkdir(mode=0o700)
        monkeypatch.setenv("TUNEQUEUE_HOME", str(root))
        app = make_app(lang="en")
        async with app.run_test(size=SIZE) as pilot:
            screen = await new_task_at_review(pilot, "on-a-full-disk")
            filler = fill_disk(disk)
            await submit(pilot, screen)
            assert app.screen is screen
            status = screen.query_one("#wizard-status")
            text = str(status.render())
            assert status.has_class("-error")
            assert text.startswith(f"the disk holding {root} is full"), text
            assert "a new job cannot start; free some space and try again" in text
        filler.unlink()
        assert queued_jobs() == []


async def test_the_job_is_written_off_the_ui_thread_and_a_failed_write_keeps_the_wizard(home, monkeypatch):
    """Writing may wait on the queue's lock or copy a dataset: it runs in a worker; a write that fails
    leaves the wizard open with one line and the submit button on again."""
    import threading

    from tunequeue.jobqueue import submission

    threads = []
    real_submit = submission.submit_task

    def failing_once(*args, **kwargs):
        threads.append(threading.current_thread())
        if len(threads) == 1:
            raise jobdb.QueueLocked("the queue stayed locked by another process; try again")
        return real_submit(*args, **kwargs)

    monkeypatch.setattr(submission, "submit_task", failing_once)
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await new_task_at_review(pilot, "off-the-loop")
        await submit(pilot, screen)
        assert app.screen is screen
        assert "stayed locked" in str(screen.query_one("#wizard-status").render())
        assert not screen.query_one("#submit").disabled
        assert queued_jobs() == []
        await submit(pilot, screen)
        assert not isinstance(app.screen, WizardScreen)
    assert [job.name for job in queued_jobs()] == ["off-the-loop"]
    assert threads and all(thread is not threading.main_thread() for thread in threads)
