"""The Slurm backend itself: queued jobs become ``sbatch`` jobs; ``squeue``/``scontrol`` tell how they fare.

Submit. The scheduling decision is simply "submit": a queued job whose dependencies are met is claimed
(no local GPUs) and handed to ``sbatch --parsable`` as a batch script written to RUN_DIR/slurm-batch.sh
(`render_batch_script`): ``--nodes``, ``--gres=gpu:N`` (GPUs per node), ``--cpus-per-task``, ``--mem``,
``--time``, partition/account/qos, extra sbatch options, ``--job-name tq-ID-NAME`` and output appended to
RUN_DIR/train.log. One node runs ``python -m tunequeue.train RUN_DIR/task.yaml`` (torchrun
``--standalone`` for several GPUs); ``nnodes > 1`` runs ``srun`` + torchrun on every node with a c10d
rendezvous on the job's first node. Either way the command runs under `tunequeue.runner.wrapper`,
which writes RUN_DIR/exit.json as for local jobs. The run dir and the Python environment must be on a
filesystem every node sees (the runner warns when a multi-node run dir is not on a network filesystem).

Track. Every tick reads ``squeue --json`` once, and ``scontrol -o show job ID`` for jobs it no longer
lists. The Slurm job id is stored in the job's ``backend_job_id``; RUN_DIR/slurm.json holds the latest
Slurm state, reason, node list and exit status. Slurm states map onto ours:

- PENDING / CONFIGURING / REQUEUED (not started yet) → our ``starting``, reason ``Slurm PENDING (Resources)``:
  the job has left our queue and waits in the cluster's.
- RUNNING / COMPLETING / SUSPENDED → ``running``, reason ``Slurm job N RUNNING on NODES``.
- COMPLETED → ``succeeded``; FAILED → ``failed`` with its exit code (exit code 3, the engine's "saved a
  checkpoint and stopped", → ``cancelled`` as for local jobs); CANCELLED → ``cancelled`` with Slurm's exit
  status (e.g. 0:15); TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, BOOT_FAIL, DEADLINE → ``failed``
  with the Slurm state in the reason. All failed and cancelled jobs stay retryable; a retry submits
  a new sbatch job, and training resumes from the run dir's newest checkpoint.

A restarted runner re-attaches by Slurm job id. A submission is tagged with ``--comment
tunequeue:HOME_TAG:JOB:ATTEMPT``, so a runner that died between ``sbatch`` and recording the id finds
the job again instead of submitting it twice. Cancel is ``scancel``.

Per-task overrides: an ``extra: {slurm: {...}}`` mapping in the task, limited to the allow-listed
per-task options (`tunequeue.core.slurm_task`); everything else comes from the runner's settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from tunequeue.core import paths
from tunequeue.core.errors import UserError
from tunequeue.runner.backends.slurm.client import (
    PENDING_STATES,
    RUNNING_STATES,
    SlurmError,
    SlurmJob,
    sbatch,
    scancel,
    scontrol_show,
    squeue_all,
)
from tunequeue.runner.backends.slurm.options import SlurmOptions
from tunequeue.runner.backends.slurm.script import (
    BATCH_FILE,
    comment_matches,
    render_batch_script,
    request_for,
    shared_filesystem_warning,
    submission_comment,
)
from tunequeue.runner.ingest import ingest_or_warn

log = logging.getLogger("tunequeue.runner")

STATE_FILE = "slurm.json"
_FAILED_HINTS = {
    "TIMEOUT": "the time limit was reached; raise time_limit, then retry (it resumes from the newest "
    "checkpoint)",
    "OUT_OF_MEMORY": "the job ran out of host memory; raise mem, then retry",
    "NODE_FAIL": "a node of the job failed; retry (it resumes from the newest checkpoint)",
    "PREEMPTED": "a job of higher priority took the nodes; retry (it resumes from the newest checkpoint)",
    "BOOT_FAIL": "a node failed to boot; retry",
    "DEADLINE": "the job's deadline passed before it could finish",
}


def pending_reason(info: SlurmJob) -> str:
    """The reason shown on a job still waiting in Slurm's queue: ``Slurm PENDING (Resources)``."""
    detail = info.reason if info.reason and info.reason != "None" else ""
    return f"Slurm {info.state}" + (f" ({detail})" if detail else "")


