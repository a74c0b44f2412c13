"""settings.yaml of a home: one validated model (`tunequeue.core.settings_models`), one reader and one
atomic writer.

The file holds ``language`` (core.i18n), ``model_roots`` (folders the model picker searches, see
`model_roots`), a ``runner:`` block (runner.settings, runner.backends) and a
``queue:`` block (how long the queue database waits for a lock). `SettingsFile` validates the whole file
with pydantic whenever it is read or written: wrong types and out-of-range values (``tick_seconds: 0``,
``max_cpu_jobs: -1``), unknown runner keys, non-UTF-8 bytes and a document that is not a mapping are one
`UserError` naming the key. A file that cannot be parsed is never overwritten.

Environment variables override the file (pydantic-settings, prefix ``TUNEQUEUE_``): every runner key as
``TUNEQUEUE_<KEY>`` (``TUNEQUEUE_TICK_SECONDS``; lists as JSON, ``TUNEQUEUE_TRAIN_COMMAND`` as shell
words), the queue keys as ``TUNEQUEUE_DB_<KEY>`` (``TUNEQUEUE_DB_LOCK_WAIT_SECONDS``) and the model
roots as ``TUNEQUEUE_MODEL_ROOTS`` (folders separated by ``os.pathsep``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.core import paths, private_files
from tunequeue.core.errors import UserError

if TYPE_CHECKING:
    from pydantic import BaseModel


def _models() -> dict[str, type[BaseModel]]:
    """The settings models by name, imported on first use (commands that never need them skip pydantic)."""
    global _MODELS
    if _MODELS is None:
        from tunequeue.core import settings_models

        _MODELS = {
            name: getattr(settings_models, name)
            for name in ("RunnerBlock", "QueueBlock", "SettingsFile", "RunnerEnv", "QueueEnv")
        }
    return _MODELS


_MODELS: dict[str, type[BaseModel]] | None = None


def model(name: str) -> type[BaseModel]:
    """One of the settings models: RunnerBlock, QueueBlock, SettingsFile, RunnerEnv, QueueEnv."""
    return _models()[name]


def _describe(err, where: str, path: Path | None) -> UserError:
    """One line for the first problem of a pydantic ValidationError."""
    first = err.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    message = message[:1].lower() + message[1:]
    got = first.get("input")
    shown = "" if isinstance(got, dict) or first["type"] == "missing" else f" (got {got!r})"
    if first["type"] == "extra_forbidden":
        if path is None:
            return UserError(
                f"environment variable TUNEQUEUE_{where}{loc.upper()} is not a setting; unset it"
            )
        return UserError(
            f"settings.yaml key {loc} is not a setting tunequeue knows; remove or respell it in {path}"
        )
    if path is None:
        name = f"TUNEQUEUE_{where}{loc.upper()}"
        return UserError(f"environment variable {name}: {message}{shown}; fix or unset it")
    return UserError(f"settings.yaml key {loc}: {message}{shown}; fix it in {path}")


def _parse(path: Path) -> dict[str, Any]:
    import yaml

    try:
        raw = private_files.open_file(path, "rb").read()
    except FileNotFoundError:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path} is not UTF-8 text (byte {raw[err.start]:#x} at offset {err.start}); fix or delete it"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path} is not valid YAML{at}; fix or delete it") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a mapping of settings (key: value per line); fix or delete it")
    return data


def read_settings() -> dict[str, Any]:
    """The settings mapping as written in the file ({} when absent), after validating it.

    Invalid YAML, non-UTF-8 bytes, a non-mapping or a bad value raises a one-line `UserError`.
    """
    from pydantic import ValidationError

    path = paths.settings_path()
    data = _parse(path)
    if data:
        try:
            model("SettingsFile").model_validate(data)
        except ValidationError as err:
            raise _describe(err, "", path) from None
    return data


def write_settings(data: dict[str, Any]) -> None:
    """Validate ``data`` and replace settings.yaml with it atomically (private temp file + rename)."""
    import yaml
    from pydantic import ValidationError

    path = paths.settings_path()
    try:
        model("SettingsFile").model_validate(data)
    except ValidationError as err:
        raise _describe(err, "", path) from None
    private_files.write_text(path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def _block(name: str, env_model: str, env_prefix: str):
    from pydantic import ValidationError

    data = read_settings()
    block = data.get(name) or {}
    validated = model("SettingsFile").model_validate({name: block})
    try:
        return model(env_model)(**getattr(validated, name).model_dump(exclude_unset=True))
    except ValidationError as err:
        raise _describe(err, env_prefix, None) from None


def runner_block():
    """The validated ``runner:`` block with environment overrides applied (a `RunnerBlock`)."""
    return _block("runner", "RunnerEnv", "")


def queue_block():
    """The validated ``queue:`` block with environment overrides applied (a `QueueBlock`)."""
    return _block("queue", "QueueEnv", "DB_")


def queue_lock_timing() -> tuple[float, float]:
    """(busy timeout, extra seconds to keep retrying) for the queue database's write lock.

    Read once per process; with neither a settings file nor a ``TUNEQUEUE_DB_*`` variable this costs
    nothing (the defaults), so quick commands do not load pydantic.
    """
    global _LOCK_TIMING
    key = (str(paths.settings_path()), *(os.environ.get(f"TUNEQUEUE_DB_{k}") for k in _QUEUE_ENV))
    if _LOCK_TIMING is not None and _LOCK_TIMING[0] == key:
        return _LOCK_TIMING[1]
    if not paths.settings_path().exists() and all(value is None for value in key[1:]):
        timing = (30.0, 60.0)
    else:
        block = queue_block()
        timing = (block.busy_timeout_seconds, block.lock_wait_seconds)
    _LOCK_TIMING = (key, timing)
    return timing


_QUEUE_ENV = ("BUSY_TIMEOUT_SECONDS", "LOCK_WAIT_SECONDS")
_LOCK_TIMING: tuple[tuple, tuple[float, float]] | None = None


def model_roots() -> list[Path]:
    """The folders the model picker searches for model directories.

    ``TUNEQUEUE_MODEL_ROOTS`` (folders separated by ``os.pathsep``) wins over the ``model_roots`` list
    of settings.yaml; ``~`` is expanded and blanks are dropped.
    """
    env = os.environ.get("TUNEQUEUE_MODEL_ROOTS")
    if env is not None:
        entries = env.split(os.pathsep)
    else:
        entries = read_settings().get("model_roots") or []
    return [Path(entry.strip()).expanduser() for entry in entries if entry and entry.strip()]
