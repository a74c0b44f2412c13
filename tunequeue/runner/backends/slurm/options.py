"""Slurm submission options: the runner owner's settings, narrowed per job by the task's allow-listed keys.

The owner's options come from the ``runner: {slurm: {...}}`` block of settings.yaml (written by
``tunequeue runner start --backend slurm --partition …``) and may hold any sbatch argument in
``sbatch_options``. A task's ``extra.slurm`` mapping may only set the per-task options of
`tunequeue.core.slurm_task` (time, mem, cpus-per-task, gres, constraint, qos, partition, account,
job-name, comment). No value anywhere may hold a control character.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tunequeue.core.errors import UserError
from tunequeue.core.slurm_task import check_text, task_slurm_overrides

_OWNER_ONLY = ("sbatch_options", "submit_timeout", "query_timeout")


@dataclass
class SlurmOptions:
    """How jobs are submitted: runner-wide values, which a task's ``extra.slurm`` mapping overrides.

    ``cpus_per_task`` defaults to one CPU per GPU per node (at least one); ``gres`` to ``gpu:N``;
    ``mem`` and ``time_limit`` are left to the partition's defaults unless set. ``comment`` is added
    after the runner's own tag. ``sbatch_options`` are further sbatch arguments (``--exclusive``), from
    the runner's settings only.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_limit: str | None = None
    mem: str | None = None
    cpus_per_task: int | None = None
    gres: str | None = None
    constraint: str | None = None
    job_name: str | None = None
    comment: str | None = None
    sbatch_options: list[str] = field(default_factory=list)
    submit_timeout: float = 60.0
    query_timeout: float = 30.0

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None, *, source: str) -> SlurmOptions:
        """The owner's options from a settings mapping; a bad key or value is a `UserError` naming it."""
        if not data:
            return cls()
        if not isinstance(data, dict):
            raise UserError(f"{source}: slurm must be a mapping of option names to values")
        values = asdict(cls())
        for key, value in data.items():
            name = "time_limit" if key == "time" else str(key).replace("-", "_")
            if name not in values:
                known = ", ".join(k for k in values if not k.endswith("_timeout"))
                raise UserError(f"{source}: unknown slurm option {key!r}; use one of {known}")
            if value is None:
                continue
            if name == "sbatch_options":
                values[name] = _owner_sbatch_options(value, source)
            elif name.endswith("_timeout"):
                try:
                    values[name] = float(value)
                except (TypeError, ValueError):
                    raise UserError(f"{source}: slurm {name} must be a number of seconds") from None
                if values[name] <= 0:
                    raise UserError(f"{source}: slurm {name} must be above 0 seconds")
        task_values = {
            key: value
            for key, value in data.items()
            if value is not None
            and ("time_limit" if key == "time" else str(key).replace("-", "_")) not in _OWNER_ONLY
        }
        # The per-task keys are checked exactly as a task's are (one word, no control characters …).
        values.update(task_slurm_overrides(task_values, source))
        return cls(**values)

    def with_task(self, overrides: dict[str, Any]) -> SlurmOptions:
        """A copy with a task's checked overrides (`core.slurm_task.task_slurm_overrides`) applied."""
        values = asdict(self)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return SlurmOptions(**values)


def _owner_sbatch_options(value: Any, source: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise UserError(f"{source}: slurm sbatch_options must be a list of sbatch arguments")
    for item in items:
        check_text(item, f"{source}: sbatch option {item!r}")
        if not item.startswith("-"):
            raise UserError(f"{source}: sbatch option {item!r} must start with '-', e.g. --constraint=a100")
    return list(items)


def task_overrides(task_yaml: str, source: str) -> tuple[dict[str, Any], int, int]:
    """From a job's resolved task: (its checked ``extra.slurm`` overrides, nnodes, gpu_count)."""
    import yaml

    try:
        task = yaml.safe_load(task_yaml) or {}
    except yaml.YAMLError:
        task = {}
    if not isinstance(task, dict):
        task = {}
    nested = task.get("extra")
    extra: dict[str, Any] = nested if isinstance(nested, dict) else {}
    overrides = task_slurm_overrides(extra.get("slurm"), source)
    return overrides, int(task.get("nnodes") or 1), int(task.get("gpu_count") or 1)
