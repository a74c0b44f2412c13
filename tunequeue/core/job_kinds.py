"""Job kinds: what a task file asks the training process to do — train, eval, predict or export.

A task trains when ``do_train`` is on (the default). With ``do_train: false`` it is an export job when
``export_dir`` is set, a predict job with ``do_predict``, an evaluate job with ``do_eval``. The kind is
stored with the queued job (jobs.kind) and decides which workflow `python -m tunequeue.train` runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError

if TYPE_CHECKING:
    from typing import TypeAlias

    from tunequeue.core.spec import TaskSpec

    # A task as a TaskSpec or a mapping of its keys.
    TaskValues: TypeAlias = TaskSpec | dict[str, Any]

JOB_KINDS = ("train", "eval", "predict", "export")


def _get(spec: TaskValues, key: str, default: Any = None) -> Any:
    if isinstance(spec, dict):
        return spec.get(key, default)
    return getattr(spec, key, default)


def task_kind(spec: TaskValues) -> str:
    """The job kind of a task (TaskSpec or mapping of its keys); a task that does nothing is refused."""
    if _get(spec, "do_train", True):
        return "train"
    if _get(spec, "export_dir"):
        return "export"
    if _get(spec, "do_predict", False):
        return "predict"
    if _get(spec, "do_eval", False):
        return "eval"
    raise UserError(
        "do_train is false and the task asks for nothing else; set do_eval, do_predict or export_dir"
    )
