"""Keys arriving in one burst land in the field that has focus when they come: `abc`, Tab, `def` (and
the same as pastes) on every wizard step and in the preset editor; keys typed while the wizard opens
are kept; Esc asks before dropping edits; a block message goes once the marked field is fixed."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import Input
from tq_tui_testkit import burst, wait_until, wizard_ready

from tunequeue.tui.app import make_app
from tunequeue.tui.dialogs import ConfirmDialog
from tunequeue.tui.screens.presets import PresetEditScreen
from tunequeue.tui.screens.wizard import STEPS, WizardScreen

SIZE = (80, 24)
FILLED = {"task_name": "burst-task", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}
pytestmark = pytest.mark.anyio


async def ready(pilot, screen) -> None:
    await wait_until(pilot, lambda: pilot.app.screen is screen and not screen.keys_held, what="the screen")


def input_pair(screen, page) -> tuple[Input, Input]:
    """Two text fields of ``page`` that Tab moves between, first to second."""
    chain = [w for w in screen.focus_chain if page in w.ancestors]
    for first, second in zip(chain, chain[1:], strict=False):
        if isinstance(first, Input) and isinstance(second, Input):
            return first, second
    raise AssertionError(f"no two text fields in a row on {page}")


async def burst_into(pilot, screen, first: Input, second: Input, items, want: tuple[str, str]) -> None:
    first.value = ""
    second.value = ""
    first.focus()
    await wait_until(pilot, lambda: pilot.app.focused is first, what="focus on the first field")
    burst(pilot, *items)
    await wait_until(pilot, lambda: second.value == want[1] and not screen.keys_held, what="the burst")
    await pilot.pause()
    assert (first.value, second.value) == want
    assert pilot.app.focused is second


async def test_a_burst_lands_in_the_focused_field_on_every_step(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = WizardScreen(values=FILLED)
        app.push_screen(screen)
        await ready(pilot, screen)
        for index, step in enumerate(STEPS):
            if index:
                await pilot.press("ctrl+n")
                await wait_until(pilot, lambda: not screen.keys_held, what="the next step")
            assert screen.page == index
            page = screen.query_one(f"#page-{step}")
            first, second = input_pair(screen, page)
            keys = ["a", "b", "c", "tab", "d", "e", "f"]
            await burst_into(pilot, screen, first, second, keys, ("abc", "def"))
            paste = [events.Paste("abc"), "tab", events.Paste("def")]
            await burst_into(pilot, screen, first, second, paste, ("abc", "def"))
            # put the step back to values that pass
            for row in (first, second):
                row.parent.parent.write(FILLED.get(row.parent.parent.key, row.parent.parent.info.default))


async def test_keys_typed_while_the_wizard_opens_are_kept(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        burst(pilot, "a", "b", "c", "tab", "d", "e", "f")
        screen = await wizard_ready(pilot)
        await wait_until(pilot, lambda: screen.query_one("#edit-namespace", Input).value.endswith("def"))
        assert screen.query_one("#edit-task_name", Input).value == "abc"
        assert app.focused is screen.query_one("#edit-namespace", Input)


async def test_a_burst_in_the_preset_editor(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = PresetEditScreen(ref="team/burst")
        app.push_screen(screen)
        await ready(pilot, screen)
        first = screen.query_one("#edit-learning_rate", Input)
        second = screen.query_one("#edit-num_train_epochs", Input)
        chain = list(screen.focus_chain)
        assert chain.index(second) == chain.index(first) + 1
        await burst_into(pilot, screen, first, second, ["0", ".", "0", "0", "1", "tab", "2"], ("0.001", "2"))
        await burst_into(pilot, screen, first, second, [events.Paste("0.001"), "tab", events.Paste("2")],
                         ("0.001", "2"))


async def test_escape_asks_only_after_a_change_and_a_fixed_field_clears_the_block(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = WizardScreen(values=FILLED)
        app.push_screen(screen)
        await ready(pilot, screen)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.is_attached, what="the wizard to close unasked")

        screen = WizardScreen(values=FILLED)
        app.push_screen(screen)
        await ready(pilot, screen)
        name = screen.query_one("#edit-task_name", Input)
        name.value = ""
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: not screen.keys_held)
        status = screen.query_one("#wizard-status")
        assert "Fix the marked fields" in str(status.render())
        assert app.focused is name
        await pilot.press(*"fixed")
        await wait_until(pilot, lambda: str(status.render()) == "", what="the block message to go")

        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        assert "Discard" in str(app.screen.query_one("#question").render())
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: not screen.is_attached, what="the wizard to close")
