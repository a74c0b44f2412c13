"""`tunequeue params`: the parameter reference generated from the task model."""

from __future__ import annotations

import json

import pytest

from tunequeue.cli import main
from tunequeue.core.spec import KEYS


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    monkeypatch.delenv("TUNEQUEUE_LANG", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


def test_params_lists_every_key(capsys):
    assert main(["params"]) == 0
    out = capsys.readouterr().out
    for key in KEYS:
        assert f"  {key}: " in out, key
    assert "[hyper] Hyperparameters" in out


def test_params_one_key_in_both_languages(capsys):
    assert main(["params", "learning_rate"]) == 0
    out = capsys.readouterr().out
    assert "Peak optimizer step size" in out and "> 0, ≤ 0.01" in out and "1e-05–0.001" in out
    assert main(["params", "learning_rate", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "优化器峰值学习率" in out and "推荐" in out


def test_params_choice_help(capsys):
    assert main(["params", "stage"]) == 0
    out = capsys.readouterr().out
    assert "Kahneman–Tversky" in out and "Direct preference optimization" in out


def test_params_group_and_json(capsys):
    assert main(["params", "--group", "lora", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    keys = [row["key"] for row in rows]
    assert keys[:3] == ["lora_rank", "lora_alpha", "lora_dropout"]
    rank = rows[0]
    assert rank["default"] == 8 and rank["type"] == "int" and rank["recommended"] == "4–16"
    assert main(["params", "optim", "--json"]) == 0
    optim = json.loads(capsys.readouterr().out)
    assert optim["choices_help"]["adafactor"].startswith("Factored")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["params", "learnig_rate"], "error: unknown key 'learnig_rate'; did you mean 'learning_rate'?"),
        (["params", "--group", "hyperr"], "error: unknown group 'hyperr'; did you mean 'hyper'?"),
        (["params", "--lang", "fr"], "error: --lang must be en or zh; got 'fr'"),
    ],
)
def test_params_mistakes_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == message


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("bf16", "compute_type"),
        ("fp16", "compute_type"),
        ("max_seq_length", "cutoff_len"),
        ("template_name", "template"),
    ],
)
def test_params_of_a_mapped_name_says_which_key_to_use(name, ours, capsys):
    assert main(["params", name]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert f"use the key {ours}" in first and name in first
    assert main(["params", name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["key"] == ours and data["mapped_from"]["name"] == name
