"""The Slurm backend: queued jobs become ``sbatch`` jobs; ``squeue``/``scontrol`` tell how they fare.

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

Per-task overrides: an ``extra: {slurm: {...}}`` mapping in the task with the `SlurmOptions` keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tunequeue.core import paths
from tunequeue.core.errors import UserError

log = logging.getLogger("tunequeue.runner")

BATCH_FILE = "slurm-batch.sh"
STATE_FILE = "slurm.json"
LOG_FILE = "train.log"
TASK_FILE = "task.yaml"

PENDING_STATES = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
)
RUNNING_STATES = frozenset(
    {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"}
)
_FAILED_HINTS = {
    "TIMEOUT": "the time limit was reached; raise time_limit, then retry (it resumes from the newest "
    "checkpoint)",
    "OUT_OF_MEMORY": "the job ran out of host memory; raise mem, then retry",
    "NODE_FAIL": "a node of the job failed; retry (it resumes from the newest checkpoint)",
    "PREEMPTED": "a job of higher priority took the nodes; retry (it resumes from the newest checkpoint)",
    "BOOT_FAIL": "a node failed to boot; retry",
    "DEADLINE": "the job's deadline passed before it could finish",
}
_NETWORK_FILESYSTEMS = (
    "nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb3", "smbfs", "ceph", "cephfs", "glusterfs",
    "wekafs", "panfs", "pvfs2", "orangefs", "9p", "afs", "virtiofs", "fuse.",
)


class SlurmError(Exception):
    """A Slurm command failed; the message is one line fit for a job's reason and the CLI."""


# ----- options ------------------------------------------------------------------------------------


@dataclass
class SlurmOptions:
    """How jobs are submitted: runner-wide values, which a task's ``extra.slurm`` mapping overrides.

    ``cpus_per_task`` defaults to one CPU per GPU per node (at least one); ``mem`` and ``time_limit``
    are left to the partition's defaults unless set. ``sbatch_options`` are extra sbatch arguments
    (``--constraint=a100``); a task's list is added after the runner's.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_limit: str | None = None
    mem: str | None = None
    cpus_per_task: int | None = None
    sbatch_options: list[str] = field(default_factory=list)
    submit_timeout: float = 60.0
    query_timeout: float = 30.0

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, source: str) -> SlurmOptions:
        """Options from a settings or task mapping; a bad key or value is a `UserError` naming ``source``."""
        return cls().merged(data, source=source)

    def merged(self, data: dict[str, Any] | None, *, source: str) -> SlurmOptions:
        """A copy with ``data``'s values applied (``time`` is accepted for ``time_limit``)."""
        if not data:
            return SlurmOptions(**asdict(self))
        if not isinstance(data, dict):
            raise UserError(f"{source}: slurm must be a mapping of option names to values")
        values = asdict(self)
        for key, value in data.items():
            name = "time_limit" if key == "time" else str(key).replace("-", "_")
            if name not in values:
                known = ", ".join(k for k in values if not k.endswith("_timeout"))
                raise UserError(f"{source}: unknown slurm option {key!r}; use one of {known}")
            if value is None:
                continue
            if name == "sbatch_options":
                items = [value] if isinstance(value, str) else value
                if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                    raise UserError(f"{source}: slurm sbatch_options must be a list of sbatch arguments")
                bad = [i for i in items if not i.startswith("-")]
                if bad:
                    raise UserError(
                        f"{source}: sbatch option {bad[0]!r} must start with '-', e.g. --constraint=a100"
                    )
                values[name] = [*values[name], *items]
            elif name == "cpus_per_task":
                if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
                    raise UserError(
                        f"{source}: slurm cpus_per_task must be a whole number ≥ 1; got {value!r}"
                    )
                values[name] = int(value)
            elif name.endswith("_timeout"):
                values[name] = float(value)
            else:
                text = str(value).strip()
                if not text or any(ch.isspace() for ch in text):
                    raise UserError(f"{source}: slurm {name} must be one word; got {value!r}")
                values[name] = text
        return SlurmOptions(**values)


