"""Slurm batch scripts, options, state parsing and errors that need no running cluster.

The 2-node script is golden-file tested: it cannot run on this single machine, so the text is what is
checked (``--nodes=2``, one task per node, srun + torchrun with a c10d rendezvous on the first node).
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
from tunequeue.jobqueue import jobs
from tunequeue.jobqueue.db import open_db
from tunequeue.runner.backends import configure, multi_node_allowed
from tunequeue.runner.backends.slurm import (
    SlurmJob,
    SlurmOptions,
    render_batch_script,
    request_for,
    shared_filesystem_warning,
)
from tunequeue.runner.backends.slurm.client import parse_squeue_entry
from tunequeue.runner.settings import load_settings

GOLDEN = Path(__file__).with_name("golden") / "two_node_batch.sh"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty home for one test."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("TUNEQUEUE_HOME", str(root))
    monkeypatch.delenv("TUNEQUEUE_TRAIN_COMMAND", raising=False)
    return root


def _task(name: str, **values) -> dict:
    base = {"task_name": name, "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}
    return {**base, **values}


def _cli(*args: str, env_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNEQUEUE_HOME": str(env_home)}
    return subprocess.run(
        [sys.executable, "-m", "tunequeue", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_two_node_task_renders_the_golden_batch_script(home):
    configure(
        "slurm",
        {
            "partition": "gpu",
            "account": "lab",
            "qos": "normal",
            "time_limit": "1-00:00:00",
            "sbatch_options": ["--exclusive"],
        },
    )
    task = _task("llama-2node", gpu_count=4, nnodes=2, extra={"slurm": {"mem": "256G", "cpus_per_task": 32}})
    db = open_db()
    job = jobs.submit(db, task_yaml=yaml.safe_dump(task), name="llama-2node", gpus=4)
    settings = load_settings()
    request = request_for(job, settings, SlurmOptions.from_mapping(settings.slurm, source="test"), home)
    assert (request.nodes, request.gpus_per_node, request.options.partition) == (2, 4, "gpu")
    assert request.comment.startswith("tunequeue:") and request.comment.endswith(f":{job.id}:1")
    # Fixed paths, so the text does not depend on this machine.
    request.run_dir = Path("/shared/tunequeue/runs/1-llama-2node")
    request.python = "/opt/tunequeue/.venv/bin/python"
    request.comment = "tunequeue:0123456789:1:1"
    script = render_batch_script(request)
    if os.environ.get("TUNEQUEUE_UPDATE_GOLDEN"):
        GOLDEN.write_text(script)
    assert script == GOLDEN.read_text()
    assert "#SBATCH --nodes=2" in script and "#SBATCH --gres=gpu:4" in script
    assert '--rdzv-endpoint "$first_node:$rdzv_port"' in script
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


def test_one_node_scripts_train_directly_or_with_standalone_torchrun(home):
    db = open_db()
    options = SlurmOptions(cpus_per_task=None)
    one = jobs.submit(db, task_yaml=yaml.safe_dump(_task("one")), name="one", gpus=1)
    request = request_for(one, load_settings(), options, home)
    script = render_batch_script(request)
    assert "--nodes=1" in script and "--cpus-per-task=1" in script and "srun" not in script
    assert script.rstrip().endswith(f"-m tunequeue.train {request.run_dir}/task.yaml")
    assert "--time" not in script and "--partition" not in script
    two = jobs.submit(db, task_yaml=yaml.safe_dump(_task("two", gpu_count=2)), name="two", gpus=2)
    script = render_batch_script(request_for(two, load_settings(), options, home))
    assert "--gres=gpu:2" in script and "--cpus-per-task=2" in script
    assert "torch.distributed.run --standalone --nproc-per-node 2 -m tunequeue.train" in script
    cpu = jobs.submit(db, task_yaml=yaml.safe_dump(_task("cpu")), name="cpu", gpus=0)
    script = render_batch_script(request_for(cpu, load_settings(), options, home))
    assert "--gres" not in script and "export CUDA_VISIBLE_DEVICES=\n" in script


def test_bad_slurm_options_are_refused_with_one_sentence(home):
    with pytest.raises(UserError, match="unknown slurm option 'gpus'"):
        SlurmOptions.from_mapping({"gpus": 2}, source="task")
    with pytest.raises(UserError, match="cpus_per_task must be a whole number"):
        SlurmOptions.from_mapping({"cpus_per_task": 0}, source="task")
    with pytest.raises(UserError, match="must start with '-'"):
        SlurmOptions.from_mapping({"sbatch_options": ["exclusive"]}, source="task")
    with pytest.raises(UserError, match="applies to the slurm backend"):
        configure("local", {"partition": "gpu"})
    assert SlurmOptions.from_mapping({"time": "01:00:00"}, source="task").time_limit == "01:00:00"


def test_nnodes_above_one_is_accepted_only_with_the_slurm_backend(home):
    path = home / "two-nodes.yaml"
    path.write_text(yaml.safe_dump(_task("two-nodes", nnodes=2)))
    refused = _cli("submit", str(path), env_home=home)
    assert refused.returncode == 2 and "set nnodes to 1" in refused.stderr
    assert not multi_node_allowed()
    configure("slurm", {})
    assert multi_node_allowed()
    accepted = _cli("submit", str(path), env_home=home)
    assert accepted.returncode == 0, accepted.stderr
    job = jobs.get(open_db(), int(accepted.stdout.split()[1]))
    assert yaml.safe_load(job.task_yaml)["nnodes"] == 2
    jobs.claim(open_db(), job.id, [], [])
    jobs.set_backend_job(open_db(), job.id, "42", "Slurm PENDING")
    with pytest.raises(UserError, match="switching the runner to local"):
        configure("local", {})


def test_multi_node_run_dir_on_a_local_filesystem_is_warned_about(tmp_path):
    warning = shared_filesystem_warning(tmp_path / "runs" / "1-x")
    assert warning and "other nodes do not see" in warning


def test_squeue_json_entries_of_old_and_new_slurm_parse_alike():
    old = parse_squeue_entry(
        {
            "job_id": 12,
            "job_state": "FAILED",
            "state_reason": "NonZeroExitCode",
            "nodes": "n1",
            "exit_code": 768,
            "comment": "tunequeue:abc:3:1",
        }
    )
    assert (old.job_id, old.state, old.exit_code, old.signal, old.is_final) == ("12", "FAILED", 3, None, True)
    cancelled = parse_squeue_entry({"job_id": 13, "job_state": "CANCELLED", "exit_code": 15})
    assert (cancelled.exit_code, cancelled.signal) == (0, 15)
    new = parse_squeue_entry(
        {
            "job_id": {"set": True, "number": 14},
            "job_state": ["PENDING"],
            "state_reason": "Resources",
            "exit_code": {"status": ["PENDING"], "return_code": {"set": True, "number": 0}},
        }
    )
    assert new == SlurmJob(job_id="14", state="PENDING", reason="Resources", exit_code=0)
    assert not new.is_final


def test_no_sbatch_on_path_fails_the_job_and_the_cli_with_one_line(home, tmp_path, monkeypatch):
    configure("slurm", {})
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    db = open_db()
    job = jobs.submit(db, task_yaml=yaml.safe_dump(_task("no-sbatch")), name="no-sbatch")
    from tunequeue.runner.daemon import Runner

    report = Runner(db).tick()
    assert report.finished == [job.id]
    failed = jobs.get(db, job.id)
    assert failed.state.value == "failed"
    assert failed.reason.startswith("sbatch is not on PATH; install the Slurm client tools")
    assert jobs.retry(db, job.id).state.value == "queued"
    env = {"PATH": str(empty), "TUNEQUEUE_HOME": str(home)}
    started = subprocess.run(
        [sys.executable, "-m", "tunequeue", "runner", "start", "--backend", "slurm"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2
    assert started.stderr.strip().splitlines() == [
        "error: sbatch is not on PATH; install the Slurm client tools (slurm-client) or use --backend local"
    ]
