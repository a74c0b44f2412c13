"""The batch script of one Slurm job attempt, rendered so that no value can leave its line or its quoting.

Every value that reaches the script (job name, run dir, Python path, train command, every option) is
first checked for control characters — a newline would end an ``#SBATCH`` line and make the rest shell —
and refused with one line (`tunequeue.core.slurm_task.check_text`). Each ``#SBATCH`` directive is one
`shlex.quote`-d word (sbatch reads shell-style quotes there), and every word of the command line is
`shlex.quote`-d, except the few shell variables the script itself names (`_Var`), which go in double
quotes. The per-task options a script can carry are the allow-listed ones of `SlurmOptions`; the
runner owner's ``sbatch_options`` come last.

One node runs ``python -m tunequeue.train RUN_DIR/task.yaml`` (torchrun ``--standalone`` for several
GPUs); ``nnodes > 1`` runs ``srun`` + torchrun on every node with a c10d rendezvous on the job's first
node. Either way the command runs under `tunequeue.runner.wrapper`, which writes RUN_DIR/exit.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from tunequeue.core.slurm_task import check_text
from tunequeue.runner.backends.slurm.options import SlurmOptions, task_overrides

BATCH_FILE = "slurm-batch.sh"
LOG_FILE = "train.log"
TASK_FILE = "task.yaml"

_NETWORK_FILESYSTEMS = (
    "nfs",
    "nfs4",
    "lustre",
    "gpfs",
    "beegfs",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "cephfs",
    "glusterfs",
    "wekafs",
    "panfs",
    "pvfs2",
    "orangefs",
    "9p",
    "afs",
    "virtiofs",
    "fuse.",
)


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
        """The Slurm job name: the task's ``job-name`` option, else ``tq-ID-NAME``."""
        return self.options.job_name or f"tq-{self.job_id}-{self.name}"

    @property
    def cpus_per_task(self) -> int:
        """CPUs for the one task per node: the option, else one per GPU (at least one)."""
        return self.options.cpus_per_task or max(1, self.gpus_per_node)

    @property
    def full_comment(self) -> str:
        """The ``--comment``: the runner's tag, then the task's own comment if it has one."""
        return self.comment + (f" {self.options.comment}" if self.options.comment else "")


class _Var(str):
    """A shell variable reference the script itself writes (``$SLURM_JOB_ID``): double-quoted, not escaped."""


def home_tag(home: Path) -> str:
    """Short tag of a home directory, so two homes submitting to one cluster never mix their jobs."""
    return hashlib.sha1(str(Path(home).resolve()).encode()).hexdigest()[:10]


def submission_comment(home: Path, job_id: int, attempt: int) -> str:
    """The tag at the start of a job attempt's ``--comment``, used to find it again after a runner crash."""
    return f"tunequeue:{home_tag(home)}:{job_id}:{attempt}"


def comment_matches(comment: str, tag: str) -> bool:
    """True when a Slurm job's comment carries ``tag`` (alone or followed by the task's own comment)."""
    return comment == tag or comment.startswith(tag + " ")


def request_for(job, settings, options: SlurmOptions, home: Path) -> BatchRequest:
    """The batch request of ``job``'s current attempt, with its task's ``extra.slurm`` overrides applied.

    GPUs per node are the job's requested GPUs on one node (``--gpus`` wins over gpu_count) and the
    task's gpu_count on several nodes. A task option outside the allow-list is a `UserError`.
    """
    overrides, nodes, gpu_count = task_overrides(job.task_yaml, f"job {job.id} task extra.slurm")
    gpus = int(job.requested_gpus) if nodes == 1 else gpu_count
    return BatchRequest(
        job_id=job.id,
        name=job.name,
        attempt=job.attempt,
        run_dir=Path(job.run_dir),
        nodes=nodes,
        gpus_per_node=gpus,
        options=options.with_task(overrides),
        comment=submission_comment(home, job.id, job.attempt),
        train_command=settings.train_command,
    )


def _train_words(request: BatchRequest, task_file: str) -> list[str]:
    py = request.python
    if request.train_command:
        return [*request.train_command, task_file]
    if request.gpus_per_node > 1:
        return [
            py,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(request.gpus_per_node),
            "-m",
            "tunequeue.train",
            task_file,
        ]
    return [py, "-m", "tunequeue.train", task_file]


