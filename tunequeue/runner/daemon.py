"""The runner daemon: one per home, a lock file, signal flags and a testable `Runner.tick`.

Each tick asks the home's backend (`tunequeue.runner.backends`: local processes or Slurm) to reap
ended jobs → adopt jobs an earlier runner started → (GPUs are sampled, stored every few seconds) →
schedule queued jobs → launch them → ingest trainer_log.jsonl metrics. Deadlines and grace periods use
the monotonic clock, and processes are identified by start ticks and boot id (`tunequeue.runner.procs`),
so a wall-clock step never makes the runner kill or lose a healthy job.

The lock file (flock, one runner per home) holds the runner's identity line; `running_pid` reads it
and checks that process without taking the lock, so polling `runner status` or the TUI never makes a
starting runner fail.

Stopping the runner never stops jobs: they run in their own sessions, and the next runner re-adopts
them. `start_detached` starts ``tunequeue runner start --foreground`` in a new session with output in
runner.log, so it survives the SSH session that started it. Signal handlers only set flags.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tunequeue.core import paths, private_files
from tunequeue.core.disk_full import SpaceReserve, is_disk_full
from tunequeue.core.errors import UserError
from tunequeue.runner import procs
from tunequeue.runner.backends import create_backend
from tunequeue.runner.settings import RunnerSettings, load_settings
from tunequeue.runner.wrapper import log_tail

log = logging.getLogger("tunequeue.runner")

_PRUNE_EVERY_S = 600.0
SPACE_RESERVE_FILE = ".space-reserve"  # see SpaceReserve: lets a full disk still record job ends


@dataclass
class TickReport:
    """What one tick did (for logs and tests)."""

    finished: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    adopted: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    signalled: list[int] = field(default_factory=list)
    metrics_rows: int = 0
    gpu_samples: int = 0


class Runner:
    """The scheduling and supervision loop of one home; `tick` is one pass, `serve` the daemon loop."""

    def __init__(self, db=None, settings: RunnerSettings | None = None) -> None:
        from tunequeue.jobqueue.db import open_db

        if db is None:
            db = open_db()
            db.lock_wait_seconds = 0.0  # a locked queue is retried at the next tick, not inside this one
        self.db = db
        self.settings = settings or load_settings()
        self.backend = create_backend(self.settings)
        self.last_sample_at: float | None = None
        self.last_prune_at: float | None = None
        self.stop_requested = False
        self.wake_requested = False
        self._last_fault: tuple[str, float] = ("", 0.0)  # last storage fault logged, and when

    # ----- one pass -------------------------------------------------------------------------------

    def tick(self, *, schedule: bool = True) -> TickReport:
        """One pass: the backend reaps, adopts, schedules, launches and ingests (GPUs sampled in between).

        ``now`` given to the backend is wall-clock time, for what is stored or compared with stored
        times (GPU samples, how long a job waited); deadlines and grace periods use `time.monotonic`.
        """
        report = TickReport()
        now = time.time()
        backend = self.backend
        backend.reap(self, report, now)
        backend.adopt(self, report)
        snapshot = self.sample_gpus(report, now)
        if schedule:
            for job in backend.schedule(self, report, snapshot, now):
                backend.launch(self, job, report)
        backend.ingest(self, report)
        return report

    def active_jobs(self):
        """Every job in an active state (starting, running, cancelling), fresh from the queue."""
        from tunequeue.jobqueue import jobs

        return jobs.list_jobs(self.db, states=list(jobs.ACTIVE_STATES))

    def sample_gpus(self, report: TickReport, now: float):
        """Read the GPUs (every tick, for scheduling); store a sample row per GPU every few seconds."""
        from tunequeue.gpus import read_gpus
        from tunequeue.jobqueue import metrics

        snapshot = read_gpus()
        clock = time.monotonic()
        due = self.last_sample_at is None or clock - self.last_sample_at >= self.settings.gpu_sample_seconds
        if snapshot.gpus and due:
            owner: dict[int, int] = {}
            for job in self.active_jobs():
                for index in job.assigned_gpus:
                    owner.setdefault(index, job.id)
            rows = [
                {
                    "time": now,
                    "uuid": gpu.uuid,
                    "gpu_index": gpu.index,
                    "utilization": gpu.utilization_pct,
                    "memory_used_mib": gpu.memory_used_mib,
                    "memory_total_mib": gpu.memory_total_mib,
                    "temperature": gpu.temperature_c,
                    "power_w": gpu.power_w,
                    "job_id": owner.get(gpu.index),
                    "simulated": gpu.simulated,
                }
                for gpu in snapshot.gpus
            ]
            metrics.add_gpu_samples(self.db, rows)
            self.last_sample_at = clock
            report.gpu_samples += len(rows)
        if self.last_prune_at is None or clock - self.last_prune_at >= _PRUNE_EVERY_S:
            metrics.prune_gpu_samples(self.db, self.settings.gpu_sample_keep_seconds)
            self.last_prune_at = clock
        return snapshot

    # ----- daemon loop ----------------------------------------------------------------------------

    def request_stop(self, *_args) -> None:
        """Signal handler: finish the current tick, then leave (jobs keep running)."""
        self.stop_requested = True

    def request_wake(self, *_args) -> None:
        """Signal handler: run the next tick now (sent by `submit` so new jobs start without delay)."""
        self.wake_requested = True

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT ask for a stop, SIGUSR1 for an immediate tick, SIGHUP is ignored."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, self.request_wake)

    def serve(self) -> None:
        """Tick until a stop is requested, sleeping ``tick_seconds`` between ticks (woken by SIGUSR1)."""
        self.install_signal_handlers()
        reserve = SpaceReserve(paths.home() / SPACE_RESERVE_FILE)
        log.info(
            "runner %s started for %s (tick %.2f s)", os.getpid(), paths.home(), self.settings.tick_seconds
        )
        while not self.stop_requested:
            started = time.monotonic()
            self.wake_requested = False
            try:
                self._backup_if_due()
                reserve.ensure()
                self.tick()
            except Exception as err:
                if _is_disk_full(err) and reserve.release():
                    log.warning("disk full: gave back %s to record the jobs that ended", reserve.path.name)
                    try:
                        self.tick()
                    except Exception as again:
                        self._log_tick_error(again)
                else:
                    self._log_tick_error(err)
            while (
                not self.stop_requested
                and not self.wake_requested
                and time.monotonic() - started < self.settings.tick_seconds
            ):
                time.sleep(min(0.05, self.settings.tick_seconds))
        active = len(self.active_jobs())
        log.info(
            "runner %s stopped; %d active job(s) keep running and are re-adopted at next start",
            os.getpid(),
            active,
        )

    def _backup_if_due(self) -> None:
        """The daily backup of the queue (at start, then once a day); a failure is logged, not fatal."""
        from tunequeue.jobqueue.db import backup_if_due

        try:
            made = backup_if_due(self.db)
        except Exception as err:
            self._log_tick_error(err, "queue backup failed")
            return
        if made is not None:
            log.info("queue backed up to %s", made)

    def _log_tick_error(self, err: Exception, what: str = "tick failed") -> None:
        """One line for a storage fault (locked, disk full, damaged), repeated at most once a minute;
        a traceback for anything else."""
        from tunequeue.jobqueue.db import as_user_error

        known = err if isinstance(err, UserError) else as_user_error(err)
        if known is not None:
            line = f"{what}: {known}"
            last_line, last_at = self._last_fault
            if line != last_line or time.monotonic() - last_at >= 60.0:
                log.warning("%s; trying again at the next tick", line)
                self._last_fault = (line, time.monotonic())
        else:
            log.error("%s; trying again at the next tick", what, exc_info=err)

    def drain(self, timeout: float | None = None) -> bool:
        """Tick without scheduling until no job is active (used to cancel jobs with no runner running)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.active_jobs():
            if deadline is not None and time.monotonic() > deadline:
                return False
            self.tick(schedule=False)
            time.sleep(min(0.2, self.settings.tick_seconds))
        return True


