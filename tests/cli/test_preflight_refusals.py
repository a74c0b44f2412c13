"""The preflight refuses every bad input of the table in `tq_preflight_cases`: through `submit --hold`
(exit 2, exactly one line on stderr, no traceback, nothing queued, bounded memory), through
`validate` and `train` (exit 2, nothing trained), and a handful through real subprocesses."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from tq_preflight_cases import Case, build_cases

from tunequeue.cli import main

CASES = build_cases()
MEMORY_LIMIT = 500 * 1024 * 1024
SUBPROCESS_CASES = ("alias-bomb", "very-deep-yaml", "sweep-huge", "huge-file", "cli-gpus-not-number")


def test_the_table_has_at_least_200_bad_inputs() -> None:
    assert len(CASES) >= 200
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("TUNEQUEUE_HOME", str(folder))
    monkeypatch.delenv("TUNEQUEUE_SIMULATED_GPUS", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return folder


def _job_count(home: Path) -> int:
    db = home / "queue.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


HOSTILE = ("alias", "deep", "huge", "nul", "sweep", "cli-", "json-")


def _run(argv: list[str], capsys, *, measure: bool = False) -> tuple[int, str, str, int]:
    """Run the CLI in-process; with ``measure``, also the peak of Python memory it allocated."""
    if measure:
        tracemalloc.start()
    try:
        code = main(argv)
        peak = tracemalloc.get_traced_memory()[1] if measure else 0
    finally:
        if measure:
            tracemalloc.stop()
    out = capsys.readouterr()
    return code, out.out, out.err, peak


def _prepare(case: Case, tmp_path: Path, monkeypatch) -> Path:
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    folder = tmp_path / "case"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return case.write(folder)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_submit_refuses_in_one_line_and_queues_nothing(case: Case, home, tmp_path, monkeypatch, capsys):
    path = _prepare(case, tmp_path, monkeypatch)
    measure = any(word in case.id for word in HOSTILE)
    code, out, err, peak = _run(["submit", str(path), "--hold", *case.args], capsys, measure=measure)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert len(lines[0]) < 600, "an error quotes at most a short part of a bad value"
    assert "Traceback" not in out + err
    assert _job_count(home) == 0
    assert peak < MEMORY_LIMIT


TASK_CASES = [case for case in CASES if not case.args]


@pytest.mark.parametrize("case", TASK_CASES, ids=[case.id for case in TASK_CASES])
def test_validate_and_train_refuse_what_submit_refuses(case: Case, home, tmp_path, monkeypatch, capsys):
    path = _prepare(case, tmp_path, monkeypatch)
    code, out, err, _ = _run(["validate", str(path)], capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    code, out, err, _ = _run(["train", str(path), "--quiet"], capsys)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    runs = home / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a refused task must create no run dir"


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_hostile_inputs_through_a_real_process(case_id: str, home, tmp_path) -> None:
    case = next(case for case in CASES if case.id == case_id)
    folder = tmp_path / "case"
    folder.mkdir()
    path = case.write(folder)
    env = {**os.environ, "TUNEQUEUE_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "tunequeue", "submit", str(path), "--hold", *case.args],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: ")
    assert _job_count(home) == 0
