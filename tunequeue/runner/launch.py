"""Start a job's training process and recognise it again later.

A launch writes the resolved task to RUN_DIR/task.yaml and starts
``python -m tunequeue.runner.wrapper RUN_DIR -- <train command> RUN_DIR/task.yaml`` in a new session
(so a closing terminal or a dying runner never takes it down), with stdout and stderr appended to
RUN_DIR/train.log and no shell. The train command is ``python -m tunequeue.train`` for zero or one GPU and
``torchrun --standalone --nproc-per-node N -m tunequeue.train`` for more (standalone rendezvous picks a
free port, so two jobs never fight over 29500). ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` makes CUDA number GPUs
as NVML does, and ``CUDA_VISIBLE_DEVICES`` holds the assigned NVML indices ("" for CPU jobs).

A process is identified by pid plus its start time from /proc/<pid>/stat, so a recycled pid is never
mistaken for a job after a restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tunequeue.core import private_files
from tunequeue.runner.settings import RunnerSettings
from tunequeue.runner.wrapper import EXIT_FILE, LOG_FILE

TASK_FILE = "task.yaml"
_START_TIME_TOLERANCE_S = 2.0


@dataclass
class LaunchedProcess:
    """What the queue records about a started job: wrapper pid, its process group and its start time."""

    pid: int
    pgid: int
    start_time: float | None
    popen: subprocess.Popen | None = None


def train_command(task_file: Path, gpu_count: int, settings: RunnerSettings) -> list[str]:
    """The command that trains ``task_file`` on ``gpu_count`` GPUs (torchrun when more than one)."""
    if settings.train_command:
        return [*settings.train_command, str(task_file)]
    if gpu_count > 1:
        return [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(gpu_count), "-m", "tunequeue.train", str(task_file),
        ]
    return [sys.executable, "-m", "tunequeue.train", str(task_file)]


def wrapped_command(run_dir: Path, command: list[str]) -> list[str]:
    """``command`` run under the exit-recording wrapper."""
    return [sys.executable, "-m", "tunequeue.runner.wrapper", str(run_dir), "--", *command]


def job_env(assigned_gpus: list[int], *, job_id: int, attempt: int, base: dict[str, str] | None = None
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
    start_time = process_start_time(popen.pid)
    return LaunchedProcess(pid=popen.pid, pgid=popen.pid, start_time=start_time, popen=popen)


def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _read_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            data = handle.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields resume after the last ')'.
    return data[data.rfind(")") + 2:].split()


def process_start_time(pid: int) -> float | None:
    """Start time of ``pid`` as epoch seconds (from /proc/<pid>/stat), or None when it does not exist."""
    fields = _read_stat(pid)
    if fields is None:
        return None
    ticks = int(fields[19])  # field 22 of stat, counting the two before the split
    return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def is_alive(pid: int | None, start_time: float | None) -> bool:
    """True when ``pid`` runs (not a zombie) and, if known, started at ``start_time``."""
    if not pid:
        return False
    fields = _read_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    if start_time is None:
        return True
    current = process_start_time(pid)
    return current is not None and abs(current - start_time) <= _START_TIME_TOLERANCE_S


def group_alive(pgid: int | None) -> bool:
    """True while any process of the group still exists (zombies aside: they hold no resources)."""
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg also succeeds for zombies; look for a live member before saying yes.
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _read_stat(int(entry))
        if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def terminate(pid: int | None, start_time: float | None, pgid: int | None) -> None:
    """Ask a job to stop: SIGTERM to its wrapper, which forwards it once to the whole group."""
    if is_alive(pid, start_time):
        _send(lambda: os.kill(pid, signal.SIGTERM))
    elif pgid:
        _send(lambda: os.killpg(pgid, signal.SIGTERM))


def kill_group(pgid: int | None) -> None:
    """SIGKILL every process left in the job's group."""
    if pgid:
        _send(lambda: os.killpg(pgid, signal.SIGKILL))


def _send(action) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        action()