def task_overrides(task_yaml: str) -> tuple[dict[str, Any], int, int]:
    """From a job's resolved task: (its ``extra.slurm`` mapping, nnodes, gpu_count)."""
    import yaml

    try:
        task = yaml.safe_load(task_yaml) or {}
    except yaml.YAMLError:
        task = {}
    if not isinstance(task, dict):
        task = {}
    extra = task.get("extra") if isinstance(task.get("extra"), dict) else {}
    return extra.get("slurm") or {}, int(task.get("nnodes") or 1), int(task.get("gpu_count") or 1)


# ----- the batch script ---------------------------------------------------------------------------


@dataclass
class BatchRequest:
    """Everything the batch script of one job attempt is made of."""

    job_id: int
    name: str
    attempt: int
    run_dir: Path
    nodes: int
    gpus_per_node: int
    options: SlurmOptions
    comment: str
    python: str = sys.executable
    train_command: list[str] | None = None

    @property
    def job_name(self) -> str:
        """The Slurm job name: ``tq-ID-NAME``."""
        return f"tq-{self.job_id}-{self.name}"

    @property
    def cpus_per_task(self) -> int:
        """CPUs for the one task per node: the option, else one per GPU (at least one)."""
        return self.options.cpus_per_task or max(1, self.gpus_per_node)


def home_tag(home: Path) -> str:
    """Short tag of a home directory, so two homes submitting to one cluster never mix their jobs."""
    return hashlib.sha1(str(Path(home).resolve()).encode()).hexdigest()[:10]


def submission_comment(home: Path, job_id: int, attempt: int) -> str:
    """The ``--comment`` of a job attempt, used to find it again after a runner crash."""
    return f"tunequeue:{home_tag(home)}:{job_id}:{attempt}"


def request_for(job, settings, options: SlurmOptions, home: Path) -> BatchRequest:
    """The batch request of ``job``'s current attempt, with its task's ``extra.slurm`` overrides applied.

    GPUs per node are the job's requested GPUs on one node (``--gpus`` wins over gpu_count) and the
    task's gpu_count on several nodes.
    """
    overrides, nodes, gpu_count = task_overrides(job.task_yaml)
    merged = options.merged(overrides, source=f"job {job.id} task extra.slurm")
    gpus = int(job.requested_gpus) if nodes == 1 else gpu_count
    return BatchRequest(
        job_id=job.id,
        name=job.name,
        attempt=job.attempt,
        run_dir=Path(job.run_dir),
        nodes=nodes,
        gpus_per_node=gpus,
        options=merged,
        comment=submission_comment(home, job.id, job.attempt),
        train_command=settings.train_command,
    )


def _train_words(request: BatchRequest, task_file: str) -> list[str]:
    py = request.python
    if request.train_command:
        return [*request.train_command, task_file]
    if request.gpus_per_node > 1:
        return [py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                str(request.gpus_per_node), "-m", "tunequeue.train", task_file]
    return [py, "-m", "tunequeue.train", task_file]


