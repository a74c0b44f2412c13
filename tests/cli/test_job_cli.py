"""Job CLI input errors: exit code 2, one line on stderr, no traceback, nothing queued."""

from __future__ import annotations

import pytest
import yaml

from tunequeue.cli import main
from tunequeue.jobqueue import jobs
from tunequeue.jobqueue.db import open_db

VALID = {"task_name": "ok", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "2x24")
    return tmp_path


def _task(tmp_path, **values):
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump({**VALID, **values}))
    return str(path)


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(capsys, *argv, contains: str = ""):
    code, _, err = _run(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert contains in lines[0]
    return lines[0]


def test_bad_submit_inputs_queue_nothing(home, capsys):
    _one_line_error(capsys, "submit", str(home / "missing.yaml"), contains="missing.yaml")
    _one_line_error(capsys, "submit", _task(home, learning_rate=-1), contains="learning_rate")
    _one_line_error(capsys, "submit", _task(home, task_name="Bad_Name"), contains="task_name")
    _one_line_error(capsys, "submit", _task(home), "--sweep", "learnig_rate=1e-4", contains="learning_rate")
    _one_line_error(capsys, "submit", _task(home), "--sweep", "learning_rate", contains="KEY=V1,V2")
    _one_line_error(
        capsys, "submit", _task(home), "--sweep", "learning_rate=1e-4,-1", contains="learning_rate"
    )
    _one_line_error(capsys, "submit", _task(home), "--after", "99", contains="99")
    _one_line_error(capsys, "submit", _task(home), "--gpus", "-1", contains="--gpus")
    _one_line_error(capsys, "submit", _task(home, dataset="demo_alpacca"), contains="demo_alpaca")
    _one_line_error(capsys, "submit", _task(home, stage="dpo"), contains="ranking")
    assert jobs.list_jobs(open_db()) == []


def test_bad_job_ids_and_states(home, capsys):
    code, out, _ = _run(capsys, "submit", _task(home))
    assert code == 0 and out.startswith("job 1 ok queued")
    _one_line_error(capsys, "show", "99", contains="no job 99")
    _one_line_error(capsys, "wait", "99", contains="no job 99")
    _one_line_error(capsys, "logs", "1", contains="no log yet")
    _one_line_error(capsys, "ls", "--state", "bogus", contains="bogus")
    _one_line_error(capsys, "retry", "1", contains="job 1")
    _one_line_error(capsys, "release", "1", contains="job 1")
    _one_line_error(capsys, "rm", "1", contains="--yes")
    db = open_db()
    jobs.claim(db, 1, [0], ["GPU-sim-0"])
    _one_line_error(capsys, "rm", "1", "--yes", contains="cancel it first")
    _one_line_error(capsys, "hold", "1", contains="job 1")
    _one_line_error(capsys, "priority", "1", "5", contains="job 1")


def test_gpus_bad_simulation_spec(home, capsys, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_SIMULATED_GPUS", "lots")
    _one_line_error(capsys, "gpus", contains="TUNEQUEUE_SIMULATED_GPUS")


def test_job_commands_happy_path(home, capsys):
    code, out, err = _run(capsys, "submit", _task(home), "--hold", "--priority", "3", "--json")
    assert code == 0 and '"state": "held"' in out
    assert _run(capsys, "release", "1")[1].strip() == "job 1 queued"
    assert _run(capsys, "priority", "1", "7")[1].strip() == "job 1 priority 7"
    code, out, _ = _run(capsys, "ls", "--state", "queued")
    assert code == 0 and "ok" in out and "queued" in out
    assert _run(capsys, "cancel", "1")[1].strip() == "job 1 cancelled"
    assert _run(capsys, "wait", "1")[0] == 3
    code, out, _ = _run(capsys, "show", "1")
    assert code == 0 and "queued → cancelled" in out.replace("held → queued", "")
    code, out, _ = _run(capsys, "gpus", "--json")
    assert code == 0 and '"simulated": true' in out
    code, out, _ = _run(capsys, "runner", "status")
    assert code == 0 and "not running" in out


def test_submit_refuses_a_name_still_queued_or_running(home, capsys):
    task = _task(home)
    code, out, _ = _run(capsys, "submit", task)
    assert code == 0 and out.startswith("job 1 ok queued")
    _one_line_error(capsys, "submit", task, contains="job 1 (queued) already has task_name 'ok'")
    code, out, _ = _run(capsys, "submit", task, "--name", "ok-2")
    assert code == 0 and out.startswith("job 2 ok-2 queued")
    # A sweep whose second job's name is taken queues none of its jobs.
    code, _, _ = _run(capsys, "submit", task, "--name", "sw-s2")
    assert code == 0
    sweep = ("--name", "sw", "--sweep", "learning_rate=1e-4,5e-5")
    _one_line_error(capsys, "submit", task, *sweep, contains="sw-s2")
    assert [job.name for job in jobs.list_jobs(open_db())] == ["ok", "ok-2", "sw-s2"]
    db = open_db()
    jobs.claim(db, 1, [0], ["GPU-sim-0"])
    _one_line_error(capsys, "submit", task, contains="job 1 (starting)")
    jobs.finish(db, 1, exit_code=0)
    code, out, _ = _run(capsys, "submit", task)
    assert code == 0 and out.startswith("job 4 ok queued")
