"""Fixtures of the TUI tests: a temp home, a queue with jobs in every state, the app with a fixed clock.

The helpers behind them (fixed clock, populated queue, settling a Pilot) live in `tests/tq_tui_testkit.py`,
which test modules import directly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tq_tui_testkit import PopulatedHome, build_populated_home, fixed_clock, generous_screen_wait


@pytest.fixture
def anyio_backend() -> str:
    """Async TUI tests (marked `anyio`) run on asyncio, which Textual needs."""
    return "asyncio"


@pytest.fixture
def tq_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TUNEQUEUE_HOME with two simulated 24 GiB GPUs and English as the language."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("TUNEQUEUE_HOME", str(home))
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "2x24")
    monkeypatch.setenv("TUNEQUEUE_LANG", "en")
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


@pytest.fixture
def populated_home(tq_home: Path) -> PopulatedHome:
    """A queue with a succeeded, a running, a queued, a held and a failed job, all times pinned."""
    return build_populated_home(tq_home)


@pytest.fixture
def app_factory():
    """Build the app with the fixed clock and a fast refresh."""
    from tunequeue.tui.app import make_app

    def build(**kwargs):
        kwargs.setdefault("lang", "en")
        kwargs.setdefault("clock", fixed_clock)
        return make_app(**kwargs)

    return build


os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")


@pytest.fixture(autouse=True)
def _generous_screen_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy machine needs more than Pilot's 30 s for a screen to process its pending messages."""
    generous_screen_wait(monkeypatch)
