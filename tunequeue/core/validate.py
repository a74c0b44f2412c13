"""Preflight: every check a task gets before it is queued or shown as valid.

`check_task` (rules.py) judges the keys alone. `preflight` adds what needs the files the task names:
the model's config.json (context length, VRAM estimate), its chat template, the datasets in
dataset_info.json (known name, fits the stage) and the per-task Slurm options (`core.slurm_task`).
`tunequeue validate`, `tunequeue submit` and the wizard share it, so a task that validates is exactly a
task that can be queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tunequeue.core.errors import UserError
from tunequeue.core.rules import (
    Problem,
    ValidationReport,
    check_chat_template,
    check_dataset_fits_stage,
    check_task,
    local_model_dir,
)
from tunequeue.core.slurm_task import slurm_problems


@dataclass
class Preflight:
    """The validation report plus the model config it was judged with (None when not readable)."""

    report: ValidationReport
    model_config: dict | None


def read_local_model_config(model: Any) -> dict | None:
    """The model's config.json when it is a readable local model; None otherwise (checks needing it skip)."""
    if not isinstance(model, str) or not model:
        return None
    from tunequeue.core.estimate import read_model_config

    try:
        return read_model_config(model)
    except UserError:
        return None


def dataset_problems(spec: Any) -> list[Problem]:
    """Problems of the task's datasets: unknown names and datasets that do not fit the stage."""
    from tunequeue.core.compat import dataset_entries

    if spec is None or not spec.dataset:
        return []
    try:
        entries = dataset_entries(spec.dataset, spec.dataset_dir)
    except UserError as err:
        return [Problem("dataset", err.message, err.message)]
    return check_dataset_fits_stage(spec.stage, entries)


def preflight(
    data: Mapping[str, Any], *, host_gpus: list | None = None, multi_node: bool = False
) -> Preflight:
    """Check a task mapping against its keys' rules and the files it names.

    ``host_gpus`` (this machine's GPUs, or None when unknown) enables the precision and GPU-count rules;
    ``multi_node`` allows nnodes > 1 (the Slurm backend). Errors leave ``report.spec`` None.
    """
    model_config = read_local_model_config(data.get("model_name_or_path"))
    report = check_task(data, model_config=model_config, host_gpus=host_gpus, multi_node=multi_node)
    if report.spec is not None:
        model_dir = local_model_dir(report.spec.model_name_or_path)
        report.warnings.extend(check_chat_template(report.spec.template, model_dir))
    problems = [*slurm_problems(data), *dataset_problems(report.spec)]
    if problems:
        report.errors.extend(problems)
        report.spec = None
    return Preflight(report, model_config)
