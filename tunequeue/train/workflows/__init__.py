"""One straight-line workflow per training stage: load → template → data → model → trainer → train → save."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

# stage → (module, function); every workflow is `workflow(spec, run_dir, stop) -> TrainOutcome`.
_WORKFLOWS = {
    "pt": ("tunequeue.train.workflows.pt", "run_pt"),
    "sft": ("tunequeue.train.workflows.sft", "run_sft"),
    "rm": ("tunequeue.train.workflows.rm", "run_rm"),
    "dpo": ("tunequeue.train.workflows.dpo", "run_dpo"),
    "kto": ("tunequeue.train.workflows.kto", "run_kto"),
    "ppo": ("tunequeue.train.workflows.ppo", "run_ppo"),
}
# job kind → (module, function) for the tasks that do not train.
_JOBS = {
    "eval": ("tunequeue.train.evaluate", "run_eval"),
    "predict": ("tunequeue.train.evaluate", "run_predict"),
    "export": ("tunequeue.train.export", "run_export"),
}


def get_workflow(stage: str) -> Callable[..., Any]:
    """The workflow function of `stage` (`workflow(spec, run_dir, stop) -> TrainOutcome`)."""
    if stage not in _WORKFLOWS:
        raise UserError(f"stage {stage} is unknown; use one of {', '.join(_WORKFLOWS)}")
    module, name = _WORKFLOWS[stage]
    return getattr(importlib.import_module(module), name)


def get_task_workflow(spec: TaskSpec) -> Callable[..., Any]:
    """What a task file runs: its stage's training, or evaluate / predict / export (see `task_kind`)."""
    from tunequeue.core.job_kinds import task_kind

    kind = task_kind(spec)
    if kind == "train":
        return get_workflow(spec.stage)
    module, name = _JOBS[kind]
    return getattr(importlib.import_module(module), name)
