"""No task value can leave its line or its quoting in a Slurm batch script.

Hostile values either are refused with one line (control characters, options a task file may not set,
at validate/submit time with exit 2 and nothing queued) or end up quoted: the golden file shows each
one inside a single ``#SBATCH`` word. End to end, a fake ``sbatch`` on PATH executes the batch script
the runner submits, and the shell hidden in the values never runs.
Set TUNEQUEUE_UPDATE_GOLDEN=1 to rewrite the golden file after an intended change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunequeue.core.errors import UserError
from tunequeue.core.slurm_task import task_slurm_overrides
from tunequeue.jobqueue import jobs
from tunequeue.jobqueue.db import open_db
from tunequeue.runner.backends import configure
from tunequeue.runner.backends.slurm import SlurmOptions, render_batch_script, request_for
from tunequeue.runner.settings import load_settings

GOLDEN = Path(__file__).with_name("golden") / "hostile_values_batch.sh"
STAND_IN = Path(__file__).with_name("slurm_stand_in.py")

FAKE_SBATCH = """#!/bin/bash
# Stand-in for sbatch: runs the batch script at once with bash, then prints a job id as --parsable does.
script="${@: -1}"
cd "$(dirname "$script")" || exit 1
export SLURM_JOB_ID=4242 SLURM_JOB_NODELIST=localhost
bash "$script" > "$(dirname "$script")/fake-sbatch.out" 2>&1
echo 4242
"""


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty home for one test."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("TUNEQUEUE_HOME", str(root))
    monkeypatch.delenv("TUNEQUEUE_TRAIN_COMMAND", raising=False)
    return root


def _task(name: str, slurm: dict, **values) -> dict:
    base = {"task_name": name, "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}
    return {**base, **values, "extra": {"slurm": slurm}}


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNEQUEUE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "tunequeue", *args], env=env, capture_output=True, text=True, timeout=60
    )


REFUSED = [
    ({"sbatch_options": ["--constraint=a100\ntouch /tmp/tq-pwned"]}, "control character \\x0a"),
    ({"partition": "gpu\r\nrm -rf ~"}, "control character \\x0d"),
    ({"comment": "ok\x00"}, "control character \\x00"),
    ({"constraint": "a100\x85touch"}, "control character \\x85"),
    ({"sbatch_options": ["--output=/root/.bashrc"]}, "'--output' may not be set by a task file"),
    ({"sbatch_options": ["--export=LD_PRELOAD=/tmp/evil.so"]}, "'--export' may not be set by a task file"),
    ({"sbatch_options": ["--chdir=/root"]}, "'--chdir' may not be set by a task file"),
    ({"sbatch_options": ["--wrap=touch /tmp/tq-pwned"]}, "'--wrap' may not be set by a task file"),
    ({"sbatch_options": ["-o", "/root/.bashrc"]}, "'-o' may not be set by a task file"),
    ({"output": "/root/.bashrc"}, "slurm option 'output' may not be set by a task file"),
    ({"submit_timeout": 1}, "slurm option 'submit_timeout' may not be set by a task file"),
    ({"partition": "gpu --output=/root/.bashrc"}, "must be one word"),
]


@pytest.mark.parametrize(("slurm", "message"), REFUSED)
def test_hostile_task_values_are_refused_with_one_line(slurm, message):
    with pytest.raises(UserError) as caught:
        task_slurm_overrides(slurm, "extra.slurm")
    assert message in caught.value.message
    assert "\n" not in caught.value.message and "\r" not in caught.value.message


def test_validate_and_submit_refuse_a_hostile_task_file_with_exit_2_and_queue_nothing(home):
    path = home / "hostile.yaml"
    path.write_text(yaml.safe_dump(_task("hostile", {"sbatch_options": ["--mem=4G\ntouch /tmp/tq-pwned"]})))
    checked = _cli(home, "validate", str(path))
    assert checked.returncode == 2
    assert "extra.slurm: sbatch option '--mem=4G" in checked.stdout
    assert "contains the control character \\x0a" in checked.stdout
    submitted = _cli(home, "submit", str(path))
    assert submitted.returncode == 2
    lines = submitted.stderr.strip().splitlines()
    assert len(lines) == 1 and "control character \\x0a" in lines[0], submitted.stderr
    assert "Traceback" not in submitted.stderr
    path.write_text(yaml.safe_dump(_task("hostile", {"sbatch_options": ["--export=LD_PRELOAD=/x.so"]})))
    submitted = _cli(home, "submit", str(path))
    assert submitted.returncode == 2
    assert "'--export' may not be set by a task file" in submitted.stderr
    assert jobs.list_jobs(open_db()) == []


def test_runner_owner_options_with_a_control_character_are_refused(home):
    with pytest.raises(UserError, match="control character"):
        configure("slurm", {"sbatch_options": ["--exclusive\ntouch /tmp/tq-pwned"]})
    with pytest.raises(UserError, match="control character"):
        configure("slurm", {"account": "lab\n"})
    # The owner may set any sbatch option; the task file may not.
    configure("slurm", {"sbatch_options": ["--export=NONE", "--output=/shared/logs/%j.out"]})
    assert load_settings().slurm["sbatch_options"] == ["--export=NONE", "--output=/shared/logs/%j.out"]


HOSTILE = {
    "comment": "$(touch MARKER-subst) `touch MARKER-backtick` 'single' \"double\" ; touch MARKER-semi #",
    "constraint": "a100$(touch${IFS}MARKER-constraint)",
    "job_name": "x';touch MARKER-job-name;'",
    "sbatch_options": ["--gres=gpu:1`touch${IFS}MARKER-gres`", "--time=1:00:00|touch${IFS}MARKER-time"],
}


def _hostile_request(home: Path, name: str = "hostile"):
    db = open_db()
    task = _task(name, HOSTILE)
    job = jobs.submit(db, task_yaml=yaml.safe_dump(task), name=name, gpus=1)
    request = request_for(job, load_settings(), SlurmOptions(), home)
    return job, request


def test_allowed_hostile_values_render_quoted_as_the_golden_batch_script(home):
    _job, request = _hostile_request(home)
    request.run_dir = Path("/shared/tunequeue/runs/1-hostile")
    request.python = "/opt/tunequeue/.venv/bin/python"
    request.comment = "tunequeue:0123456789:1:1"
    script = render_batch_script(request)
    if os.environ.get("TUNEQUEUE_UPDATE_GOLDEN"):
        GOLDEN.write_text(script)
    assert script == GOLDEN.read_text()
    directives = [line for line in script.splitlines() if "MARKER" in line]
    # Every hostile value sits inside one quoted #SBATCH word, on its own line.
    assert len(directives) == 5 and all(line.startswith("#SBATCH '--") for line in directives)
    assert all(line.endswith("'") for line in directives)
    assert "#SBATCH '--comment=tunequeue:0123456789:1:1 $(touch MARKER-subst)" in script
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


def test_a_control_character_reaching_the_script_from_the_runner_side_is_refused(home):
    _job, request = _hostile_request(home)
    request.run_dir = Path("/shared/runs/1-x\ntouch MARKER")
    with pytest.raises(UserError, match="control character \\\\x0a"):
        render_batch_script(request)
    _job, request = _hostile_request(home, "hostile-two")
    request.train_command = ["python", "train.py\rtouch MARKER"]
    with pytest.raises(UserError, match="control character \\\\x0d"):
        render_batch_script(request)


def _fake_sbatch_on_path(tmp_path: Path, monkeypatch) -> Path:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(FAKE_SBATCH)
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_fake_sbatch_runs_shell_that_leaves_its_line(tmp_path, monkeypatch):
    """The fake sbatch really executes a script: a raw newline after #SBATCH runs the next line."""
    _fake_sbatch_on_path(tmp_path, monkeypatch)
    script = tmp_path / "broken.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH --comment=x\ntouch {tmp_path / 'MARKER-raw'}\n")
    out = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "4242"
    assert (tmp_path / "MARKER-raw").exists()


