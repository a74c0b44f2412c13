"""The runner daemon: one per home, a lock file, signal flags and a testable `Runner.tick`.

Each tick: reap finished jobs (exit recorded by the wrapper, or "lost") → adopt live jobs started by an
earlier runner (pid + process start time) → sample GPUs (stored every few seconds, old samples pruned)
→ ingest trainer_log.jsonl metrics → schedule queued jobs and launch them. Cancelling jobs get SIGTERM
(through their wrapper, to the whole group) and SIGKILL after the grace period. That is the local
backend; with ``backend: slurm`` (`tunequeue.runner.backends`) a tick submits jobs with sbatch and
follows them through squeue/scontrol instead.

Stopping the runner never stops jobs: they run in their own sessions, and the next runner re-adopts
them. `start_detached` starts ``tunequeue runner start --foreground`` in a new session with output in
runner.log, so it survives the SSH session that started it. Signal handlers only set flags.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tunequeue.core import paths, private_files
from tunequeue.core.disk_full import SpaceReserve, is_disk_full
from tunequeue.core.errors import UserError
from tunequeue.runner import launch as launcher
from tunequeue.runner.backends import create_backend
from tunequeue.runner.ingest import ingest_job
from tunequeue.runner.settings import RunnerSettings, load_settings
from tunequeue.runner.wrapper import log_tail, read_exit_file

log = logging.getLogger("tunequeue.runner")

PROCESS_FILE = "process.json"
SPACE_RESERVE_FILE = ".space-reserve"  # see SpaceReserve: lets a full disk still record job ends
_PRUNE_EVERY_S = 600.0
_LOST_REASON = (
    "lost: the process ended without an exit record (killed together with its wrapper, or a reboot)"
)


@dataclass
class TickReport:
    """What one tick did (for logs and tests)."""

    finished: list[int] = field(default_factory=list)
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
        self.children: dict[int, subprocess.Popen] = {}
        self.term_sent_at: dict[int, float] = {}
        self.known_alive: set[int] = set()
        self.last_sample_at = 0.0
        self.last_prune_at = 0.0
        self.stop_requested = False
        self.wake_requested = False
        self._last_fault: tuple[str, float] = ("", 0.0)  # last storage fault logged, and when

    # ----- one pass -------------------------------------------------------------------------------

    def tick(self, *, schedule: bool = True) -> TickReport:
        """One pass of the loop, run by the backend (local: reap → adopt → sample GPUs → ingest → launch)."""
        report = TickReport()
        self.backend.tick(self, report, time.time(), schedule=schedule)
        return report

    def _active_jobs(self):
        from tunequeue.jobqueue import jobs

        return jobs.list_jobs(self.db, states=list(jobs.ACTIVE_STATES))

    def reap(self, report: TickReport, now: float) -> None:
        """Finish jobs whose process is gone; drive cancellations (SIGTERM, then SIGKILL after the grace)."""
        from tunequeue.jobqueue.jobs import JobState

        for job in self._active_jobs():
            popen = self.children.get(job.id)
            if popen is not None:
                popen.poll()  # collects our own exited children so they don't linger as zombies
            if job.pid is None:
                if job.state == JobState.CANCELLING:
                    self._finish(job, None, None, "cancelled before it started", report)
                elif job.state == JobState.STARTING:
                    self._resume_start(job, report)
                continue
            alive = launcher.is_alive(job.pid, job.proc_start_time)
            if job.state == JobState.CANCELLING and (alive or launcher.group_alive(job.pgid)):
                self._drive_cancel(job, alive, report, now)
                continue
            if alive:
                continue
            if launcher.group_alive(job.pgid):
                # The wrapper is gone but some of its processes are not: the GPUs stay assigned until
                # the whole group has exited.
                launcher.kill_group(job.pgid)
                continue
            self._ingest_one(job, report)
            record = read_exit_file(Path(job.run_dir))
            if record is None:
                if job.state == JobState.CANCELLING:
                    self._finish(
                        job, None, signal.SIGKILL, "cancelled (killed after the grace period)", report
                    )
                else:
                    self._finish(job, None, None, _LOST_REASON, report)
            else:
                self._finish(
                    job, record.get("exit_code"), record.get("signal"), record.get("reason", ""), report
                )

    def _drive_cancel(self, job, alive: bool, report: TickReport, now: float) -> None:
        sent_at = self.term_sent_at.get(job.id)
        if sent_at is None:
            launcher.terminate(job.pid, job.proc_start_time, job.pgid)
            self.term_sent_at[job.id] = now
            report.signalled.append(job.id)
            log.info("job %s: SIGTERM sent (cancel requested)", job.id)
        elif now - sent_at >= self.settings.cancel_grace_seconds:
            log.info(
                "job %s: still running after %.0f s; SIGKILL", job.id, self.settings.cancel_grace_seconds
            )
            launcher.kill_group(job.pgid)

    def _finish(self, job, exit_code, signal_number, reason: str, report: TickReport) -> None:
        from tunequeue.jobqueue import jobs

        try:
            done = jobs.finish(self.db, job.id, exit_code=exit_code, signal=signal_number, reason=reason)
        except jobs.InvalidTransition as err:
            log.warning("job %s: could not record its end: %s", job.id, err)
            return
        self.children.pop(job.id, None)
        self.term_sent_at.pop(job.id, None)
        self.known_alive.discard(job.id)
        report.finished.append(job.id)
        log.info("job %s %s %s", job.id, done.state.value, f"({reason})" if reason else "")

    def _resume_start(self, job, report: TickReport) -> None:
        """A claimed job with no recorded process: adopt what an earlier runner launched, else launch it."""
        record = _read_process_file(Path(job.run_dir))
        if (
            record
            and record.get("attempt") == job.attempt
            and launcher.is_alive(record.get("pid"), record.get("start_time"))
        ):
            self._mark_running(
                job, launcher.LaunchedProcess(record["pid"], record["pgid"], record["start_time"])
            )
            report.adopted.append(job.id)
            return
        self._launch(job, report)

    def adopt(self, report: TickReport) -> None:
        """Note live jobs this runner did not start (left by an earlier runner); they are supervised alike."""
        from tunequeue.jobqueue.jobs import JobState

        for job in self._active_jobs():
            if job.id in self.known_alive or job.id in self.children or job.pid is None:
                continue
            if job.state in (JobState.RUNNING, JobState.CANCELLING) and launcher.is_alive(
                job.pid, job.proc_start_time
            ):
                self.known_alive.add(job.id)
                report.adopted.append(job.id)
                log.info("job %s: adopted running process %s", job.id, job.pid)

    def sample_gpus(self, report: TickReport, now: float):
        """Read the GPUs (every tick, for scheduling); store a sample row per GPU every few seconds."""
        from tunequeue.gpus import read_gpus
        from tunequeue.jobqueue import metrics

        snapshot = read_gpus()
        if snapshot.gpus and now - self.last_sample_at >= self.settings.gpu_sample_seconds:
            owner: dict[int, int] = {}
            for job in self._active_jobs():
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
            self.last_sample_at = now
            report.gpu_samples += len(rows)
        if now - self.last_prune_at >= _PRUNE_EVERY_S:
            metrics.prune_gpu_samples(self.db, self.settings.gpu_sample_keep_seconds)
            self.last_prune_at = now
        return snapshot

    def ingest(self, report: TickReport) -> None:
        """Store new trainer_log.jsonl rows of every running job."""
        for job in self._active_jobs():
            if job.pid is not None:
                self._ingest_one(job, report)

    def _ingest_one(self, job, report: TickReport) -> None:
        try:
            report.metrics_rows += ingest_job(self.db, job)
        except (OSError, sqlite3.Error) as err:  # a full disk must not keep a finished job from its end
            log.warning("job %s: could not read its metrics: %s", job.id, err)

    def schedule(self, report: TickReport, snapshot, now: float) -> None:
        """Ask the scheduler which queued jobs start where; record why the others wait; launch."""
        from tunequeue.jobqueue import jobs
        from tunequeue.runner.scheduler import schedule

        queued = jobs.list_jobs(self.db, states=[jobs.JobState.QUEUED])
        if not queued:
            return
        active = self._active_jobs()
        busy: dict[int, list[int]] = {}
        for job in active:
            for index in job.assigned_gpus:
                busy.setdefault(index, []).append(job.id)
        dependency = jobs.dependency_statuses(self.db, queued)
        decision = schedule(
            queued,
            snapshot.gpus,
            busy=busy,
            settings=self.settings.scheduler_settings(),
            now=now,
            dependency=dependency,
            active_jobs=active,
        )
        by_id = {job.id: job for job in queued}
        for job_id, reason in decision.dependency_failed:
            with contextlib.suppress(jobs.InvalidTransition):
                jobs.transition(self.db, job_id, jobs.JobState.CANCELLED, reason=reason)
        changed = {
            job_id: reason for job_id, reason in decision.waiting.items() if by_id[job_id].reason != reason
        }
        if changed:
            jobs.set_wait_reasons(self.db, changed)
        uuid_of = {gpu.index: gpu.uuid for gpu in snapshot.gpus}
        for job_id, gpu_indices in decision.start:
            claimed = jobs.claim(
                self.db, job_id, list(gpu_indices), [uuid_of.get(i, "") for i in gpu_indices]
            )
            if claimed is not None:
                self._launch(claimed, report)

    def _launch(self, job, report: TickReport) -> None:
        try:
            process = launcher.launch(job, self.settings)
        except OSError as err:
            self._finish(job, 127, None, f"could not start the training process: {err}", report)
            return
        self.children[job.id] = process.popen
        _write_process_file(Path(job.run_dir), job.attempt, process)
        if self._mark_running(job, process):
            report.started.append(job.id)
            log.info(
                "job %s started: pid %s, GPUs %s", job.id, process.pid, job.assigned_gpus or "none (CPU)"
            )

    def _mark_running(self, job, process: launcher.LaunchedProcess) -> bool:
        from tunequeue.jobqueue import jobs

        try:
            jobs.mark_running(self.db, job.id, process.pid, process.pgid, process.start_time)
            self.known_alive.add(job.id)
            return True
        except jobs.InvalidTransition:
            # Cancelled between claim and launch: stop what was just started and record the cancel.
            launcher.terminate(process.pid, process.start_time, process.pgid)
            deadline = time.time() + self.settings.cancel_grace_seconds
            while launcher.group_alive(process.pgid) and time.time() < deadline:
                if process.popen is not None:
                    process.popen.poll()
                time.sleep(0.05)
            launcher.kill_group(process.pgid)
            if process.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(5)
            record = read_exit_file(Path(job.run_dir)) or {}
            jobs.finish(
                self.db,
                job.id,
                exit_code=record.get("exit_code"),
                signal=record.get("signal"),
                reason="cancelled while starting",
            )
            self.children.pop(job.id, None)
            return False

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
        active = len(self._active_jobs())
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
        deadline = None if timeout is None else time.time() + timeout
        while self._active_jobs():
            if deadline is not None and time.time() > deadline:
                return False
            self.tick(schedule=False)
            time.sleep(min(0.2, self.settings.tick_seconds))
        return True


def _is_disk_full(err: BaseException) -> bool:
    from tunequeue.jobqueue.db import DiskFull, as_user_error

    return isinstance(err, DiskFull) or isinstance(as_user_error(err), DiskFull) or is_disk_full(err)


def _write_process_file(run_dir: Path, attempt: int, process: launcher.LaunchedProcess) -> None:
    record = {"attempt": attempt, "pid": process.pid, "pgid": process.pgid, "start_time": process.start_time}
    private_files.write_text(run_dir / PROCESS_FILE, json.dumps(record))


def _read_process_file(run_dir: Path) -> dict | None:
    try:
        return json.loads(private_files.read_text(run_dir / PROCESS_FILE))
    except (OSError, ValueError):
        return None


# ----- lock, start, stop, status ------------------------------------------------------------------


def _already_running(pid: int | str) -> UserError:
    return UserError(
        f"a runner is already running for {paths.home()} (pid {pid}); "
        "use `tunequeue runner status` or stop it with `tunequeue runner stop`"
    )


def acquire_lock() -> int:
    """Take the home's runner lock (flock) and write our pid into it; refuse when another runner holds it.

    Returns the lock's file descriptor, held for the daemon's lifetime.
    """
    fd = private_files.open_fd(paths.runner_lock_path(), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _already_running(running_pid() or "unknown") from None
    # One in-place write, then trim: a reader never sees an empty or half-written pid.
    text = f"{os.getpid()}\n".encode()
    os.pwrite(fd, text, 0)
    os.ftruncate(fd, len(text))
    return fd


def running_pid() -> int | None:
    """Pid of the runner holding this home's lock, or None when no runner runs."""
    path = paths.runner_lock_path()
    if not path.exists():
        return None
    fd = private_files.open_fd(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            for _ in range(50):
                text = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip()
                if text.isdigit() and int(text) > 0:
                    return int(text)
                time.sleep(0.01)  # the new runner is writing its pid right now
            return -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


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
        os.close(lock_fd)


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
    deadline = time.time() + wait_seconds
    while time.time() < deadline:
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
    deadline = time.time() + timeout
    while running_pid() is not None:
        if time.time() > deadline:
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
