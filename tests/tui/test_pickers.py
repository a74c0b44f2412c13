"""Pilot tests of the pickers on the wizard's model, dataset and template rows: F2 / ctrl+o opens a
filtered list read from real folders, typing filters it, Enter fills the row, Esc leaves it as it was,
and typing into the row itself still works."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from textual.widgets import Input, OptionList, Static
from tq_tui_testkit import wait_for_screen, wait_until

from tunequeue.tui.app import make_app
from tunequeue.tui.screens.wizard import WizardScreen
from tunequeue.tui.widgets.pickers import PickerScreen, merge_dataset

SIZE = (100, 30)
pytestmark = pytest.mark.anyio


@pytest.fixture
def model_root(tq_home, tmp_path, monkeypatch):
    """A model root with a Qwen2-shaped model, and an empty Hugging Face cache."""
    root = tmp_path / "models"
    model = root / "qwen-small"
    model.mkdir(parents=True)
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 1000,
    }
    (model / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("TUNEQUEUE_MODEL_ROOTS", str(root))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    return model


@asynccontextmanager
async def _wizard(lang: str = "en") -> AsyncIterator[tuple[Any, WizardScreen]]:
    """Run the app with the wizard opened by its key; yield (pilot, wizard) once the wizard takes keys."""
    app = make_app(lang=lang)
    async with app.run_test(size=SIZE) as pilot:

        def taking_keys() -> WizardScreen | None:
            screen = app.screen
            taking = isinstance(screen, WizardScreen) and screen.ready and not screen.keys_held
            return screen if taking else None

        await pilot.press("n")
        yield pilot, await wait_until(pilot, taking_keys, what="the wizard to open")


async def _focus(pilot, key: str) -> Input:
    """Tab to the editor of ``key``, as a user would, and return it."""
    for _ in range(40):
        focused = pilot.app.focused
        if focused is not None and focused.id == f"edit-{key}":
            return focused
        await pilot.press("tab")
    raise AssertionError(f"Tab never reached {key}")


async def _open_picker(pilot, key: str = "f2") -> PickerScreen:
    """Press the picker key on the focused row; return the picker once its list is read."""
    await pilot.press(key)
    picker = await wait_for_screen(pilot, PickerScreen)
    await wait_until(pilot, lambda: picker.items is not None, what="the picker's list")
    return picker


async def _picker_on(pilot, key: str, open_key: str = "f2") -> tuple[Input, PickerScreen]:
    """Tab to the row of ``key`` and open its picker with ``open_key``; return (row, picker)."""
    row = await _focus(pilot, key)
    return row, await _open_picker(pilot, open_key)


async def _close(pilot, picker: PickerScreen, *keys: str) -> None:
    """Press ``keys`` (a filter, then Enter or Esc) and wait until the picker has closed."""
    await pilot.press(*keys)
    await wait_until(pilot, lambda: pilot.app.screen is not picker, what="the picker to close")


def _status(picker: PickerScreen) -> str:
    return str(picker.query_one("#picker-status", Static).render())


async def test_model_picker_lists_roots_filters_and_fills_the_row(model_root):
    async with _wizard() as (pilot, _screen):
        row, picker = await _picker_on(pilot, "model_name_or_path")
        values = [item.value for item in picker.shown]
        assert values == ["tunequeue/tiny-llama", str(model_root)]
        detail = picker.shown[1].detail
        assert "Qwen2ForCausalLM" in detail and "template qwen" in detail and "model root" in detail
        assert _status(picker) == "2 of 2"

        await pilot.press(*"qwen2")
        await wait_until(pilot, lambda: len(picker.shown) == 1, what="the filter")
        assert picker.query_one("#picker-list", OptionList).option_count == 1
        await _close(pilot, picker, "enter")
        assert not isinstance(pilot.app.screen, PickerScreen)
        assert row.value == str(model_root)
        assert pilot.app.focused is row

        # typing into the row still works after a pick
        await pilot.press("end", *(["backspace"] * len(row.value)), *"tunequeue/tiny-llama")
        assert row.value == "tunequeue/tiny-llama"


async def test_template_picker_puts_the_suggestion_first_and_esc_cancels(model_root):
    async with _wizard() as (pilot, _screen):
        model_row = await _focus(pilot, "model_name_or_path")
        await pilot.press(*str(model_root))
        template_row, picker = await _picker_on(pilot, "template", "ctrl+o")
        assert picker.shown[0].value == "qwen" and "suggested" in picker.shown[0].detail
        assert model_row.value == str(model_root)
        await _close(pilot, picker, "escape")
        assert not isinstance(pilot.app.screen, PickerScreen) and template_row.value == ""

        picker = await _open_picker(pilot)
        await _close(pilot, picker, "down", "enter")
        assert template_row.value == picker.shown[1].value != "qwen"


async def test_dataset_picker_shows_format_and_rows_and_adds_comma_separated(tq_home):
    async with _wizard() as (pilot, _screen):
        row, picker = await _picker_on(pilot, "dataset")
        first = picker.shown[0]
        assert first.value == "demo_alpaca" and first.detail.startswith("alpaca · 120 rows")
        await _close(pilot, picker, *"pairwise", "enter")
        assert row.value == "demo_pairwise"

        picker = await _open_picker(pilot)
        assert picker.shown[[i.value for i in picker.shown].index("demo_pairwise")].title.startswith("✓")
        await _close(pilot, picker, *"demo_kto", "enter")
        assert row.value == "demo_pairwise,demo_kto"


async def test_picker_key_does_nothing_on_other_rows_and_speaks_chinese(tq_home):
    async with _wizard("zh") as (pilot, _screen):
        await _focus(pilot, "task_name")
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(pilot.app.screen, WizardScreen)
        _row, picker = await _picker_on(pilot, "dataset")
        assert "行" in picker.shown[0].detail
        await pilot.press(*"zzz-nothing")
        await wait_until(pilot, lambda: not picker.shown, what="an empty filter result")
        assert "没有匹配项" in _status(picker)
        await pilot.press("enter")  # nothing highlighted: the picker stays open
        await pilot.pause()
        assert pilot.app.screen is picker


async def test_dataset_picker_reports_a_missing_dataset_info(tq_home, tmp_path):
    async with _wizard() as (pilot, screen):
        editor = screen.query_one("#field-dataset")
        screen.query_one("#field-dataset_dir").write(str(tmp_path))
        editor.editor.focus()
        await pilot.pause()
        picker = await _open_picker(pilot)
        assert picker.items == [] and "no dataset_info.json" in _status(picker)


def test_merge_dataset_adds_and_removes():
    assert merge_dataset("", "a") == "a"
    assert merge_dataset("a, b", "c") == "a,b,c"
    assert merge_dataset("a,b,c", "b") == "a,c"
