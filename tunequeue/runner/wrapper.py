"""The small parent of every training process: records its exit in RUN_DIR/exit.json.

``python -m tunequeue.runner.wrapper RUN_DIR -- CMD ...`` first writes its own process record
(RUN_DIR/process.json: attempt, pid, pgid, start ticks, boot id; see `tunequeue.runner.procs`), then runs
CMD in the wrapper's own process group (the runner starts the wrapper as a session leader), waits for it
and writes ``exit.json`` with the exit code, the signal that killed it, the finish time and a one-line
reason. Because the wrapper outlives the runner, a job's result is recorded even when the runner was
down when the job ended, and a runner that died right after starting the wrapper adopts the job from
its record instead of starting it twice. When the run dir was deleted under the job, nothing can be
recorded there; the runner reports such a job as "run dir deleted".

The space exit.json needs is taken before the trainer starts (``.exit.json.reserved``), so a job that dies
of a full disk is still recorded, as "disk full" (the trainer's exit code 4, an out-of-space message in
the log tail, or a disk with almost no space left when it failed).

A SIGTERM sent to the wrapper is forwarded once to the whole process group (torchrun and its workers
included); SIGHUP is ignored so a closing terminal can never end a job.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tunequeue.core import disk_full, private_files

EXIT_FILE = "exit.json"
LOG_FILE = "train.log"
# Space for exit.json taken before the trainer starts, so its end is recorded even on a full disk.
RESERVED_EXIT_FILE = ".exit.json.reserved"
_RESERVED_BYTES = 4096
_TAIL_BYTES = 64 * 1024
_OOM_MARKERS = ("out of memory", "outofmemoryerror")


def log_tail(log_path: Path, max_lines: int = 20) -> list[str]:
    """The last ``max_lines`` lines of a log file (empty when it does not exist)."""
    try:
        with private_files.open_file(log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            data = handle.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return [line.rstrip() for line in lines[-max_lines:]]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_reason(exit_code: int | None, signal_number: int | None, log_path: Path) -> str:
    """One line saying why a training process ended, from its exit status and the tail of its log."""
    tail = log_tail(log_path, 40)
    if exit_code == 0 and not signal_number:
        return ""
    if any(marker in line.lower() for line in tail for marker in _OOM_MARKERS):
        return "out of memory (see train.log); lower per_device_train_batch_size or cutoff_len"
    if not signal_number and (
        exit_code == disk_full.EXIT_DISK_FULL
        or (exit_code not in (2, 3) and disk_full.text_says_disk_full(tail[-5:]))
        # A full disk may leave no room for the error message itself.
        or (exit_code not in (2, 3) and disk_full.nearly_full(log_path.parent))
    ):
        return (
            f"disk full: no space left for {log_path.parent}; free some space, then retry the job "
            "(it resumes from the last complete checkpoint)"
        )
    last_line = next((line.strip() for line in reversed(tail) if line.strip()), "")
    if signal_number:
        head = f"killed by {_signal_name(signal_number)}"
    elif exit_code == 3:
        return "cancelled after saving a checkpoint"
    else:
        head = f"exit code {exit_code}"
    return f"{head}: {last_line}" if last_line else head


def reserve_exit_file(run_dir: Path) -> None:
    """Take the space exit.json will need now, while the disk still has it."""
    with contextlib.suppress(OSError), private_files.open_file(run_dir / RESERVED_EXIT_FILE, "wb") as handle:
        handle.write(b" " * _RESERVED_BYTES)


def write_exit_file(run_dir: Path, exit_code: int | None, signal_number: int | None, reason: str) -> None:
    """Write exit.json atomically: into the reserved file when there is one (no new space), then rename."""
    record = {
        "exit_code": exit_code,
        "signal": signal_number,
        "finished_at": time.time(),
        "reason": reason[:2000],
    }
    text = json.dumps(record).encode()
    reserved = run_dir / RESERVED_EXIT_FILE
    try:
        fd = private_files.open_fd(reserved, os.O_WRONLY)
    except FileNotFoundError:
        private_files.write_text(run_dir / EXIT_FILE, text.decode())
        return
    try:
        # Trailing spaces keep it valid JSON and overwrite blocks already allocated.
        os.pwrite(fd, text.ljust(_RESERVED_BYTES), 0)
    finally:
        os.close(fd)
    os.replace(reserved, run_dir / EXIT_FILE)


def read_exit_file(run_dir: Path) -> dict | None:
    """The record written by the wrapper, or None when there is none (or it is unreadable)."""
    try:
        return json.loads(private_files.read_text(Path(run_dir) / EXIT_FILE))
    except (OSError, ValueError):
        return None


def _write_own_record(run_dir: Path) -> None:
    from tunequeue.runner.procs import own_record, write_record

    try:
        attempt = int(os.environ.get("TUNEQUEUE_ATTEMPT") or 1)
    except ValueError:
        attempt = 1
    try:
        write_record(run_dir, own_record(attempt))
    except OSError as err:
        # The runner still finds this process by its command line; say why the record is missing.
        print(f"could not write {run_dir}/process.json: {err.strerror or err}", file=sys.stderr, flush=True)


def run(run_dir: Path, command: list[str]) -> int:
    """Run ``command``, forward SIGTERM to the process group once, record the exit; return the exit code."""
    forwarded = False

    def on_term(signum, _frame):
        nonlocal forwarded
        if forwarded:
            return
        forwarded = True
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(OSError):
            os.killpg(os.getpgrp(), signal.SIGTERM)

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    reserve_exit_file(run_dir)
    _write_own_record(run_dir)
    try:
        child = subprocess.Popen(command, cwd=run_dir)
    except OSError as err:
        reason = f"could not start {command[0]}: {err.strerror or err}"
        print(reason, file=sys.stderr, flush=True)
        write_exit_file(run_dir, 127, None, reason)
        return 127
    while True:
        try:
            returncode = child.wait()
            break
        except InterruptedError:
            continue
    signal_number = -returncode if returncode < 0 else None
    exit_code = 128 + signal_number if signal_number else returncode
    reason = exit_reason(exit_code, signal_number, run_dir / LOG_FILE)
    write_exit_file(run_dir, exit_code, signal_number, reason)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``RUN_DIR -- CMD ...``."""
    args = list(sys.argv[1:] if argv is None else argv)
    private_files.restrict_umask()
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m tunequeue.runner.wrapper RUN_DIR -- CMD ...", file=sys.stderr)
        return 2
    return run(Path(args[0]), args[2:])


if __name__ == "__main__":
    sys.exit(main())
