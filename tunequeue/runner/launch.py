"""Start a job's training process and recognise it again later.

A launch writes the resolved task to RUN_DIR/task.yaml and starts
``python -m tunequeue.runner.wrapper RUN_DIR -- <train command> RUN_DIR/task.yaml`` in a new session
(so a closing terminal or a dying runner never takes it down), with stdout and stderr appended to
RUN_DIR/train.log and no shell. The train command is ``python -m tunequeue.train`` for zero or one GPU and
``torchrun --standalone --nproc-per-node N -m tunequeue.train`` for more (standalone rendezvous picks a
free port, so two jobs never fight over 29500). ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` makes CUDA number GPUs
as NVML does, and ``CUDA_VISIBLE_DEVICES`` holds the assigned NVML indices ("" for CPU jobs).

The launched wrapper is identified by pid, start ticks and boot id (`tunequeue.runner.procs`), so a
recycled pid is never mistaken for a job after a restart; the runner writes that record to
RUN_DIR/process.json right after starting the wrapper, which writes the same record itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tunequeue.core import private_files
from tunequeue.runner import procs
from tunequeue.runner.settings import RunnerSettings
from tunequeue.runner.wrapper import EXIT_FILE, LOG_FILE

TASK_FILE = "task.yaml"


@dataclass
class LaunchedProcess:
    """What the queue records about a started job: the wrapper's identity and its process group."""

    pid: int
    pgid: int
    start_ticks: int | None
    boot_id: str = ""
    popen: subprocess.Popen | None = None

    @classmethod
    def from_identity(cls, identity: procs.Identity, pgid: int) -> LaunchedProcess:
        """A launched process known only by its identity (adopted from another runner's launch)."""
        return cls(identity.pid, pgid, identity.start_ticks, identity.boot_id)


def train_command(task_file: Path, gpu_count: int, settings: RunnerSettings) -> list[str]:
    """The command that trains ``task_file`` on ``gpu_count`` GPUs (torchrun when more than one)."""
    if settings.train_command:
        return [*settings.train_command, str(task_file)]
    if gpu_count > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(gpu_count),
            "-m",
            "tunequeue.train",
            str(task_file),
        ]
    return [sys.executable, "-m", "tunequeue.train", str(task_file)]


def wrapped_command(run_dir: Path, command: list[str]) -> list[str]:
    """``command`` run under the exit-recording wrapper."""
    return [sys.executable, "-m", "tunequeue.runner.wrapper", str(run_dir), "--", *command]


def job_env(
    assigned_gpus: list[int], *, job_id: int, attempt: int, base: dict[str, str] | None = None
) -> dict[str, str]:
    """Environment of a job: the runner's own plus GPU selection and job identity."""
    env = dict(os.environ if base is None else base)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(index) for index in assigned_gpus)
    env["PYTHONUNBUFFERED"] = "1"
    env["TUNEQUEUE_JOB_ID"] = str(job_id)
    env["TUNEQUEUE_ATTEMPT"] = str(attempt)
    return env


def write_task_file(run_dir: Path, task_yaml: str) -> Path:
    """Create the run dir (kept on retry; private, never a symlink) and write the resolved task into it."""
    private_files.ensure_dir(run_dir)
    text = task_yaml if task_yaml.endswith("\n") else task_yaml + "\n"
    return private_files.write_text(run_dir / TASK_FILE, text)


def launch(job, settings: RunnerSettings) -> LaunchedProcess:
    """Write the task file and start the job's wrapped training process in its own session."""
    run_dir = Path(job.run_dir)
    task_file = write_task_file(run_dir, job.task_yaml)
    (run_dir / EXIT_FILE).unlink(missing_ok=True)
    command = wrapped_command(run_dir, train_command(task_file, len(job.assigned_gpus), settings))
    env = job_env(list(job.assigned_gpus), job_id=job.id, attempt=job.attempt)
    with private_files.open_file(run_dir / LOG_FILE, "ab") as log:
        popen = subprocess.Popen(
            command,
            cwd=run_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    process = LaunchedProcess(
        pid=popen.pid,
        pgid=popen.pid,
        start_ticks=procs.start_ticks(popen.pid),
        boot_id=procs.boot_id(),
        popen=popen,
    )
    if process.start_ticks is not None:
        procs.write_record(
            run_dir,
            procs.ProcessRecord(job.attempt, process.pid, process.pgid, process.start_ticks, process.boot_id),
        )
    return process
