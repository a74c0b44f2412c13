"""Pilot tests of the presets manager: create with the generated editors, copy, delete with a
confirmation (answered no, then yes), and built-ins refused."""

from __future__ import annotations

import pytest
import yaml

from tunequeue.core import paths
from tunequeue.tui.app import make_app
from tunequeue.tui.screens.presets import PresetEditScreen, PresetsScreen
from tunequeue.tui.widgets.fields import FieldEditor

SIZE = (80, 24)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def preset_file(ref: str):
    namespace, name = ref.split("/")
    return paths.user_presets_dir() / namespace / f"{name}.yaml"


async def open_presets(pilot) -> PresetsScreen:
    await pilot.press("p")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, PresetsScreen)
    return screen


async def select_row(pilot, screen: PresetsScreen, ref: str) -> None:
    """Move the table cursor to ``ref`` with the arrow keys."""
    refs = [p.ref for p in screen.presets]
    await pilot.press("home", *(["down"] * refs.index(ref)))
    await pilot.pause()
    assert screen.selected.ref == ref


async def test_create_copy_and_delete_change_the_files(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_presets(pilot)
        assert {p.ref for p in screen.presets} >= {"default/sft-lora", "default/sft-qlora"}

        # create: name it, set two values with the keyboard, save
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("ctrl+u", *"team/fast-lora", "enter")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, PresetEditScreen)
        for key, text in (("learning_rate", "0.0003"), ("lora_rank", "32")):
            for _ in range(60):
                if app.focused is not None and app.focused.id == f"edit-{key}":
                    break
                await pilot.press("tab")
            await pilot.press("end", *(["backspace"] * len(app.focused.value)), *text)
        await pilot.pause()
        assert editor.query_one("#field-lora_rank", FieldEditor).warning  # 32 is above the recommended 4–16
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen
        created = yaml.safe_load(preset_file("team/fast-lora").read_text())
        assert created["values"] == {"learning_rate": 0.0003, "lora_rank": 32}
        assert (created["stage"], created["finetuning_type"]) == ("sft", "lora")
        assert "team/fast-lora" in [p.ref for p in screen.presets]

        # copy: accept the suggested name
        await select_row(pilot, screen, "team/fast-lora")
        await pilot.press("c")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert preset_file("team/fast-lora-copy").is_file()

        # delete: "no" keeps the file, "yes" removes it
        await select_row(pilot, screen, "team/fast-lora-copy")
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert preset_file("team/fast-lora-copy").is_file()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert not preset_file("team/fast-lora-copy").exists()
        assert preset_file("team/fast-lora").is_file()
        assert "team/fast-lora-copy" not in [p.ref for p in screen.presets]


async def test_builtins_are_marked_and_refused(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_presets(pilot)
        await select_row(pilot, screen, "default/sft-lora")
        assert "read-only" in str(screen.query_one("#details-text").render())
        await pilot.press("e")
        await pilot.pause()
        assert app.screen is screen
        assert "cannot be edited" in str(screen.query_one("#presets-status").render())
        await pilot.press("d")
        await pilot.pause()
        assert app.screen is screen
        assert "cannot be deleted" in str(screen.query_one("#presets-status").render())


async def test_edit_keeps_values_of_groups_the_form_does_not_show(tq_home):
    from tunequeue.core import presets

    presets.copy_preset("default/dpo-lora", "team/my-dpo")
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_presets(pilot)
        await select_row(pilot, screen, "team/my-dpo")
        await pilot.press("e")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, PresetEditScreen)
        editor.query_one("#field-num_train_epochs", FieldEditor).write(1.0)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen
    saved = presets.get_preset("team/my-dpo")
    assert saved.values["num_train_epochs"] == 1.0
    assert saved.values["pref_beta"] == 0.1 and saved.values["pref_loss"] == "sigmoid"