def running_reason(info: SlurmJob) -> str:
    """The reason shown on a running Slurm job: its id, state and node list."""
    text = f"Slurm job {info.job_id} {info.state} on {info.nodes or '?'}"
    return text + (f" ({info.gres})" if info.gres else "")


def exit_status(info: SlurmJob) -> str:
    """Slurm's ``EXIT:SIGNAL`` notation."""
    return f"{info.exit_code if info.exit_code is not None else '?'}:{info.signal or 0}"


class SlurmBackend:
    """Submit claimed jobs with sbatch and follow them with squeue/scontrol (see the module docstring)."""

    name = "slurm"

    def __init__(self, options: SlurmOptions) -> None:
        self.options = options
        self.seen: set[int] = set()
        self.cancel_sent: dict[int, float] = {}  # monotonic time of the last scancel of each job
        self.cluster: dict[str, SlurmJob] | None = None  # this tick's squeue view
        self.last_error = ""

    # the phases of a tick ---------------------------------------------------------------------------

    def reap(self, runner, report, now: float) -> None:
        """Read ``squeue --json`` once; follow the jobs this runner tracks (finish, cancel, state)."""
        from tunequeue.jobqueue import jobs

        self.cluster = None
        active = runner.active_jobs()
        if not active:
            return
        try:
            self.cluster = squeue_all(self.options.query_timeout)
        except SlurmError as err:
            self._log_error(str(err))
            return
        for job in active:
            if not job.backend_job_id and job.state == jobs.JobState.CANCELLING:
                reason = "cancelled before it was submitted to Slurm"
                self._finish(runner, job, report, jobs.JobState.CANCELLED, None, None, reason)
            elif job.backend_job_id and job.id in self.seen:
                self._guarded_follow(runner, job, report)

    def adopt(self, runner, report) -> None:
        """Re-attach to Slurm jobs of an earlier runner: by recorded id, or by the submission's comment.

        A claimed job that no Slurm job carries the comment of was never submitted: submit it now.
        """
        from tunequeue.jobqueue import jobs

        if self.cluster is None:
            return
        for job in runner.active_jobs():
            if job.backend_job_id and job.id in self.seen:
                continue
            if not job.backend_job_id:
                comment = submission_comment(paths.home(), job.id, job.attempt)
                found = next(
                    (info for info in self.cluster.values() if comment_matches(info.comment, comment)), None
                )
                if found is None:
                    if job.state == jobs.JobState.STARTING:
                        self.launch(runner, job, report)
                    continue
                job = jobs.set_backend_job(runner.db, job.id, found.job_id, pending_reason(found))
                if job is None:
                    continue
                log.info("job %s: found its Slurm job %s after a runner restart", job.id, found.job_id)
            self.seen.add(job.id)
            report.adopted.append(job.id)
            log.info("job %s: re-attached to Slurm job %s", job.id, job.backend_job_id)
            self._guarded_follow(runner, job, report)

    def ingest(self, runner, report) -> None:
        """Store new trainer_log.jsonl rows of running Slurm jobs (the run dir is on a shared filesystem)."""
        from tunequeue.jobqueue import jobs

        for job in jobs.list_jobs(runner.db, states=[jobs.JobState.RUNNING, jobs.JobState.CANCELLING]):
            if job.backend_job_id:
                report.metrics_rows += ingest_or_warn(runner.db, job)

    def _guarded_follow(self, runner, job, report) -> None:
        try:
            self._follow(runner, job, report)
        except SlurmError as err:
            self._log_error(f"job {job.id}: {err}")

    def _log_error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("%s", message)
        self.last_error = message

    def _follow(self, runner, job, report) -> None:
        """Bring one submitted job's state in line with what Slurm says about it."""
        from tunequeue.jobqueue import jobs

        info = self.cluster.get(job.backend_job_id) if self.cluster is not None else None
        if info is None:
            info = scontrol_show(job.backend_job_id, self.options.query_timeout)
        if info is None:
            self._lost(runner, job, report)
            return
        self._write_state(job, info)
        if job.state == jobs.JobState.CANCELLING and not info.is_final:
            self._cancel(job, report, runner.settings.cancel_grace_seconds)
            return
        if info.state in PENDING_STATES:
            reason = pending_reason(info)
            if job.reason != reason:
                jobs.set_backend_job(runner.db, job.id, job.backend_job_id, reason)
            return
        if info.state in RUNNING_STATES:
            reason = running_reason(info)
            if job.state == jobs.JobState.STARTING:
                with contextlib.suppress(jobs.InvalidTransition):
                    jobs.transition(
                        runner.db, job.id, jobs.JobState.RUNNING, reason=reason, expect=jobs.JobState.STARTING
                    )
                log.info("job %s: Slurm job %s running on %s", job.id, job.backend_job_id, info.nodes)
            elif job.reason != reason:
                jobs.set_backend_job(runner.db, job.id, job.backend_job_id, reason)
            return
        report.metrics_rows += ingest_or_warn(runner.db, job)
        self._finish_from_slurm(runner, job, info, report)

    def _finish_from_slurm(self, runner, job, info: SlurmJob, report) -> None:
        from tunequeue.jobqueue import jobs
        from tunequeue.runner.wrapper import read_exit_file

        status = exit_status(info)
        record = read_exit_file(Path(job.run_dir)) or {}
        if info.state == "COMPLETED":
            self._finish(runner, job, report, None, info.exit_code or 0, None, "")
        elif info.state == "CANCELLED":
            by_user = job.state == jobs.JobState.CANCELLING
            who = "cancelled" if by_user else "cancelled in Slurm (scancel outside tunequeue)"
            self._finish(
                runner,
                job,
                report,
                jobs.JobState.CANCELLED,
                info.exit_code,
                info.signal,
                f"{who}; Slurm CANCELLED, exit status {status}",
            )
        elif info.state == "FAILED":
            detail = record.get("reason") or f"exit code {info.exit_code}"
            self._finish(
                runner, job, report, None, info.exit_code, info.signal, f"Slurm FAILED ({status}): {detail}"
            )
        else:
            hint = _FAILED_HINTS.get(info.state, "see train.log")
            self._finish(
                runner,
                job,
                report,
                jobs.JobState.FAILED,
                info.exit_code,
                info.signal,
                f"Slurm {info.state} ({status}) on {info.nodes or '?'}: {hint}",
            )

    def _finish(self, runner, job, report, state, exit_code, signal_number, reason: str) -> None:
        """Record a job's end: ``state`` None lets `jobs.finish` decide from the exit code (as locally)."""
        from tunequeue.jobqueue import jobs

        try:
            if state is None:
                done = jobs.finish(
                    runner.db, job.id, exit_code=exit_code, signal=signal_number, reason=reason
                )
            else:
                if job.state == jobs.JobState.CANCELLING:
                    state = jobs.JobState.CANCELLED  # a cancel was asked for; whatever ended the job
                done = jobs.transition(
                    runner.db,
                    job.id,
                    state,
                    reason=reason,
                    expect=jobs.ACTIVE_STATES,
                    exit_code=exit_code,
                    signal=signal_number,
                    finished_at=time.time(),
                )
        except jobs.InvalidTransition as err:
            log.warning("job %s: could not record its end: %s", job.id, err)
            return
        self.seen.discard(job.id)
        self.cancel_sent.pop(job.id, None)
        report.finished.append(job.id)
        log.info("job %s %s%s", job.id, done.state.value, f" ({done.reason})" if done.reason else "")

    def _lost(self, runner, job, report) -> None:
        """Slurm forgot the job (purged after MinJobAge): take the wrapper's exit record if there is one."""
        from tunequeue.runner.wrapper import read_exit_file

        report.metrics_rows += ingest_or_warn(runner.db, job)
        record = read_exit_file(Path(job.run_dir))
        if record is not None:
            self._finish(
                runner,
                job,
                report,
                None,
                record.get("exit_code"),
                record.get("signal"),
                record.get("reason", ""),
            )
            return
        from tunequeue.jobqueue import jobs

        self._finish(
            runner,
            job,
            report,
            jobs.JobState.FAILED,
            None,
            None,
            f"Slurm no longer knows job {job.backend_job_id} and it left no exit record; "
            "see train.log, then retry",
        )

    def _cancel(self, job, report, grace: float) -> None:
        sent = self.cancel_sent.get(job.id)
        if sent is not None and time.monotonic() - sent < max(grace, 5.0):
            return
        scancel(job.backend_job_id, self.options.query_timeout)
        self.cancel_sent[job.id] = time.monotonic()
        report.signalled.append(job.id)
        log.info("job %s: scancel %s (cancel requested)", job.id, job.backend_job_id)

    def _write_state(self, job, info: SlurmJob) -> None:
        record = {"slurm_job_id": info.job_id, "attempt": job.attempt, **asdict(info)}
        record.pop("job_id", None)
        path = Path(job.run_dir) / STATE_FILE
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text(encoding="utf-8")) == record:
                return
        with contextlib.suppress(OSError):
            tmp = path.with_name(f".{STATE_FILE}.tmp")
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(tmp, path)

    # submitting -------------------------------------------------------------------------------------

    def schedule(self, runner, report, snapshot, now: float) -> list:
        """Claim every queued job whose dependencies are met (Slurm does the placing); return them."""
        from tunequeue.jobqueue import jobs

        queued = jobs.list_jobs(runner.db, states=[jobs.JobState.QUEUED], order="priority")
        if not queued:
            return []
        claimed_jobs = []
        dependency = jobs.dependency_statuses(runner.db, queued)
        waiting: dict[int, str] = {}
        for job in queued:
            status, reason = dependency[job.id]
            if status == "failed":
                with contextlib.suppress(jobs.InvalidTransition):
                    jobs.transition(runner.db, job.id, jobs.JobState.CANCELLED, reason=reason)
            elif status == "waiting":
                if job.reason != reason:
                    waiting[job.id] = reason
            else:
                claimed = jobs.claim(runner.db, job.id, [], [])
                if claimed is not None:
                    claimed_jobs.append(claimed)
        jobs.set_wait_reasons(runner.db, waiting)
        return claimed_jobs

    def launch(self, runner, job, report) -> None:
        """Render the claimed job's batch script and submit it with sbatch."""
        from tunequeue.jobqueue import jobs
        from tunequeue.runner.launch import write_task_file
        from tunequeue.runner.wrapper import EXIT_FILE

        try:
            request = request_for(job, runner.settings, self.options, paths.home())
            write_task_file(request.run_dir, job.task_yaml)
            (request.run_dir / EXIT_FILE).unlink(missing_ok=True)
            (request.run_dir / STATE_FILE).unlink(missing_ok=True)
            if request.nodes > 1:
                warning = shared_filesystem_warning(request.run_dir)
                if warning:
                    log.warning("job %s: %s", job.id, warning)
            script = request.run_dir / BATCH_FILE
            script.write_text(render_batch_script(request), encoding="utf-8")
            slurm_id = sbatch(script, self.options.submit_timeout)
        except (UserError, SlurmError, OSError) as err:
            message = str(err) if not isinstance(err, OSError) else f"could not prepare the run dir: {err}"
            self._finish(runner, job, report, None, None, None, message)
            return
        updated = jobs.set_backend_job(runner.db, job.id, slurm_id, f"Slurm job {slurm_id} submitted")
        self.seen.add(job.id)
        report.started.append(job.id)
        log.info(
            "job %s submitted as Slurm job %s (%d node(s) x %d GPU(s))",
            job.id,
            slurm_id,
            request.nodes,
            request.gpus_per_node,
        )
        if updated is None:
            # Finished or cancelled between claim and sbatch: nobody follows the Slurm job; stop it.
            with contextlib.suppress(SlurmError):
                scancel(slurm_id, self.options.query_timeout)
