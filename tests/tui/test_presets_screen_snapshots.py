"""Snapshots of the presets manager and the preset editor at 80×24.

The manager reads the presets in a thread worker: after `p` every hook waits until it shows the list.
"""

from __future__ import annotations

from textual.widgets import Input
from tq_tui_testkit import settle, wait_for_screen, wait_until

from tunequeue.tui.screens.presets import PresetsScreen

SIZE = (80, 24)


async def open_presets(pilot) -> None:
    """Press `p` on the queue and wait until the presets manager shows the presets it read."""
    await pilot.press("p")
    screen = await wait_for_screen(pilot, PresetsScreen)
    await wait_until(pilot, lambda: not screen.read_pending and screen.presets, what="the presets list")
    await settle(pilot)


def keys(*pressed: str):
    """run_before hook: open the presets manager, then press ``pressed`` one by one, letting the screen
    settle in between."""

    async def run_before(pilot) -> None:
        await open_presets(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)
        await freeze_cursors(pilot)

    return run_before


async def freeze_cursors(pilot) -> None:
    """Stop the text cursors blinking so that every snapshot catches the same frame."""
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause()


def test_presets_manager(snap_compare, tq_home, app_factory):
    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=keys("down", "down", "down"))


def test_builtin_edit_refused(snap_compare, tq_home, app_factory):
    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=keys("e"))


def test_delete_confirmation(snap_compare, tq_home, app_factory, monkeypatch):
    from tunequeue.core import presets

    # the details line shows when the preset was saved: pin it, or the picture changes every minute
    monkeypatch.setattr(presets, "_now", lambda: "2026-01-01T00:00:00.000000+00:00")
    presets.copy_preset("default/sft-lora", "team/mine")
    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=keys("end", "d"))


def test_new_preset_editor(snap_compare, tq_home, app_factory):
    async def run_before(pilot) -> None:
        await open_presets(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press(*"team/new-one", "enter")
        await settle(pilot)
        await wait_until(pilot, lambda: getattr(pilot.app.focused, "id", None) == "edit-stage", what="focus")
        await settle(pilot)
        await freeze_cursors(pilot)

    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=run_before)


def test_presets_manager_chinese(snap_compare, tq_home, app_factory):
    assert snap_compare(app_factory(lang="zh"), terminal_size=SIZE, run_before=keys())