def test_runner_submits_hostile_values_through_a_fake_sbatch_and_no_injected_shell_runs(
    home, tmp_path, monkeypatch
):
    from tunequeue.runner.daemon import Runner

    _fake_sbatch_on_path(tmp_path, monkeypatch)
    monkeypatch.setenv("TUNEQUEUE_TRAIN_COMMAND", f"{sys.executable} {STAND_IN}")
    monkeypatch.setenv("STAND_IN_STEP_SECONDS", "0.01")
    configure("slurm", {})
    db = open_db()
    job = jobs.submit(
        db, task_yaml=yaml.safe_dump(_task("hostile", HOSTILE, max_samples=2)), name="hostile", gpus=1
    )
    # Before this version a task could carry any option: such a job already in the queue fails at
    # submission with the one-line reason and no script is handed to sbatch.
    old = jobs.submit(
        db,
        task_yaml=yaml.safe_dump(_task("old", {"sbatch_options": ["--output=/root/.bashrc"]})),
        name="old",
        gpus=1,
    )
    report = Runner(db).tick()
    assert job.id in report.started
    run_dir = Path(jobs.get(db, job.id).run_dir)
    assert jobs.get(db, job.id).backend_job_id == "4242"
    # The script ran to its end: the wrapper recorded the stand-in trainer's exit.
    record = run_dir / "exit.json"
    assert record.exists(), (run_dir / "fake-sbatch.out").read_text()
    assert '"exit_code": 0' in record.read_text()
    assert "STAND-IN end=" in (run_dir / "fake-sbatch.out").read_text()
    markers = [path for root in (run_dir, tmp_path, Path.cwd()) for path in root.glob("MARKER*")]
    assert markers == []
    failed = jobs.get(db, old.id)
    assert failed.state.value == "failed"
    assert "'--output' may not be set by a task file" in failed.reason
    assert not (Path(failed.run_dir) / "slurm-batch.sh").exists()
