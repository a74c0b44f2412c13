"""Shared fixtures for training tests: the bundled tiny model and its tokenizer, an isolated home."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunequeue.train.assets import bundled_model_dir


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every training test runs against its own TUNEQUEUE_HOME."""
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """Path of the bundled tiny Llama directory."""
    return bundled_model_dir()


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    """The bundled tokenizer (byte-level BPE with a ChatML chat template)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))