def render_batch_script(request: BatchRequest) -> str:
    """The sbatch script of a job attempt (deterministic text: it is golden-file tested)."""
    q = shlex.quote
    opts = request.options
    run_dir = str(request.run_dir)
    task_file = str(request.run_dir / TASK_FILE)
    lines = [
        "#!/bin/bash",
        f"# tunequeue job {request.job_id} {request.name}, attempt {request.attempt}: "
        f"{request.nodes} node(s) x {request.gpus_per_node} GPU(s)",
    ]
    if request.nodes > 1:
        lines.append(
            "# The run dir and the Python environment must be on a filesystem every node sees."
        )
    directives = [
        f"--job-name={request.job_name}",
        f"--nodes={request.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={request.cpus_per_task}",
    ]
    if request.gpus_per_node > 0:
        directives.append(f"--gres=gpu:{request.gpus_per_node}")
    if opts.mem:
        directives.append(f"--mem={opts.mem}")
    if opts.time_limit:
        directives.append(f"--time={opts.time_limit}")
    for name in ("partition", "account", "qos"):
        value = getattr(opts, name)
        if value:
            directives.append(f"--{name}={value}")
    directives += [
        f"--output={run_dir}/{LOG_FILE}",
        "--open-mode=append",
        f"--chdir={run_dir}",
        f"--comment={request.comment}",
        *opts.sbatch_options,
    ]
    lines += [f"#SBATCH {q(directive)}" for directive in directives]
    lines += [
        "set -u",
        "export CUDA_DEVICE_ORDER=PCI_BUS_ID PYTHONUNBUFFERED=1",
        f"export TUNEQUEUE_JOB_ID={request.job_id} TUNEQUEUE_ATTEMPT={request.attempt}",
    ]
    if request.gpus_per_node == 0:
        lines.append("export CUDA_VISIBLE_DEVICES=")
    wrapper = [request.python, "-m", "tunequeue.runner.wrapper", run_dir, "--"]
    if request.nodes == 1:
        lines.append(
            'echo "slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, '
            'CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-}"'
        )
        lines.append("exec " + shlex.join([*wrapper, *_train_words(request, task_file)]))
        return "\n".join(lines) + "\n"
    # Several nodes: one torchrun per node (srun starts them), meeting at a c10d rendezvous on the
    # first node; the port is derived from the job id so two jobs sharing a node never collide.
    # srun no longer inherits --cpus-per-task from sbatch (Slurm 22.05+): repeat it for the step.
    srun = [
        "srun", f"--nodes={request.nodes}", "--ntasks-per-node=1",
        f"--cpus-per-task={request.cpus_per_task}", "--kill-on-bad-exit=1",
    ]
    if request.train_command:
        distributed = [*request.train_command, task_file]
    else:
        distributed = [
            request.python, "-m", "torch.distributed.run",
            "--nnodes", str(request.nodes), "--nproc-per-node", str(max(1, request.gpus_per_node)),
            "--rdzv-backend", "c10d", "--rdzv-id", "$SLURM_JOB_ID",
            "--rdzv-endpoint", "$first_node:$rdzv_port", "-m", "tunequeue.train", task_file,
        ]
    lines += [
        'first_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "rdzv_port=$((20000 + SLURM_JOB_ID % 20000))",
        'echo "slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, rendezvous $first_node:$rdzv_port"',
        "exec " + " ".join(
            f'"{word}"' if word.startswith("$") else q(word)
            for word in [*wrapper, *srun, *distributed]
        ),
    ]
    return "\n".join(lines) + "\n"


def shared_filesystem_warning(run_dir: Path) -> str | None:
    """A warning when a multi-node run dir is under /tmp or on a filesystem other nodes cannot see."""
    path = Path(run_dir).resolve()
    for local in ("/tmp", "/var/tmp", "/dev/shm", "/run"):
        if path == Path(local) or Path(local) in path.parents:
            return (
                f"run dir {path} is under {local}, which other nodes do not see; put TUNEQUEUE_HOME on a "
                "shared filesystem (NFS, Lustre, ...) for multi-node jobs"
            )
    fstype = _filesystem_type(path)
    if fstype is not None and not fstype.startswith(_NETWORK_FILESYSTEMS):
        return (
            f"run dir {path} is on a {fstype} filesystem, which is usually local to this machine; every "
            "node of a multi-node job must see it (put TUNEQUEUE_HOME on NFS, Lustre, ...)"
        )
    return None


