"""What a task file may ask of Slurm: the per-task sbatch options in ``extra: {slurm: {...}}``.

A task file is written by whoever submits it, while the batch script runs with the runner owner's
rights on the cluster. So a task may set only the options that shape its own allocation — time, mem,
cpus-per-task, gres, constraint, qos, partition, account, job-name and comment — either as keys of the
mapping (``time: 04:00:00``, ``cpus_per_task: 8``) or as ``sbatch_options: ["--constraint=a100"]``.
Everything else (``--output``, ``--export``, ``--chdir``, ``--wrap`` …) is the owner's, set in
settings.yaml or with ``tunequeue runner start --backend slurm``.

No value may hold a control character (a newline would end its ``#SBATCH`` line and turn the rest into
shell). `validate`, `submit` and the wizard refuse such a task through `slurm_problems`; the runner
applies the same `task_slurm_overrides` again when it renders the batch script.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tunequeue.core.errors import UserError

# sbatch option name → the SlurmOptions key it sets. Only these may come from a task file.
TASK_SBATCH_OPTIONS: dict[str, str] = {
    "time": "time_limit",
    "mem": "mem",
    "cpus-per-task": "cpus_per_task",
    "gres": "gres",
    "constraint": "constraint",
    "qos": "qos",
    "partition": "partition",
    "account": "account",
    "job-name": "job_name",
    "comment": "comment",
}
# Mapping keys a task may use (besides sbatch_options), → the SlurmOptions key.
TASK_KEYS: dict[str, str] = {
    **{name.replace("-", "_"): key for name, key in TASK_SBATCH_OPTIONS.items()},
    "time_limit": "time_limit",
    "cpus": "cpus_per_task",
}
# Values that may hold spaces (they are quoted); every other value is one word.
_SPACED = frozenset({"comment", "job_name"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def control_character(text: str) -> str | None:
    """The first control character (C0, DEL or C1: newline, CR, NUL …) in ``text`` as ``\\xNN``, or None."""
    found = _CONTROL.search(text)
    return None if found is None else f"\\x{ord(found.group()):02x}"


def check_text(value: Any, what: str) -> str:
    """``value`` as text, or a `UserError` naming ``what`` when it holds a control character."""
    text = str(value)
    bad = control_character(text)
    if bad is not None:
        raise UserError(f"{what} contains the control character {bad}; write it on one line without it")
    return text


def _allowed_list() -> str:
    return ", ".join(f"--{name}" for name in TASK_SBATCH_OPTIONS)


def _value(key: str, value: Any, what: str) -> str | int:
    text = check_text(value, what).strip()
    if key == "cpus_per_task":
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            raise UserError(f"{what} must be a whole number ≥ 1; got {value!r}")
        return int(text)
    if not text:
        raise UserError(f"{what} is empty; give it a value or remove it")
    if key not in _SPACED and any(ch.isspace() for ch in text):
        raise UserError(f"{what} must be one word; got {value!r}")
    return text


def parse_sbatch_item(item: Any, source: str) -> tuple[str, str | int]:
    """One task ``sbatch_options`` item (``--constraint=a100``) → (SlurmOptions key, value).

    Only the per-task options of `TASK_SBATCH_OPTIONS` are accepted, in the ``--name=value`` form.
    """
    if not isinstance(item, str):
        raise UserError(f"{source}: slurm sbatch_options must be a list of sbatch arguments")
    text = check_text(item, f"{source}: sbatch option {item!r}")
    if not text.startswith("-"):
        raise UserError(f"{source}: sbatch option {text!r} must start with '-', e.g. --constraint=a100")
    name, sep, value = text.removeprefix("--").partition("=")
    if name not in TASK_SBATCH_OPTIONS or not text.startswith("--"):
        raise UserError(
            f"{source}: sbatch option {text.split('=')[0]!r} may not be set by a task file; a task may set "
            f"only {_allowed_list()} (other options belong in the runner's settings)"
        )
    if not sep:
        raise UserError(f"{source}: sbatch option {text!r} needs a value, e.g. --{name}=VALUE")
    key = TASK_SBATCH_OPTIONS[name]
    return key, _value(key, value, f"{source}: sbatch option --{name}")


def task_slurm_overrides(data: Any, source: str) -> dict[str, str | int]:
    """A task's ``extra.slurm`` mapping checked and normalised to SlurmOptions keys (later items win).

    A key or sbatch option outside the per-task allow-list, a control character or a malformed value
    is a one-line `UserError` naming ``source``.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise UserError(f"{source}: slurm must be a mapping of option names to values")
    result: dict[str, str | int] = {}
    for raw_key, value in data.items():
        name = check_text(raw_key, f"{source}: a slurm key")
        if name == "sbatch_options":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list):
                raise UserError(f"{source}: slurm sbatch_options must be a list of sbatch arguments")
            for item in items:
                key, parsed = parse_sbatch_item(item, source)
                result[key] = parsed
            continue
        task_key = TASK_KEYS.get(name.replace("-", "_"))
        if task_key is None:
            known = ", ".join(sorted({*TASK_KEYS, "sbatch_options"}))
            raise UserError(
                f"{source}: slurm option {name!r} may not be set by a task file; use one of {known} "
                "(other options belong in the runner's settings)"
            )
        if value is None:
            continue
        result[task_key] = _value(task_key, value, f"{source}: slurm {name}")
    return result


def slurm_problems(data: Mapping[str, Any]):
    """Problems (`tunequeue.core.rules.Problem`) of a task mapping's ``extra.slurm``; empty when fine."""
    from tunequeue.core.rules import Problem

    extra = data.get("extra")
    if not isinstance(extra, Mapping) or "slurm" not in extra:
        return []
    try:
        task_slurm_overrides(extra["slurm"], "extra.slurm")
    except UserError as err:
        return [Problem("extra", err.message, err.message)]
    return []
