"""The one writer of task YAML and the one reader of a stored task YAML back into a `TaskSpec`.

`dump_task_yaml` writes every task file tunequeue produces: the job's stored task (submit, sweep,
wizard), a run dir's ``task.yaml`` (with defaults resolved) and ``import``'s output (our keys or,
with ``lf_only``, LLaMA-Factory's). `read_stored_task` turns such text back into a checked `TaskSpec`
(the training process, retry); `stored_task_values` gives the raw mapping to readers that only look
up a key or two and must not fail on an old row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec


def dump_task_yaml(
    task: TaskSpec | Mapping[str, Any], *, lf_only: bool = False, include_defaults: bool = False
) -> str:
    """YAML text of a task: our keys (defaults left out unless ``include_defaults``) or LLaMA-Factory's.

    A mapping is validated into a TaskSpec first (unknown keys and bad values raise `UserError`).
    Keys keep the parameter-group order.
    """
    import yaml

    if isinstance(task, Mapping):
        from tunequeue.core.rules import check_task

        task = check_task(dict(task)).raise_if_errors()
    data = task.to_yaml_dict(include_defaults=include_defaults, lf_only=lf_only)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def stored_task_values(text: str | None) -> dict[str, Any]:
    """The mapping of a stored task YAML, or {} when it cannot be read (for display-only lookups)."""
    from tunequeue.core.yaml_files import parse_yaml

    try:
        data = parse_yaml(text or "", "task.yaml")
    except UserError:
        return {}
    return data if isinstance(data, dict) else {}


def read_stored_task(text: str, source: str = "task.yaml") -> tuple[TaskSpec, list[str]]:
    """A stored task YAML back into (checked TaskSpec, warnings); the first error is a `UserError`."""
    from tunequeue.core.rules import check_task
    from tunequeue.core.yaml_files import parse_yaml

    data = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise UserError(f"{source} must be a mapping of task keys (key: value per line)")
    report = check_task(data)
    if report.errors or report.spec is None:
        raise UserError(f"{source}: {report.errors[0].message('en')}")
    return report.spec, [warning.message("en") for warning in report.warnings]
