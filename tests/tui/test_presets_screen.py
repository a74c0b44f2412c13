"""Pilot tests of the presets manager: create with the generated editors, copy, delete with a
confirmation (answered no, then yes), built-ins refused, and presets that cannot be read.

The manager reads and writes preset files in thread workers, so every step waits for what it needs
(`wait_until`) instead of assuming one pause is enough.
"""

from __future__ import annotations

import pytest
import yaml
from tq_tui_testkit import settle, wait_for_screen, wait_until

from tunequeue.core import paths
from tunequeue.tui.app import make_app
from tunequeue.tui.dialogs import ConfirmDialog, TextPrompt
from tunequeue.tui.screens.presets import PresetEditScreen, PresetsScreen
from tunequeue.tui.widgets.fields import FieldEditor

SIZE = (80, 24)
pytestmark = pytest.mark.anyio


def preset_file(ref: str):
    namespace, name = ref.split("/")
    return paths.user_presets_dir() / namespace / f"{name}.yaml"


def status_of(screen: PresetsScreen) -> str:
    return str(screen.query_one("#presets-status").render())


def refs_of(screen: PresetsScreen) -> list[str]:
    return [p.ref for p in screen.presets]


async def open_presets(pilot) -> PresetsScreen:
    """Open the manager from the queue and wait until it shows what it read."""
    await pilot.press("p")
    screen = await wait_for_screen(pilot, PresetsScreen)
    await wait_until(pilot, lambda: not screen.read_pending and screen.presets, what="the presets list")
    return screen


async def select_row(pilot, screen: PresetsScreen, ref: str) -> None:
    """Move the table cursor to ``ref`` with the arrow keys."""
    await wait_until(pilot, lambda: not screen.read_pending and ref in refs_of(screen), what=f"{ref} listed")
    await pilot.press("home", *(["down"] * refs_of(screen).index(ref)))
    await wait_until(
        pilot, lambda: screen.selected is not None and screen.selected.ref == ref, what=f"{ref} selected"
    )


async def test_create_copy_and_delete_change_the_files(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_presets(pilot)
        assert {p.ref for p in screen.presets} >= {"default/sft-lora", "default/sft-qlora"}

        # create: name it, set two values with the keyboard, save
        await pilot.press("n")
        await wait_for_screen(pilot, TextPrompt)
        await pilot.press("ctrl+u", *"team/fast-lora", "enter")
        editor = await wait_for_screen(pilot, PresetEditScreen)
        for key, text in (("learning_rate", "0.0003"), ("lora_rank", "32")):
            for _ in range(60):
                if app.focused is not None and app.focused.id == f"edit-{key}":
                    break
                await pilot.press("tab")
            await pilot.press("end", *(["backspace"] * len(app.focused.value)), *text)
        await pilot.pause()
        assert editor.query_one("#field-lora_rank", FieldEditor).warning  # 32 is above the recommended 4–16
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, what="the editor closed")
        created = yaml.safe_load(preset_file("team/fast-lora").read_text())
        assert created["values"] == {"learning_rate": 0.0003, "lora_rank": 32}
        assert (created["stage"], created["finetuning_type"]) == ("sft", "lora")
        await wait_until(pilot, lambda: "team/fast-lora" in refs_of(screen), what="team/fast-lora listed")
        await wait_until(pilot, lambda: screen.selected.ref == "team/fast-lora", what="the new one selected")
        assert status_of(screen) == "Preset team/fast-lora saved."

        # copy: accept the suggested name; the copy is listed and selected
        await select_row(pilot, screen, "team/fast-lora")
        await pilot.press("c")
        await wait_for_screen(pilot, TextPrompt)
        await pilot.press("enter")
        await wait_until(pilot, lambda: preset_file("team/fast-lora-copy").is_file(), what="the copy's file")
        await wait_until(
            pilot,
            lambda: not screen.read_pending and screen.selected.ref == "team/fast-lora-copy",
            what="the copy listed and selected",
        )
        assert status_of(screen) == "Copied to team/fast-lora-copy."

        # delete: "no" keeps the file, "yes" removes it
        await select_row(pilot, screen, "team/fast-lora-copy")
        await pilot.press("d")
        await wait_for_screen(pilot, ConfirmDialog)
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen, what="the question closed")
        await settle(pilot)  # a delete, had one started, would have finished here
        assert preset_file("team/fast-lora-copy").is_file()
        assert status_of(screen) == "Copied to team/fast-lora-copy."
        await pilot.press("d")
        await wait_for_screen(pilot, ConfirmDialog)
        await pilot.press("y")
        await wait_until(pilot, lambda: not preset_file("team/fast-lora-copy").exists(), what="file deleted")
        await wait_until(
            pilot,
            lambda: not screen.read_pending and "team/fast-lora-copy" not in refs_of(screen),
            what="the deleted preset gone from the list",
        )
        assert preset_file("team/fast-lora").is_file()
        assert "team/fast-lora" in refs_of(screen)
        assert status_of(screen) == "Preset team/fast-lora-copy deleted."


