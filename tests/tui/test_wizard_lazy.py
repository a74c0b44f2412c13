"""The wizard builds only what is shown: step 1 with the screen, a later step under a loading indicator
when first shown, a row's message line once there is a message."""

from __future__ import annotations

import pytest
from textual.widgets import Input, LoadingIndicator
from tq_tui_testkit import wait_until, wizard_ready

from tunequeue.tui.app import make_app
from tunequeue.tui.screens.wizard import PAGES, WizardScreen
from tunequeue.tui.widgets.fields import FieldEditor

SIZE = (80, 24)
FILLED = {"task_name": "lazy-task", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}
pytestmark = pytest.mark.anyio


async def open_wizard(pilot, screen: WizardScreen) -> WizardScreen:
    pilot.app.push_screen(screen)
    return await wizard_ready(pilot)


async def test_only_step_one_exists_when_the_wizard_opens(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen) and app.screen.ready
                         and not app.screen.keys_held, what="the wizard")
        screen = app.screen
        pages = [page.id for page in screen.query("#wizard-pages > *")]
        assert pages == ["page-basic"]
        assert not screen.query(LoadingIndicator), "a new task has nothing to read: no loading indicator"
        assert app.focused is screen.query_one("#edit-task_name", Input)
        # no row has a problem yet, so no row has a message line
        assert not screen.query(".field-message")


async def test_a_step_shown_first_has_a_loading_indicator_until_its_rows_are_built(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_wizard(pilot, WizardScreen(values=FILLED))
        screen.hold_keys()
        await screen.goto_page(1)
        page = screen.query_one("#page-task")
        assert screen.page == 1 and screen.keys_held
        assert list(page.query(LoadingIndicator)), "the new page shows a loading indicator"
        assert not list(page.query(FieldEditor)), "its rows are built after the indicator was painted"
        await wait_until(pilot, lambda: not screen.keys_held, what="the step's rows")
        assert not list(page.query(LoadingIndicator))
        assert [row.key for row in page.query(FieldEditor)][:2] == ["accelerator", "gpu_count"]
        assert app.focused is not None and page in app.focused.ancestors
        # a page already built is shown at once
        screen.hold_keys()
        await screen.goto_page(0)
        await wait_until(pilot, lambda: not screen.keys_held, what="step 1 again")
        assert screen.page == 0 and not list(screen.query(".page-loading"))
        assert [page.id for page in screen.query("#wizard-pages > *")] == ["page-basic", "page-task"]


async def test_every_page_is_built_once_and_the_review_checks_the_whole_task(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_wizard(pilot, WizardScreen(values=FILLED))
        for index in range(1, len(PAGES)):
            await pilot.press("ctrl+n")
            await wait_until(pilot, lambda i=index: screen.page == i and not screen.keys_held,
                             what=f"page {PAGES[index]}")
        await wait_until(pilot, lambda: not screen.query_one("#review-loading").display, what="the review")
        assert [page.id for page in screen.query("#wizard-pages > *")] == [f"page-{p}" for p in PAGES]
        assert "task_name: lazy-task" in str(screen.query_one("#review-yaml").render())
        rows = list(screen.query(FieldEditor))
        assert len({row.key for row in rows}) == len(rows), "no row was built twice"
        assert {row.key for row in rows} >= {"task_name", "learning_rate", "logging_steps"}


async def test_a_message_line_comes_with_the_first_problem_and_stays_for_the_next(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_wizard(pilot, WizardScreen(values=FILLED))
        await pilot.press("ctrl+n", "ctrl+n")
        await wait_until(pilot, lambda: screen.page == 2 and not screen.keys_held, what="step 3")
        row = screen.query_one("#field-learning_rate", FieldEditor)
        assert not row.query(".field-message")
        field = row.query_one(Input)
        field.focus()
        field.value = "0.5"
        await wait_until(pilot, lambda: row.error is not None, what="the error")
        [line] = row.query(".field-message")
        assert line.has_class("-error") and "0.5" in str(line.render())
        field.value = "0.005"
        await wait_until(pilot, lambda: row.error is None and row.warning is not None, what="the warning")
        assert row.query_one(".field-message") is line
        assert line.has_class("-warning") and not line.has_class("-error")
        field.value = "0.0001"
        await wait_until(pilot, lambda: row.warning is None, what="no problem")
        assert not line.has_class("-warning") and not line.has_class("-error")
        assert not line.display
