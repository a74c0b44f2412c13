"""The TUI process never imports torch or transformers: every screen is walked in a fresh interpreter
(`walk_screens.py`) while the preview and the chat run in their child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WALK = Path(__file__).resolve().parent / "walk_screens.py"


@pytest.mark.slow
def test_walking_every_screen_imports_no_heavy_library(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "TUNEQUEUE_HOME": str(home),
        "TUNEQUEUE_SIMULATED_GPUS": "2x24",
        "TUNEQUEUE_LANG": "en",
        "TEXTUAL_ANIMATIONS": "none",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, str(WALK)], env=env, capture_output=True, text=True, timeout=1200, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["heavy"] == []
    assert seen["screens"] == [
        "QueueScreen",
        "wizard:basic", "wizard:task", "wizard:hyper", "wizard:lora", "wizard:other", "wizard:review",
        "DashboardScreen", "JobScreen", "PresetsScreen", "GpusScreen", "ChatScreen", "help",
    ]
    assert seen["preview"].startswith("First example of ") and "<|im_start|>" in seen["preview"]
    # simulated GPU 0 is free of jobs (the running job holds GPU 1): the chat is given GPU 0, and with
    # no CUDA here the child says so and runs on the CPU
    chat = seen["chat"]
    assert "GPU 0 is free (no job uses it); loading the model there." in chat
    assert "GPU 0 was free, but CUDA is not available here; the model runs on the CPU." in chat
    assert chat[-2] == "You: hi" and chat[-1].startswith("Assistant: ")
    assert seen["chat_title"].endswith("· CPU")
    assert seen["chat_child_ended"] is True
