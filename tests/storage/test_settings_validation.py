"""settings.yaml is validated by one model whenever it is read; a bad file is reported, never overwritten."""

from __future__ import annotations

import pytest
from tq_storage_testkit import one_line_error


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("runner:\n  tick_seconds: fast\n", ["runner.tick_seconds", "'fast'"]),
        ("runner:\n  tick_seconds: 0\n", ["runner.tick_seconds", "greater than 0"]),
        ("runner:\n  max_cpu_jobs: -1\n", ["runner.max_cpu_jobs", "greater than or equal to 0"]),
        ("runner:\n  cancel_grace_seconds: 0\n", ["runner.cancel_grace_seconds"]),
        ("runner:\n  backend: pbs\n", ["runner.backend", "'pbs'"]),
        ("runner:\n  tick_second: 1\n", ["runner.tick_second", "not a setting"]),
        ("runner: 5\n", ["runner"]),
        ("queue:\n  lock_wait_seconds: -3\n", ["queue.lock_wait_seconds"]),
        ("language: fr\n", ["language", "'fr'"]),
    ],
)
def test_runner_start_refuses_a_bad_value_before_detaching(home, text, needles):
    (home.path / "settings.yaml").write_text(text, encoding="utf-8")
    one_line_error(home.cli("runner", "start"), "settings.yaml", *needles)
    assert home.runner_pid() is None
    assert not (home.path / "runner.log").exists()
    assert (home.path / "settings.yaml").read_text(encoding="utf-8") == text


def test_a_bad_environment_value_names_the_variable(home):
    home.env["TUNEQUEUE_TICK_SECONDS"] = "0"
    one_line_error(home.cli("runner", "start"), "TUNEQUEUE_TICK_SECONDS", "greater than 0")
    assert home.runner_pid() is None


def test_environment_wins_over_the_file(home, monkeypatch):
    from tunequeue.runner.settings import load_settings

    (home.path / "settings.yaml").write_text("runner:\n  tick_seconds: 7\n  max_cpu_jobs: 3\n")
    monkeypatch.setenv("TUNEQUEUE_TICK_SECONDS", "0.5")
    monkeypatch.setenv("TUNEQUEUE_TRAIN_COMMAND", "python -u stand_in.py")
    settings = load_settings()
    assert (settings.tick_seconds, settings.max_cpu_jobs) == (0.5, 3)
    assert settings.train_command == ["python", "-u", "stand_in.py"]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"runner:\n  tick_seconds: 2\n  backend: loc\xe9l\n", "not UTF-8"),
        (b"- just\n- a list\n", "must be a mapping"),
        (b"runner: [unclosed\n", "not valid YAML at line"),
    ],
)
def test_a_file_that_cannot_be_parsed_is_never_overwritten(home, raw, needle):
    path = home.path / "settings.yaml"
    path.write_bytes(raw)
    for args in (["runner", "start", "--backend", "local"], ["runner", "start"], ["runner", "status"]):
        one_line_error(home.cli(*args), needle)
    assert path.read_bytes() == raw
    assert home.runner_pid() is None


def test_valid_settings_start_the_runner(home):
    (home.path / "settings.yaml").write_text("language: en\nrunner:\n  tick_seconds: 0.2\n")
    home.cli("runner", "start", check=True)
    try:
        assert home.runner_pid()
    finally:
        home.cli("runner", "stop", check=True)


def test_every_command_that_reads_the_queue_reports_a_bad_settings_file(home):
    (home.path / "settings.yaml").write_text("queue:\n  busy_timeout_seconds: 0\n")
    for args in (["ls"], ["submit", str(home.task("x"))], ["db", "check"]):
        one_line_error(home.cli(*args), "settings.yaml key queue.busy_timeout_seconds", "greater than 0")
