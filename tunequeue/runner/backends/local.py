"""The local backend: jobs run as processes on this machine, on GPUs the runner's scheduler picks.

- reap: finish jobs whose process is gone, with the exit the wrapper recorded in exit.json, else
  "run dir deleted" (the run dir vanished under the job) or "lost"; drive cancellations (SIGTERM to the
  wrapper, SIGKILL to the whole group after the grace period, measured on the monotonic clock).
- adopt: take over live jobs an earlier runner started (pid + start ticks + boot id, `runner.procs`);
  a claimed job with no recorded process is adopted from the wrapper's own RUN_DIR/process.json (or the
  live wrapper process itself), so a runner that died right after launching never launches it twice.
- schedule: the pure scheduler (`runner.scheduler`) decides which queued jobs start on which GPUs;
  they are claimed in one transaction each.
- launch: `runner.launch` starts the wrapped training process in its own session.
- ingest: trainer_log.jsonl rows of every running job go into the queue.

A job's GPUs stay assigned until its whole process group has exited.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import time
from pathlib import Path

from tunequeue.runner import launch as launcher
from tunequeue.runner import procs
from tunequeue.runner.ingest import ingest_or_warn
from tunequeue.runner.wrapper import LOG_FILE, log_tail, read_exit_file

log = logging.getLogger("tunequeue.runner")

LOST_REASON = "lost: the process ended without an exit record (killed together with its wrapper, or a reboot)"
RUN_DIR_DELETED_REASON = "run dir deleted: {path} was removed while the job ran; retry to run it again"


class LocalBackend:
    """Start and supervise jobs as local processes (the default backend)."""

    name = "local"

    def __init__(self) -> None:
        self.children: dict[int, subprocess.Popen] = {}
        self.term_sent_at: dict[int, float] = {}  # monotonic time of the SIGTERM of each cancel
        self.known_alive: set[int] = set()
        self.blocked_since: dict[int, float] = {}  # queued job id → when it was first blocked by resources
        self.shared_jobs: set[int] = set()  # jobs that were put on a GPU together with another of ours

    # ----- reap -----------------------------------------------------------------------------------

    def reap(self, runner, report, now: float) -> None:
        """Finish jobs whose process is gone; drive cancellations (SIGTERM, then SIGKILL after the grace)."""
        from tunequeue.jobqueue.jobs import JobState

        for job in runner.active_jobs():
            popen = self.children.get(job.id)
            if popen is not None:
                popen.poll()  # collects our own exited children so they don't linger as zombies
            if job.pid is None:
                if job.state == JobState.CANCELLING:
                    self._finish(runner, job, None, None, "cancelled before it started", report)
                continue
            alive = self._alive(job)
            if job.state == JobState.CANCELLING and (alive or procs.group_alive(job.pgid)):
                self._drive_cancel(runner, job, report)
                continue
            if alive:
                continue
            if procs.group_alive(job.pgid):
                # The wrapper is gone but some of its processes are not: the GPUs stay assigned until
                # the whole group has exited.
                procs.kill_group(job.pgid)
                continue
            self._reap_ended(runner, job, report)

    def _alive(self, job) -> bool:
        record = procs.read_record(Path(job.run_dir))
        if record is None:
            legacy = procs.legacy_start_time(Path(job.run_dir))
            if legacy is not None and job.proc_start_time == legacy:
                return procs.matches_legacy_start_time(job.pid, legacy)
        boot = record.boot_id if record and record.pid == job.pid else None
        return procs.is_alive(job.pid, job.proc_start_time, boot)

    def _reap_ended(self, runner, job, report) -> None:
        from tunequeue.jobqueue.jobs import JobState

        run_dir = Path(job.run_dir)
        report.metrics_rows += ingest_or_warn(runner.db, job)
        record = read_exit_file(run_dir)
        if record is not None:
            self._finish(
                runner, job, record.get("exit_code"), record.get("signal"), record.get("reason", ""), report
            )
        elif job.state == JobState.CANCELLING:
            reason = "cancelled (killed after the grace period)"
            self._finish(runner, job, None, signal.SIGKILL, reason, report)
        elif not run_dir.is_dir():
            self._finish(runner, job, None, None, RUN_DIR_DELETED_REASON.format(path=run_dir), report)
        else:
            self._finish(runner, job, None, None, LOST_REASON, report)

    def _drive_cancel(self, runner, job, report) -> None:
        sent_at = self.term_sent_at.get(job.id)
        if sent_at is None:
            record = procs.read_record(Path(job.run_dir))
            boot = record.boot_id if record and record.pid == job.pid else None
            procs.terminate(job.pid, job.proc_start_time, job.pgid, boot)
            self.term_sent_at[job.id] = time.monotonic()
            report.signalled.append(job.id)
            log.info("job %s: SIGTERM sent (cancel requested)", job.id)
        elif time.monotonic() - sent_at >= runner.settings.cancel_grace_seconds:
            log.info(
                "job %s: still running after %.0f s; SIGKILL", job.id, runner.settings.cancel_grace_seconds
            )
            procs.kill_group(job.pgid)

    def _finish(self, runner, job, exit_code, signal_number, reason: str, report) -> None:
        from tunequeue.jobqueue import jobs

        if exit_code and self._requeue_after_share_oom(runner, job, reason, report):
            return
        try:
            done = jobs.finish(runner.db, job.id, exit_code=exit_code, signal=signal_number, reason=reason)
        except jobs.InvalidTransition as err:
            log.warning("job %s: could not record its end: %s", job.id, err)
            return
        self.children.pop(job.id, None)
        self.term_sent_at.pop(job.id, None)
        self.known_alive.discard(job.id)
        self.shared_jobs.discard(job.id)
        report.finished.append(job.id)
        log.info("job %s %s %s", job.id, done.state.value, f"({reason})" if reason else "")

    def _requeue_after_share_oom(self, runner, job, reason: str, report) -> bool:
        """Queue a job that died of CUDA out-of-memory on a shared GPU again, once, for a whole GPU."""
        from tunequeue.jobqueue import jobs
        from tunequeue.runner.scheduler import share_oom_retry

        was_sharing = job.id in self.shared_jobs or any(
            other.id != job.id and set(other.assigned_gpus) & set(job.assigned_gpus)
            for other in runner.active_jobs()
        )
        lines = log_tail(Path(job.run_dir) / LOG_FILE, 40)
        retry = share_oom_retry(job, was_sharing=was_sharing, reason=reason, log_lines=lines)
        if retry is None:
            return False
        try:
            jobs.requeue(runner.db, job.id, reason=retry)
        except jobs.InvalidTransition as err:
            log.warning("job %s: could not queue it again: %s", job.id, err)
            return False
        self.children.pop(job.id, None)
        self.known_alive.discard(job.id)
        self.shared_jobs.discard(job.id)
        report.requeued.append(job.id)
        log.info("job %s: %s", job.id, retry)
        return True

    # ----- adopt ----------------------------------------------------------------------------------

    def adopt(self, runner, report) -> None:
        """Supervise live jobs this runner did not start; resume claimed jobs with no recorded process."""
        from tunequeue.jobqueue.jobs import JobState

        for job in runner.active_jobs():
            if job.pid is None:
                if job.state == JobState.STARTING:
                    self._resume_start(runner, job, report)
                continue
            if job.id in self.known_alive or job.id in self.children:
                continue
            if job.state in (JobState.RUNNING, JobState.CANCELLING) and self._alive(job):
                self.known_alive.add(job.id)
                report.adopted.append(job.id)
                log.info("job %s: adopted running process %s", job.id, job.pid)

    def _resume_start(self, runner, job, report) -> None:
        """A claimed job with no recorded process: adopt what an earlier runner launched, else launch it.

        The wrapper's own record (or, before it is written, the live wrapper process) says the job was
        launched; a record of this attempt whose process has ended means it ran while no runner watched,
        so its exit is recorded instead of starting it again.
        """
        run_dir = Path(job.run_dir)
        record = self._record_of_attempt(run_dir, job.attempt)
        if record is not None and record.alive():
            process = launcher.LaunchedProcess.from_identity(record.identity, record.pgid)
            self._adopt_launched(runner, job, process, report)
            return
        found = procs.find_wrapper(run_dir)
        if found is not None:
            process = launcher.LaunchedProcess.from_identity(found, found.pid)
            self._adopt_launched(runner, job, process, report)
            return
        # Read again: a wrapper that ended between the two looks has left its record by now.
        record = self._record_of_attempt(run_dir, job.attempt)
        if record is not None:
            process = launcher.LaunchedProcess.from_identity(record.identity, record.pgid)
            if record.alive():
                self._adopt_launched(runner, job, process, report)
            elif self._mark_running(runner, job, process):
                # The next reap records its exit (once the whole process group is gone).
                log.info("job %s: its process %s ended while no runner ran", job.id, process.pid)
            return
        self.launch(runner, job, report)

    @staticmethod
    def _record_of_attempt(run_dir: Path, attempt: int) -> procs.ProcessRecord | None:
        record = procs.read_record(run_dir)
        return record if record is not None and record.attempt == attempt else None

    def _adopt_launched(self, runner, job, process, report) -> None:
        if self._mark_running(runner, job, process):
            report.adopted.append(job.id)
            log.info("job %s: adopted process %s launched by an earlier runner", job.id, process.pid)

    # ----- schedule and launch --------------------------------------------------------------------

    def schedule(self, runner, report, snapshot, now: float) -> list:
        """Ask the scheduler which queued jobs start where; record why the others wait; claim the starters."""
        from tunequeue.jobqueue import jobs
        from tunequeue.runner import observed
        from tunequeue.runner.scheduler import schedule

        queued = jobs.list_jobs(runner.db, states=[jobs.JobState.QUEUED])
        if not queued:
            self.blocked_since = {}
            return []
        active = runner.active_jobs()
        busy: dict[int, list[int]] = {}
        for job in active:
            for index in job.assigned_gpus:
                busy.setdefault(index, []).append(job.id)
        dependency = jobs.dependency_statuses(runner.db, queued)
        decision = schedule(
            queued,
            snapshot.gpus,
            busy=busy,
            settings=runner.settings.scheduler_settings(),
            now=now,
            dependency=dependency,
            active_jobs=active,
            gpu_utilization=observed.gpu_utilization(runner.db, active, now),
            blocked_since=self.blocked_since,
            eta=observed.job_etas(runner.db, active, now),
            expected_seconds=observed.expected_run_seconds(runner.db, queued),
        )
        self.blocked_since = {job_id: self.blocked_since.get(job_id, now) for job_id in decision.blocked}
        by_id = {job.id: job for job in queued}
        for job_id, reason in decision.dependency_failed:
            with contextlib.suppress(jobs.InvalidTransition):
                jobs.transition(runner.db, job_id, jobs.JobState.CANCELLED, reason=reason)
        changed = {
            job_id: reason for job_id, reason in decision.waiting.items() if by_id[job_id].reason != reason
        }
        if changed:
            jobs.set_wait_reasons(runner.db, changed)
        uuid_of = {gpu.index: gpu.uuid for gpu in snapshot.gpus}
        claimed = []
        for job_id, gpu_indices in decision.start:
            job = jobs.claim(runner.db, job_id, list(gpu_indices), [uuid_of.get(i, "") for i in gpu_indices])
            if job is not None:
                tenants = {other for index in gpu_indices for other in busy.get(index, ())}
                if tenants:
                    self.shared_jobs.update(tenants | {job_id})
                claimed.append(job)
        return claimed

    def launch(self, runner, job, report) -> None:
        """Start a claimed job's wrapped training process and record it as running."""
        try:
            process = launcher.launch(job, runner.settings)
        except OSError as err:
            self._finish(runner, job, 127, None, f"could not start the training process: {err}", report)
            return
        if process.popen is not None:
            self.children[job.id] = process.popen
        if self._mark_running(runner, job, process):
            report.started.append(job.id)
            log.info(
                "job %s started: pid %s, GPUs %s", job.id, process.pid, job.assigned_gpus or "none (CPU)"
            )

    def _mark_running(self, runner, job, process: launcher.LaunchedProcess) -> bool:
        from tunequeue.jobqueue import jobs

        try:
            jobs.mark_running(runner.db, job.id, process.pid, process.pgid, process.start_ticks or 0)
            self.known_alive.add(job.id)
            return True
        except jobs.InvalidTransition:
            self._stop_unwanted(runner, job, process)
            return False

    def _stop_unwanted(self, runner, job, process: launcher.LaunchedProcess) -> None:
        """Cancelled between claim and launch: stop what was just started and record the cancel."""
        from tunequeue.jobqueue import jobs

        procs.terminate(process.pid, process.start_ticks, process.pgid, process.boot_id)
        deadline = time.monotonic() + runner.settings.cancel_grace_seconds
        while procs.group_alive(process.pgid) and time.monotonic() < deadline:
            if process.popen is not None:
                process.popen.poll()
            time.sleep(0.05)
        procs.kill_group(process.pgid)
        if process.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(5)
        record = read_exit_file(Path(job.run_dir)) or {}
        with contextlib.suppress(jobs.InvalidTransition):
            jobs.finish(
                runner.db,
                job.id,
                exit_code=record.get("exit_code"),
                signal=record.get("signal"),
                reason="cancelled while starting",
            )
        self.children.pop(job.id, None)

    # ----- ingest ---------------------------------------------------------------------------------

    def ingest(self, runner, report) -> None:
        """Store new trainer_log.jsonl rows of every job with a process."""
        for job in runner.active_jobs():
            if job.pid is not None:
                report.metrics_rows += ingest_or_warn(runner.db, job)