async def test_builtins_are_marked_and_refused(tq_home):
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_presets(pilot)
        await select_row(pilot, screen, "default/sft-lora")
        assert "read-only" in str(screen.query_one("#details-text").render())
        await pilot.press("e")
        await wait_until(pilot, lambda: "cannot be edited" in status_of(screen), what="edit refused")
        assert app.screen is screen
        await pilot.press("d")
        await wait_until(pilot, lambda: "cannot be deleted" in status_of(screen), what="delete refused")
        assert app.screen is screen


async def test_edit_keeps_values_of_groups_the_form_does_not_show(tq_home):
    from tunequeue.core import presets

    presets.copy_preset("default/dpo-lora", "team/my-dpo")
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_presets(pilot)
        await select_row(pilot, screen, "team/my-dpo")
        await pilot.press("e")
        editor = await wait_for_screen(pilot, PresetEditScreen)
        editor.query_one("#field-num_train_epochs", FieldEditor).write(1.0)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, what="the editor closed")
        await wait_until(pilot, lambda: not screen.read_pending, what="the list read again")
        assert status_of(screen) == "Preset team/my-dpo saved."
    saved = presets.get_preset("team/my-dpo")
    assert saved.values["num_train_epochs"] == 1.0
    assert saved.values["pref_beta"] == 0.1 and saved.values["pref_loss"] == "sigmoid"


BUILTINS = [f"default/{name}" for name in ("dpo-lora", "kto-lora", "sft-full", "sft-lora", "sft-qlora")]


async def test_a_file_where_the_user_presets_folder_should_be(tq_home):
    """The built-ins are listed and the status line says what is wrong; a copy is refused in one line."""
    paths.user_presets_dir().write_text("not a folder\n")
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_presets(pilot)
        assert refs_of(screen) == BUILTINS
        status = status_of(screen)
        assert status == (
            f"user presets folder {paths.user_presets_dir()} exists but is not a directory; move it away."
        )
        assert screen.query_one("#presets-status").has_class("-error")

        await select_row(pilot, screen, "default/sft-lora")
        await pilot.press("c")
        await wait_for_screen(pilot, TextPrompt)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "try again" in status_of(screen), what="the copy refused")
        await wait_until(pilot, lambda: not screen.read_pending, what="the list read again")
        assert status_of(screen) == (
            f"{paths.user_presets_dir()} exists but is not a directory; move it away and try again"
        )
        assert app.screen is screen
        assert refs_of(screen) == BUILTINS
        assert paths.user_presets_dir().read_text() == "not a folder\n"


async def test_unreadable_preset_files_are_left_out_and_named(tq_home):
    """Readable presets are listed; the first broken file is named in one line, with how many more."""
    from tunequeue.core import presets

    presets.copy_preset("default/sft-lora", "team/good")
    preset_file("team/bad").write_text("values: [not closed\n")
    preset_file("team/worse").write_text("- a list, not a preset\n")
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_presets(pilot)
        assert refs_of(screen) == [*BUILTINS, "team/good"]
        status = status_of(screen)
        assert status.startswith(f"preset file {preset_file('team/bad')} cannot be read (")
        assert status.endswith("; fix or delete it. (and 1 more)")
        assert "\n" not in status

        # once the files are fixed, the next read clears the line
        preset_file("team/bad").unlink()
        preset_file("team/worse").unlink()
        screen.reload()
        await wait_until(pilot, lambda: not screen.read_pending, what="the list read again")
        assert status_of(screen) == ""
        assert refs_of(screen) == [*BUILTINS, "team/good"]


async def test_a_description_with_brackets_is_shown_as_typed(tq_home):
    """Descriptions are user text, not markup: brackets are shown, never parsed (or fatal)."""
    from tunequeue.core import presets

    presets.create_preset("team/marked", description="[/odd] keep [b]this[/b] as typed")
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_presets(pilot)
        await select_row(pilot, screen, "team/marked")
        table = screen.query_one("#preset-table")
        assert str(table.get_row("team/marked")[4]) == "[/odd] keep [b]this[/b] as typed"
        await pilot.pause()
        assert app.screen is screen


async def test_the_copy_prompt_refuses_a_taken_name(tq_home):
    """The name is checked as it is typed: built-in and user names are taken, a free one is accepted."""
    from tunequeue.core import presets

    presets.copy_preset("default/sft-lora", "team/mine")
    app = make_app(lang="en")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_presets(pilot)
        await select_row(pilot, screen, "default/sft-lora")
        await pilot.press("c")
        prompt = await wait_for_screen(pilot, TextPrompt)
        error = prompt.query_one("#prompt-error")
        for taken in ("default/sft-qlora", "team/mine"):
            await pilot.press("ctrl+u", *taken)
            message = f"Preset {taken} already exists."
            await wait_until(pilot, lambda m=message: m in str(error.render()), what=message)
            assert prompt.query_one("#ok").disabled
        await pilot.press("ctrl+u", *"team/yours")
        await wait_until(pilot, lambda: not prompt.query_one("#ok").disabled, what="a free name accepted")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: not screen.read_pending and screen.selected.ref == "team/yours", what="the copy"
        )
        assert presets.get_preset("team/yours").values == presets.get_preset("default/sft-lora").values
