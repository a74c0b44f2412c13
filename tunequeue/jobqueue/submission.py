"""The one path from a checked task to a job row: every derived column computed in one place.

`job_columns(spec, ...)` turns a `TaskSpec` that passed preflight into the job's columns: the stored
task YAML (`tunequeue.core.task_files.dump_task_yaml`), name, namespace, kind (train, eval, predict,
export), requested GPUs (``gpu_count``: GPUs per node, as the Slurm backend reads it), VRAM (the
estimate when the task may share a GPU and no amount is given), ``allow_share`` and the preset it
came from. `submit_task` queues it and `update_task` replaces a waiting job's task with it; `submit`,
``--sweep``, the wizard (new and edit) and the demo all go through here.

Both refuse at once on a full disk (`check_free_space`: one line, nothing written), and a storage fault
met while writing (the disk filled meanwhile, a locked or damaged queue) is raised as its one-line
`UserError`, so every caller reports it as it reports a bad value.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec
    from tunequeue.jobqueue.db import Database
    from tunequeue.jobqueue.jobs import Job

MAX_PRIORITY = 1_000_000
MAX_GPUS = 64
MAX_JOB_ID = 2**63 - 1


@dataclass(frozen=True)
class JobColumns:
    """The columns of a job row that follow from its task."""

    task_yaml: str
    name: str
    namespace: str
    kind: str
    gpus: int
    vram_gib: float | None
    allow_share: bool
    preset_ref: str | None


def _estimated_vram(spec: TaskSpec) -> float:
    from tunequeue.core.estimate import estimate_vram
    from tunequeue.core.models import model_problems

    config = model_problems(spec.model_name_or_path)[2]
    if config is None:
        raise UserError(
            "allow_share needs the job's VRAM, and the model's config.json cannot be read to estimate it; "
            "add --vram GIB or turn allow_share off"
        )
    return round(estimate_vram(spec, config).total_gib, 2)


def check_gpus(gpus: Any) -> int:
    """``--gpus``: a whole number from 0 (CPU only) to 64."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 0 <= gpus <= MAX_GPUS:
        raise UserError(f"--gpus {gpus!r:.40} is out of range; ask for 0 (CPU only) to {MAX_GPUS} GPUs")
    return gpus


def check_priority(priority: Any) -> int:
    """``--priority``: a whole number between -1000000 and 1000000."""
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > MAX_PRIORITY:
        raise UserError(
            f"--priority {priority!r:.40} is out of range; use a whole number from -{MAX_PRIORITY} to "
            f"{MAX_PRIORITY}"
        )
    return priority


def check_after(after: Iterable[Any]) -> list[int]:
    """``--after`` job ids: positive whole numbers."""
    ids = []
    for dep in after or ():
        if isinstance(dep, bool) or not isinstance(dep, int) or not 1 <= dep <= MAX_JOB_ID:
            raise UserError(f"--after {dep!r:.40} is no job id; `tunequeue ls` lists job ids")
        ids.append(dep)
    return ids


def check_free_space(what: str = "a new job") -> None:
    """Refuse in one line when the disk holding the home is (nearly) full: ``what`` cannot start."""
    from tunequeue.core import paths
    from tunequeue.core.disk_full import require_free_space

    require_free_space(paths.home(), what)


@contextmanager
def _storage_faults_in_one_line(db: Database) -> Iterator[None]:
    """Raise a storage fault met in the block (disk filled meanwhile, locked, damaged) as its `UserError`."""
    from tunequeue.jobqueue.db import as_user_error

    try:
        yield
    except (sqlite3.Error, OSError) as err:
        raise as_user_error(err, db.path) or err from None


def job_columns(
    spec: TaskSpec,
    *,
    gpus: int | None = None,
    vram_gib: float | None = None,
    allow_share: bool | None = None,
    preset_ref: str | None = None,
) -> JobColumns:
    """The job columns of a checked task; explicit ``gpus``/``vram_gib``/``allow_share`` override it."""
    from tunequeue.core.job_kinds import task_kind
    from tunequeue.core.task_files import anchor_paths, dump_task_yaml

    spec = anchor_paths(spec)  # the run dir is the training process's working directory
    share = spec.allow_share if allow_share is None else bool(allow_share)
    if vram_gib is not None and (isinstance(vram_gib, bool) or not 0 < float(vram_gib) <= 4096):
        raise UserError(f"--vram {vram_gib!r:.40} is out of range; give the GiB the job needs (0–4096)")
    if share and vram_gib is None:
        vram_gib = _estimated_vram(spec)
    return JobColumns(
        task_yaml=dump_task_yaml(spec),
        name=spec.task_name,
        namespace=spec.namespace,
        kind=task_kind(spec),
        gpus=check_gpus(spec.gpu_count if gpus is None else gpus),
        vram_gib=None if vram_gib is None else float(vram_gib),
        allow_share=share,
        preset_ref=preset_ref or spec.preset_ref,
    )


def submit_task(
    db: Database,
    spec: TaskSpec,
    *,
    gpus: int | None = None,
    vram_gib: float | None = None,
    allow_share: bool | None = None,
    preset_ref: str | None = None,
    priority: int = 0,
    after: Iterable[int] = (),
    hold: bool = False,
    group_id: str | None = None,
) -> Job:
    """Queue a checked task as a new job (see `job_columns`) and return it; refused on a full disk."""
    from tunequeue.jobqueue import jobs

    check_free_space()
    columns = job_columns(spec, gpus=gpus, vram_gib=vram_gib, allow_share=allow_share, preset_ref=preset_ref)
    with _storage_faults_in_one_line(db):
        return jobs.submit(
            db,
            task_yaml=columns.task_yaml,
            name=columns.name,
            namespace=columns.namespace,
            kind=columns.kind,
            gpus=columns.gpus,
            vram_gib=columns.vram_gib,
            allow_share=columns.allow_share,
            priority=check_priority(priority),
            after=check_after(after),
            hold=hold,
            preset_ref=columns.preset_ref,
            group_id=group_id,
        )


def update_task(db: Database, job_id: int, spec: TaskSpec, *, preset_ref: str | None = None) -> Job:
    """Replace the task of a waiting job with a checked one; every derived column follows it.

    Refused on a full disk, like a new job.
    """
    from tunequeue.jobqueue import jobs

    check_free_space(f"the edited job {job_id}")
    columns = job_columns(spec, preset_ref=preset_ref)
    with _storage_faults_in_one_line(db):
        return jobs.update_task(
            db,
            job_id,
            columns.task_yaml,
            name=columns.name,
            namespace=columns.namespace,
            gpus=columns.gpus,
            vram_gib=columns.vram_gib,
            allow_share=columns.allow_share,
            kind=columns.kind,
            preset_ref=columns.preset_ref,
        )