def _is_disk_full(err: BaseException) -> bool:
    from tunequeue.jobqueue.db import DiskFull, as_user_error

    return isinstance(err, DiskFull) or isinstance(as_user_error(err), DiskFull) or is_disk_full(err)


# ----- lock, start, stop, status ------------------------------------------------------------------


def _already_running(pid: int | str) -> UserError:
    return UserError(
        f"a runner is already running for {paths.home()} (pid {pid}); "
        "use `tunequeue runner status` or stop it with `tunequeue runner stop`"
    )


def _identity_line() -> bytes:
    me = procs.identify(os.getpid())
    return f"{os.getpid()} {me.start_ticks if me else 0} {procs.boot_id() or '-'}\n".encode()


def acquire_lock() -> int:
    """Take the home's runner lock (flock) and write our identity into it; refuse when another holds it.

    The lock file holds one line, ``PID START_TICKS BOOT_ID``, which `running_pid` reads without
    taking the lock. Returns the lock's file descriptor, held for the daemon's lifetime.
    """
    fd = private_files.open_fd(paths.runner_lock_path(), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _already_running(running_pid() or "unknown") from None
    # One in-place write, then trim: a reader sees the old line or the new one, each ending in a newline.
    text = _identity_line()
    os.pwrite(fd, text, 0)
    os.ftruncate(fd, len(text))
    return fd


def release_lock(fd: int) -> None:
    """Clear our identity from the lock file, then release the lock (the daemon's last act)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)


def _parse_identity(text: str) -> tuple[int, int | None, str | None] | None:
    words = text.split("\n", 1)[0].split() if "\n" in text else []
    if len(words) == 1 and words[0].isdigit():
        return int(words[0]), None, None  # written by an earlier version: pid only
    if len(words) != 3 or not words[0].isdigit() or not words[1].isdigit():
        return None
    boot = None if words[2] == "-" else words[2]
    if boot is not None and procs.boot_id() and len(boot) != len(procs.boot_id()):
        return None
    return int(words[0]), int(words[1]), boot


def running_pid() -> int | None:
    """Pid of this home's runner, or None when none runs; never takes the lock.

    Reads the identity the runner wrote into the lock file and checks that this very process (pid,
    start ticks, boot id) still runs, so a stale line of a killed runner or a recycled pid reads as
    "not running". Taking even a shared lock here would make a starting runner fail to get its lock.
    """
    path = paths.runner_lock_path()
    for _ in range(50):
        try:
            text = private_files.read_text(path)
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            return None  # not a line any runner writes
        if not text:
            return None
        identity = _parse_identity(text)
        if identity is not None:
            pid, ticks, boot = identity
            return pid if pid > 0 and procs.is_alive(pid, ticks, boot) else None
        time.sleep(0.01)  # a runner is writing its line right now
    return None


def _configure_logging() -> None:
    logger = logging.getLogger("tunequeue")
    logger.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    log_path = paths.runner_log_path()
    stderr_is_log = False
    with contextlib.suppress(OSError):
        stderr_is_log = log_path.exists() and os.path.samestat(os.fstat(2), os.stat(log_path))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if not stderr_is_log:
        handlers.append(logging.StreamHandler(private_files.open_file(log_path, "a")))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)


def serve_foreground() -> None:
    """Run the daemon in this process until SIGTERM/SIGINT (what systemd and the detached start run)."""
    private_files.restrict_umask()  # files the daemon and its backends write (slurm.json, scripts)
    runner = Runner()
    # Handlers go in before the lock is visible: a `submit` may send SIGUSR1 the moment it sees our pid.
    runner.install_signal_handlers()
    lock_fd = acquire_lock()
    try:
        _configure_logging()
        runner.serve()
    finally:
        release_lock(lock_fd)


def start_detached(wait_seconds: float = 15.0) -> int:
    """Start the runner in a new session (survives logout), output to runner.log; return its pid."""
    pid = running_pid()
    if pid is not None:
        raise _already_running(pid)
    log_path = paths.runner_log_path()
    with private_files.open_file(log_path, "ab") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "tunequeue", "runner", "start", "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=paths.home(),
        )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if running_pid() == child.pid:
            return child.pid
        if child.poll() is not None:
            last = next((line for line in reversed(log_tail(log_path, 5)) if line.strip()), "")
            message = last.removeprefix("error: ") if last else f"exit code {child.returncode}"
            raise UserError(f"the runner did not start: {message}")
        time.sleep(0.05)
    raise UserError(f"the runner did not take its lock within {wait_seconds:.0f} s; see {log_path}")


def stop_runner(timeout: float = 30.0) -> int | None:
    """SIGTERM the home's runner and wait until it released its lock; return its pid (None: none ran)."""
    pid = running_pid()
    if pid is None or pid <= 0:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid() is not None:
        if time.monotonic() > deadline:
            raise UserError(
                f"the runner (pid {pid}) did not stop within {timeout:.0f} s; see {paths.runner_log_path()}"
            )
        time.sleep(0.05)
    return pid


def wake_runner() -> None:
    """Ask a running runner to tick now (no-op when none runs)."""
    pid = running_pid()
    if pid and pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGUSR1)


SERVICE_NAME = "tunequeue-runner.service"


def service_unit_text() -> str:
    """A systemd user unit running the runner in the foreground for this home."""
    return (
        "[Unit]\n"
        "Description=tunequeue runner (fine-tuning job queue) for " + str(paths.home()) + "\n"
        "After=default.target\n\n"
        "[Service]\n"
        "Type=simple\n"
        f"Environment=TUNEQUEUE_HOME={paths.home()}\n"
        f"ExecStart={sys.executable} -m tunequeue runner start --foreground\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "# Jobs run in their own sessions and must outlive a runner restart: stop only the runner itself.\n"
        "KillMode=process\n\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def install_service() -> Path:
    """Write the systemd user unit (XDG_CONFIG_HOME/systemd/user) and return its path."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    unit_dir = config / "systemd" / "user"
    unit_dir.mkdir(parents=True, exist_ok=True)
    path = unit_dir / SERVICE_NAME
    path.write_text(service_unit_text(), encoding="utf-8")
    return path
