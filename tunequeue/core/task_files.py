"""The one writer of task YAML and the one reader of a stored task YAML back into a `TaskSpec`.

`dump_task_yaml` writes every task file tunequeue produces: the job's stored task (submit, sweep,
wizard), a run dir's ``task.yaml`` (with defaults resolved) and ``import``'s output (our keys or,
with ``lf_only``, LLaMA-Factory's). `read_stored_task` turns such text back into a `TaskSpec`
through the one preflight (the training process at launch, retry); `stored_task_values` gives the
raw mapping to readers that only look up a key or two and must not fail on an old row.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
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

        checked = check_task(dict(task)).raise_if_errors()
        assert checked is not None  # a full check (not partial) has a spec whenever it has no errors
        task = checked
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


def read_stored_task(
    text: str, source: str = "task.yaml", *, host_gpus: list | None = None, multi_node: bool = False
) -> tuple[TaskSpec, list[str]]:
    """A stored task YAML back into (TaskSpec, warnings) through the one preflight.

    The first error is a `UserError` naming ``source``; ``host_gpus`` and ``multi_node`` are passed to
    `tunequeue.core.validate.preflight`.
    """
    from tunequeue.core.validate import first_error, preflight
    from tunequeue.core.yaml_files import parse_yaml

    data = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise UserError(f"{source} must be a mapping of task keys (key: value per line)")
    checked = preflight(data, host_gpus=host_gpus, multi_node=multi_node)
    if checked.report.errors or checked.report.spec is None:
        raise first_error(checked, source)
    return checked.report.spec, [warning.message("en") for warning in checked.report.warnings]


# Keys naming local files or folders that preflight resolves against the current directory.
PATH_KEYS = ("dataset_dir", "model_name_or_path", "adapter_name_or_path", "ref_model", "reward_model")


def _anchored(value: str, base: Path, *, always: bool) -> str:
    parts = []
    for part in value.split(","):
        text = part.strip()
        path = Path(text).expanduser()
        if (
            text
            and not path.is_absolute()
            and (always or text.startswith(("./", "../")) or (base / path).exists())
        ):
            text = str((base / path).resolve())
        elif text.startswith("~"):
            text = str(path)
        parts.append(text)
    return ",".join(parts)


def anchor_paths(spec: TaskSpec, base: Path | None = None) -> TaskSpec:
    """The task with relative local paths made absolute against ``base`` (default: the current directory).

    Preflight checks them from where the command runs; the training process runs in the run dir, so
    the stored task must name them absolutely to mean the same files. Hub IDs stay as they are.
    """
    base = Path.cwd() if base is None else base
    changes = {}
    for key in PATH_KEYS:
        value = getattr(spec, key, None)
        if isinstance(value, str) and value and value != "tunequeue/tiny-llama":
            anchored = _anchored(value, base, always=key == "dataset_dir")
            if anchored != value:
                changes[key] = anchored
    return spec.model_copy(update=changes) if changes else spec