def _filesystem_type(path: Path) -> str | None:
    best, fstype = "", None
    with contextlib.suppress(OSError), open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) < 3:
                continue
            mount_point = fields[1].replace("\\040", " ")
            inside = str(path) == mount_point or str(path).startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, fstype = mount_point, fields[2]
    return fstype


# ----- Slurm commands -----------------------------------------------------------------------------


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise SlurmError(
            f"{command[0]} is not on PATH; install the Slurm client tools (slurm-client) on this machine "
            "or switch the runner back with `tunequeue runner start --backend local`"
        ) from None
    except subprocess.TimeoutExpired:
        raise SlurmError(
            f"the Slurm controller did not answer within {timeout:.0f} s ({command[0]}); check slurmctld "
            "and SLURM_CONF"
        ) from None


def _error_line(result: subprocess.CompletedProcess) -> str:
    """Slurm's own message from stderr, without the ``sbatch: error:`` prefixes."""
    lines = [line.strip() for line in (result.stderr or result.stdout or "").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    line = (errors or lines or [f"exit code {result.returncode}"])[-1]
    return re.sub(r"^\w+: (error|fatal): ", "", line)


def check_available(timeout: float = 15.0) -> None:
    """Raise `UserError` when sbatch is missing or the controller does not answer (`scontrol ping`)."""
    if shutil.which("sbatch") is None:
        raise UserError(
            "sbatch is not on PATH; install the Slurm client tools (slurm-client) or use --backend local"
        )
    try:
        result = _run(["scontrol", "ping"], timeout)
    except SlurmError as err:
        raise UserError(str(err)) from None
    if result.returncode != 0 or "is UP" not in result.stdout:
        detail = result.stdout.strip().splitlines()[0] if result.stdout.strip() else _error_line(result)
        raise UserError(f"the Slurm controller does not answer ({detail}); check slurmctld and SLURM_CONF")


def sbatch(script_path: Path, timeout: float) -> str:
    """Submit a batch script; return the Slurm job id. Refusals raise `SlurmError` with Slurm's message."""
    result = _run(["sbatch", "--parsable", str(script_path)], timeout)
    if result.returncode != 0:
        raise SlurmError(f"Slurm refused the job: {_error_line(result)}")
    job_id = result.stdout.strip().splitlines()[-1].split(";")[0] if result.stdout.strip() else ""
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed no job id (output: {result.stdout.strip()[:200]!r})")
    return job_id


def scancel(job_id: str, timeout: float) -> None:
    """Cancel a Slurm job (Slurm sends SIGTERM, then SIGKILL after its KillWait)."""
    result = _run(["scancel", str(job_id)], timeout)
    if result.returncode != 0:
        raise SlurmError(f"scancel {job_id} failed: {_error_line(result)}")


@dataclass
class SlurmJob:
    """What Slurm says about one job."""

    job_id: str
    state: str
    reason: str = ""
    nodes: str = ""
    exit_code: int | None = None
    signal: int | None = None
    comment: str = ""
    gres: str = ""

    @property
    def is_final(self) -> bool:
        """True once Slurm has finished with the job."""
        return self.state not in PENDING_STATES and self.state not in RUNNING_STATES


def _number(value: Any) -> int | None:
    """An integer from Slurm's JSON, which wraps numbers as {"set": .., "number": ..} in newer versions."""
    if isinstance(value, dict):
        if value.get("set") is False or value.get("infinite"):
            return None
        value = value.get("number")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _from_squeue_entry(entry: dict[str, Any]) -> SlurmJob:
    state = entry.get("job_state")
    if isinstance(state, list):
        state = state[0] if state else "UNKNOWN"
    raw = entry.get("exit_code")
    exit_code = signal = None
    if isinstance(raw, dict) and ("return_code" in raw or "signal" in raw):
        exit_code = _number(raw.get("return_code"))
        sig = raw.get("signal")
        signal = _number(sig.get("id")) if isinstance(sig, dict) else _number(sig)
    else:
        status = _number(raw)
        if status is not None:
            # squeue 22.05 gives the raw wait status: exit code in the high byte, signal in the low bits.
            exit_code, signal = (status >> 8) & 0xFF, status & 0x7F
    gres = entry.get("gres_detail") or []
    return SlurmJob(
        job_id=str(_number(entry.get("job_id"))),
        state=str(state or "UNKNOWN").upper(),
        reason=str(entry.get("state_reason") or ""),
        nodes=str(entry.get("nodes") or ""),
        exit_code=exit_code,
        signal=signal or None,
        comment=str(entry.get("comment") or ""),
        gres=",".join(map(str, gres)) if isinstance(gres, list) else str(gres),
    )


def squeue_all(timeout: float) -> dict[str, SlurmJob]:
    """Every job the controller still holds (``squeue --json``), by Slurm job id."""
    result = _run(["squeue", "--json", "--all"], timeout)
    if result.returncode != 0:
        raise SlurmError(f"squeue failed: {_error_line(result)}")
    try:
        data = json.loads(result.stdout)
    except ValueError:
        raise SlurmError("squeue --json printed no JSON; is this Slurm older than 21.08?") from None
    jobs = [_from_squeue_entry(entry) for entry in data.get("jobs") or [] if isinstance(entry, dict)]
    return {job.job_id: job for job in jobs}


def scontrol_show(job_id: str, timeout: float) -> SlurmJob | None:
    """``scontrol -o show job ID`` parsed, or None when Slurm no longer knows the job."""
    result = _run(["scontrol", "-o", "show", "job", str(job_id)], timeout)
    if result.returncode != 0:
        message = _error_line(result)
        if "invalid job id" in message.lower():
            return None
        raise SlurmError(f"scontrol show job {job_id} failed: {message}")
    fields = dict(re.findall(r"(\S+?)=(\S*)", result.stdout))
    code, _, sig = fields.get("ExitCode", "").partition(":")
    nodes = fields.get("NodeList", "")
    return SlurmJob(
        job_id=str(job_id),
        state=fields.get("JobState", "UNKNOWN").upper(),
        reason=fields.get("Reason", ""),
        nodes="" if nodes == "(null)" else nodes,
        exit_code=int(code) if code.isdigit() else None,
        signal=int(sig) if sig.isdigit() and int(sig) else None,
        comment=fields.get("Comment", ""),
    )


# ----- the backend --------------------------------------------------------------------------------


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
        self.cancel_sent: dict[int, float] = {}
        self.last_error = ""

    # one pass ---------------------------------------------------------------------------------------

    def tick(self, runner, report, now: float, *, schedule: bool = True) -> None:
        """Follow active jobs (re-attaching, cancelling, finishing), ingest metrics, submit queued jobs."""
        from tunequeue.jobqueue import jobs

        active = jobs.list_jobs(runner.db, states=list(jobs.ACTIVE_STATES))
        cluster: dict[str, SlurmJob] | None = None
        if active:
            try:
                cluster = squeue_all(self.options.query_timeout)
            except SlurmError as err:
                self._log_error(str(err))
        if cluster is not None:
            for job in active:
                try:
                    self._follow(runner, job, cluster, report, now)
                except SlurmError as err:
                    self._log_error(f"job {job.id}: {err}")
        runner.sample_gpus(report, now)
        for job in jobs.list_jobs(runner.db, states=[jobs.JobState.RUNNING, jobs.JobState.CANCELLING]):
            if job.backend_job_id:
                runner._ingest_one(job, report)
        if schedule:
            self._schedule(runner, report)

    def _log_error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("%s", message)
        self.last_error = message

    def _follow(self, runner, job, cluster: dict[str, SlurmJob], report, now: float) -> None:
        from tunequeue.jobqueue import jobs

        if not job.backend_job_id:
            if job.state == jobs.JobState.CANCELLING:
                self._finish(runner, job, report, jobs.JobState.CANCELLED, None, None,
                             "cancelled before it was submitted to Slurm")
                return
            comment = submission_comment(paths.home(), job.id, job.attempt)
            found = next((info for info in cluster.values() if info.comment == comment), None)
            if found is None:
                if job.state == jobs.JobState.STARTING:
                    self._submit(runner, job, report)
                return
            job = jobs.set_backend_job(runner.db, job.id, found.job_id, pending_reason(found))
            if job is None:
                return
            log.info("job %s: found its Slurm job %s after a runner restart", job.id, found.job_id)
        info = cluster.get(job.backend_job_id)
        if info is None:
            info = scontrol_show(job.backend_job_id, self.options.query_timeout)
        if job.id not in self.seen:
            self.seen.add(job.id)
            if job.id not in report.started:
                report.adopted.append(job.id)
                log.info("job %s: re-attached to Slurm job %s", job.id, job.backend_job_id)
        if info is None:
            self._lost(runner, job, report)
            return
        self._write_state(job, info)
        if job.state == jobs.JobState.CANCELLING and not info.is_final:
            self._cancel(job, report, now, runner.settings.cancel_grace_seconds)
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
                    jobs.transition(runner.db, job.id, jobs.JobState.RUNNING, reason=reason,
                                    expect=jobs.JobState.STARTING)
                log.info("job %s: Slurm job %s running on %s", job.id, job.backend_job_id, info.nodes)
            elif job.reason != reason:
                jobs.set_backend_job(runner.db, job.id, job.backend_job_id, reason)
            return
        runner._ingest_one(job, report)
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
            self._finish(runner, job, report, jobs.JobState.CANCELLED, info.exit_code, info.signal,
                         f"{who}; Slurm CANCELLED, exit status {status}")
        elif info.state == "FAILED":
            detail = record.get("reason") or f"exit code {info.exit_code}"
            self._finish(runner, job, report, None, info.exit_code, info.signal,
                         f"Slurm FAILED ({status}): {detail}")
        else:
            hint = _FAILED_HINTS.get(info.state, "see train.log")
            self._finish(runner, job, report, jobs.JobState.FAILED, info.exit_code, info.signal,
                         f"Slurm {info.state} ({status}) on {info.nodes or '?'}: {hint}")

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
                    runner.db, job.id, state, reason=reason, expect=jobs.ACTIVE_STATES,
                    exit_code=exit_code, signal=signal_number, finished_at=time.time(),
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

        runner._ingest_one(job, report)
        record = read_exit_file(Path(job.run_dir))
        if record is not None:
            self._finish(runner, job, report, None, record.get("exit_code"), record.get("signal"),
                         record.get("reason", ""))
            return
        from tunequeue.jobqueue import jobs

        self._finish(runner, job, report, jobs.JobState.FAILED, None, None,
                     f"Slurm no longer knows job {job.backend_job_id} and it left no exit record; "
                     "see train.log, then retry")

    def _cancel(self, job, report, now: float, grace: float) -> None:
        sent = self.cancel_sent.get(job.id)
        if sent is not None and now - sent < max(grace, 5.0):
            return
        scancel(job.backend_job_id, self.options.query_timeout)
        self.cancel_sent[job.id] = now
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

    def _schedule(self, runner, report) -> None:
        from tunequeue.jobqueue import jobs

        queued = jobs.list_jobs(runner.db, states=[jobs.JobState.QUEUED], order="priority")
        if not queued:
            return
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
                    self._submit(runner, claimed, report)
        jobs.set_wait_reasons(runner.db, waiting)

    def _submit(self, runner, job, report) -> None:
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
            job.id, slurm_id, request.nodes, request.gpus_per_node,
        )
        if updated is None:
            # Finished or cancelled between claim and sbatch: nobody follows the Slurm job; stop it.
            with contextlib.suppress(SlurmError):
                scancel(slurm_id, self.options.query_timeout)
