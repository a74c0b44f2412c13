"""The footer rebuilds its keys only when what it shows changes: moving between fields with the same
keys keeps the same key widgets; a field with other keys, a language switch or another screen gets
new ones."""

from __future__ import annotations

import pytest
from tq_tui_testkit import settle, wait_until, wizard_ready

from tunequeue.tui.app import make_app
from tunequeue.tui.widgets.key_footer import KeyFooter, shown_keys

pytestmark = pytest.mark.anyio


def footer_keys(screen) -> list:
    """The footer's key widgets (its children)."""
    return list(screen.query_one(KeyFooter).children)


def footer_text(screen) -> list[str]:
    return [key.description for key in footer_keys(screen)]


async def test_focus_moves_keep_the_footer_and_a_language_switch_rebuilds_it(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        wizard = await wizard_ready(pilot)
        await wait_until(pilot, lambda: footer_keys(wizard), what="the wizard's footer keys")
        before = footer_keys(wizard)
        assert [key.description for key in before] == [key[2] for key in shown_keys(wizard)]

        await pilot.press("tab")
        await settle(pilot)
        assert app.focused is not None and app.focused.id == "edit-namespace"
        assert footer_keys(wizard) == before, "a focus move that changes no shown key rebuilt the footer"

        # the model field has a picker: its keys join the footer
        await pilot.press("tab")
        await wait_until(pilot, lambda: "f2" in [key.key for key in footer_keys(wizard)],
                         what="the picker's key in the footer")
        await pilot.press("shift+tab")
        await wait_until(pilot, lambda: "f2" not in [key.key for key in footer_keys(wizard)],
                         what="the picker's key gone again")
        before = footer_keys(wizard)

        app.set_language("zh", remember=False)
        await wait_until(pilot, lambda: footer_keys(wizard) and footer_keys(wizard)[0] not in before,
                         what="the footer rebuilt in Chinese")
        assert footer_text(wizard) == [key[2] for key in shown_keys(wizard)]
        assert footer_text(wizard) != [key.description for key in before]


async def test_each_screen_footer_shows_that_screens_keys(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        queue = app.screen
        await wait_until(pilot, lambda: footer_keys(queue), what="the queue's footer keys")
        queue_text = footer_text(queue)
        assert queue_text == [key[2] for key in shown_keys(queue)]
        await pilot.press("n")
        wizard = await wizard_ready(pilot)
        await wait_until(pilot, lambda: footer_text(wizard) == [key[2] for key in shown_keys(wizard)],
                         what="the wizard's own footer keys")
        assert footer_text(wizard) != queue_text
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is queue, what="back on the queue")
        await settle(pilot)
        assert footer_text(queue) == queue_text
