"""Tasks the preflight accepts start training: `validate` says ok, and `tunequeue train` (the process
the runner launches) finishes a couple of steps on the tiny model, for every shape of accepted task:
our YAML, local data, a local model, an LLaMA-Factory YAML and a Firefly JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tq_preflight_cases import GOOD, Case, accepted_cases

from tunequeue.cli import main

ACCEPTED = accepted_cases()


@pytest.fixture()
def home(tmp_path, monkeypatch):
    folder = tmp_path / "home"
    monkeypatch.setenv("TUNEQUEUE_HOME", str(folder))
    return folder


def test_the_base_task_of_the_refusal_table_is_accepted(tmp_path, home, capsys):
    case = Case("good", dict(GOOD))
    path = case.write(tmp_path)
    assert main(["validate", str(path)]) == 0, capsys.readouterr()


@pytest.mark.slow
@pytest.mark.parametrize("case", ACCEPTED, ids=[case.id for case in ACCEPTED])
def test_an_accepted_task_trains(case: Case, tmp_path, home, monkeypatch, capsys):
    folder = tmp_path / "case"
    folder.mkdir()
    monkeypatch.chdir(folder)
    path = case.write(folder)
    assert main(["validate", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["errors"] == []
    env = {**os.environ, "TUNEQUEUE_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "tunequeue", "train", str(path), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [run_dir] = list((home / "runs").iterdir())
    assert (run_dir / "trainer_log.jsonl").is_file()
    assert (run_dir / "adapter_config.json").is_file()
    assert not (folder / "dataset_info.json").exists(), "nothing is registered beside the input"
