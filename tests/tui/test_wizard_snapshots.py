"""Snapshots of every wizard step and the review at 80×24 in English, and of the wizard in Chinese."""

from __future__ import annotations

import pytest
from textual.widgets import Input
from tq_tui_testkit import settle

from tunequeue.tui.screens.wizard import WizardScreen

SIZE = (80, 24)
FILLED = {
    "task_name": "snap-task",
    "model_name_or_path": "tunequeue/tiny-llama",
    "dataset": "demo_alpaca",
    "template": "qwen",
}


def walk(steps: int, values: dict | None = None, preset: str | None = None):
    """run_before hook: open a wizard holding ``values`` and press Next ``steps`` times."""

    async def run_before(pilot) -> None:
        if values is None and preset is None:
            await pilot.press("n")
        else:
            pilot.app.push_screen(WizardScreen(values=values, preset=preset))
        await settle(pilot)
        for _ in range(steps):
            await pilot.press("ctrl+n")
            await settle(pilot)
        await freeze_cursors(pilot)

    return run_before


async def freeze_cursors(pilot) -> None:
    """Stop the text cursors blinking so that every snapshot catches the same frame."""
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause()


def test_step1_new_task(snap_compare, tq_home, app_factory):
    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=walk(0))


def test_step1_required_fields_block_next(snap_compare, tq_home, app_factory):
    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=walk(1))


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_steps_2_to_5(snap_compare, tq_home, app_factory, step):
    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=walk(step, FILLED))


def test_step3_out_of_bounds_and_warning(snap_compare, tq_home, app_factory):
    values = {**FILLED, "learning_rate": 0.5, "gradient_accumulation_steps": 16}
    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=walk(3, values))


def test_review(snap_compare, tq_home, app_factory):
    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=walk(5, FILLED, "default/sft-qlora"))


def test_step1_chinese(snap_compare, tq_home, app_factory):
    assert snap_compare(app_factory(lang="zh"), terminal_size=SIZE, run_before=walk(0, FILLED))


def test_step3_chinese(snap_compare, tq_home, app_factory):
    assert snap_compare(app_factory(lang="zh"), terminal_size=SIZE, run_before=walk(2, FILLED))


def test_review_chinese(snap_compare, tq_home, app_factory):
    assert snap_compare(app_factory(lang="zh"), terminal_size=SIZE, run_before=walk(5, FILLED))


def test_step5_advanced_preference_section_open(snap_compare, tq_home, app_factory):
    """Step 5 of a dpo task with the RLHF / preference section opened (the step scrolls to it)."""
    values = {**FILLED, "dataset": "demo_pairwise", "stage": "dpo"}

    async def run_before(pilot) -> None:
        await walk(4, values)(pilot)
        pilot.app.screen.query_one("#advanced-preference").collapsed = False
        await settle(pilot)
        pilot.app.screen.query_one("#edit-pref_loss").focus()
        await settle(pilot)

    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=run_before)


def test_step5_advanced_chinese(snap_compare, tq_home, app_factory):
    assert snap_compare(app_factory(lang="zh"), terminal_size=SIZE, run_before=walk(4, FILLED))