def _directives(request: BatchRequest) -> list[str]:
    opts = request.options
    run_dir = str(request.run_dir)
    directives = [
        f"--job-name={request.job_name}",
        f"--nodes={request.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={request.cpus_per_task}",
    ]
    gres = opts.gres or (f"gpu:{request.gpus_per_node}" if request.gpus_per_node > 0 else None)
    if gres:
        directives.append(f"--gres={gres}")
    if opts.mem:
        directives.append(f"--mem={opts.mem}")
    if opts.time_limit:
        directives.append(f"--time={opts.time_limit}")
    for name in ("partition", "account", "qos", "constraint"):
        value = getattr(opts, name)
        if value:
            directives.append(f"--{name}={value}")
    return [
        *directives,
        f"--output={run_dir}/{LOG_FILE}",
        "--open-mode=append",
        f"--chdir={run_dir}",
        f"--comment={request.full_comment}",
        *opts.sbatch_options,
    ]


def _shell_words(words: list[str]) -> str:
    return " ".join(f'"{word}"' if isinstance(word, _Var) else shlex.quote(word) for word in words)


def render_batch_script(request: BatchRequest) -> str:
    """The sbatch script of a job attempt (deterministic text: it is golden-file tested).

    Raises `UserError` when any value that would reach the script holds a control character.
    """
    run_dir = str(request.run_dir)
    task_file = str(request.run_dir / TASK_FILE)
    directives = _directives(request)
    wrapper = [request.python, "-m", "tunequeue.runner.wrapper", run_dir, "--"]
    checked = [request.name, *directives, *wrapper, *(request.train_command or [])]
    for value in checked:
        check_text(value, f"job {request.job_id}: the batch script value {value!r}")
    lines = [
        "#!/bin/bash",
        f"# tunequeue job {request.job_id} {request.name}, attempt {request.attempt}: "
        f"{request.nodes} node(s) x {request.gpus_per_node} GPU(s)",
    ]
    if request.nodes > 1:
        lines.append("# The run dir and the Python environment must be on a filesystem every node sees.")
    lines += [f"#SBATCH {shlex.quote(directive)}" for directive in directives]
    lines += [
        "set -u",
        "export CUDA_DEVICE_ORDER=PCI_BUS_ID PYTHONUNBUFFERED=1",
        f"export TUNEQUEUE_JOB_ID={int(request.job_id)} TUNEQUEUE_ATTEMPT={int(request.attempt)}",
    ]
    if request.gpus_per_node == 0:
        lines.append("export CUDA_VISIBLE_DEVICES=")
    if request.nodes == 1:
        lines.append(
            'echo "slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, '
            'CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-}"'
        )
        lines.append("exec " + _shell_words([*wrapper, *_train_words(request, task_file)]))
        return "\n".join(lines) + "\n"
    # Several nodes: one torchrun per node (srun starts them), meeting at a c10d rendezvous on the
    # first node; the port is derived from the job id so two jobs sharing a node never collide.
    # srun no longer inherits --cpus-per-task from sbatch (Slurm 22.05+): repeat it for the step.
    srun = [
        "srun",
        f"--nodes={request.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={request.cpus_per_task}",
        "--kill-on-bad-exit=1",
    ]
    if request.train_command:
        distributed = [*request.train_command, task_file]
    else:
        distributed = [
            request.python,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            str(request.nodes),
            "--nproc-per-node",
            str(max(1, request.gpus_per_node)),
            "--rdzv-backend",
            "c10d",
            "--rdzv-id",
            _Var("$SLURM_JOB_ID"),
            "--rdzv-endpoint",
            _Var("$first_node:$rdzv_port"),
            "-m",
            "tunequeue.train",
            task_file,
        ]
    lines += [
        'first_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "rdzv_port=$((20000 + SLURM_JOB_ID % 20000))",
        'echo "slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, rendezvous $first_node:$rdzv_port"',
        "exec " + _shell_words([*wrapper, *srun, *distributed]),
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
    import psutil

    best, fstype = "", None
    with contextlib.suppress(OSError):
        for part in psutil.disk_partitions(all=True):
            mount_point = part.mountpoint
            inside = str(path) == mount_point or str(path).startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, fstype = mount_point, part.fstype
    return fstype
