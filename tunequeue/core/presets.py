"""Presets ("parameter groups", seed 000): named sets of hyperparameters a task starts from.

A preset lives in a namespace (``namespace/name``, both following the task-name rule) and carries a
header (``stage``, ``finetuning_type``, ``description``, ``created_at``, ``updated_at``) and values for
any subset of hyperparameter keys — never task identity, model, dataset, output or GPU fields.
Applying a preset copies its values into a task *under* what the task sets explicitly (task > preset
> defaults) and records ``preset_ref``; later edits to the preset never change existing tasks.

Built-ins ship read-only as ``tunequeue/presets/<name>.yaml`` in namespace ``default``
(``default/sft-lora`` holds seed 000's fields with PARAMETERS.md §4's corrected values; ``sft-qlora``,
``sft-full``, ``dpo-lora``, ``kto-lora`` are common recipes). User presets are YAML files under
``paths.user_presets_dir()/<namespace>/<name>.yaml``, written atomically (temporary file +
``os.replace``) under a lock file, so the CLI, the TUI and the queue all see the same set. Edits can
carry the ``updated_at`` they started from (optimistic lock) and are refused when someone else saved
in between.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunequeue.core import private_files
from tunequeue.core.errors import UserError

DEFAULT_NAMESPACE = "default"
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX_LEN = 63
HEADER_KEYS = ("stage", "finetuning_type")
# Keys a preset never holds: who/what/where the task is, which data and model, which GPUs, outputs.
TASK_ONLY_GROUPS = ("basic", "task")
TASK_ONLY_KEYS = frozenset(
    {
        "preset_ref", "eval_dataset", "output_dir", "adapter_name_or_path", "ref_model", "reward_model",
        "export_dir", "export_quantization_dataset", "export_hub_model_id",
    }
)


@dataclass
class Preset:
    """One preset: identity, header and hyperparameter values (LLaMA-Factory key names)."""

    namespace: str
    name: str
    stage: str = "sft"
    finetuning_type: str = "lora"
    description: str = ""
    created_at: str = ""
    updated_at: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    builtin: bool = False
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)  # from the last validation; not stored

    @property
    def ref(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """The stored form (also used for --json)."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "stage": self.stage,
            "finetuning_type": self.finetuning_type,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "builtin": self.builtin,
            "values": dict(self.values),
        }

    def task_values(self) -> dict[str, Any]:
        """Header plus values: what the preset contributes to a task."""
        return {"stage": self.stage, "finetuning_type": self.finetuning_type, **self.values}


# ---------------------------------------------------------------------------------------------------
# Names and references
# ---------------------------------------------------------------------------------------------------


def check_name(text: str, what: str = "preset name") -> str:
    """Return ``text`` if it follows the task-name rule, else raise UserError saying what to change."""
    if not isinstance(text, str) or not text or len(text) > NAME_MAX_LEN or not NAME_RE.match(text):
        raise UserError(
            f"{what} '{text}' is invalid; use 1–63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit."
        )
    return text


def parse_ref(ref: str | tuple[str, str] | Preset) -> tuple[str, str]:
    """``"ns/name"``, ``"name"`` (namespace default), ``(ns, name)`` or a Preset → (ns, name), checked."""
    if isinstance(ref, Preset):
        return ref.namespace, ref.name
    if isinstance(ref, tuple):
        namespace, name = ref
    else:
        text = str(ref).strip()
        if text.count("/") > 1:
            raise UserError(f"preset reference '{text}' is invalid; write it as NAMESPACE/NAME.")
        namespace, _, name = text.rpartition("/")
        namespace = namespace or DEFAULT_NAMESPACE
    return check_name(namespace, "namespace"), check_name(name)


# ---------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------


def preset_keys() -> frozenset[str]:
    """Every key a preset may hold."""
    from tunequeue.core.spec import all_params

    return frozenset(
        p.key for p in all_params() if p.group not in TASK_ONLY_GROUPS and p.key not in TASK_ONLY_KEYS
    )


def validate_values(stage: str, finetuning_type: str, values: Mapping[str, Any]) -> list[str]:
    """Check preset values; raise UserError on the first problem, return the warnings."""
    from tunequeue.core.rules import check_task
    from tunequeue.core.spec import KEYS, unknown_key_message

    allowed = preset_keys()
    for key in values:
        if key not in KEYS:
            raise UserError(unknown_key_message(key))
        if key not in allowed:
            raise UserError(
                f"'{key}' belongs to the task (identity, model, dataset, outputs or GPUs), "
                "not to a preset; set it on the task instead."
            )
    report = check_task({"stage": stage, "finetuning_type": finetuning_type, **values}, partial=True)
    report.raise_if_errors()
    return [p.message() for p in report.warnings]


def _split_header(
    values: Mapping[str, Any] | None, stage: str | None, finetuning_type: str | None
) -> tuple[dict[str, Any], str | None, str | None]:
    """Move ``stage`` / ``finetuning_type`` given inside the values into the header."""
    rest = dict(values or {})
    stage = stage if stage is not None else rest.pop("stage", None)
    finetuning_type = finetuning_type if finetuning_type is not None else rest.pop("finetuning_type", None)
    rest.pop("stage", None)
    rest.pop("finetuning_type", None)
    return rest, stage, finetuning_type


# ---------------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _builtin_dir() -> Path:
    from tunequeue.core.paths import BUILTIN_PRESETS_DIR

    return BUILTIN_PRESETS_DIR


def _user_dir() -> Path:
    from tunequeue.core.paths import user_presets_dir

    return user_presets_dir()


def _load_file(path: Path, namespace: str, builtin: bool) -> Preset:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        detail = " ".join(str(err).split())  # YAML errors span several lines; the message is one
        raise UserError(f"preset file {path} cannot be read ({detail}); fix or delete it.") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("values", {}), Mapping):
        raise UserError(f"preset file {path} is not a preset mapping; fix or delete it.")
    return Preset(
        namespace=namespace,
        name=path.stem,
        stage=str(raw.get("stage", "sft")),
        finetuning_type=str(raw.get("finetuning_type", "lora")),
        description=str(raw.get("description") or ""),
        created_at=str(raw.get("created_at") or ""),
        updated_at=str(raw.get("updated_at") or ""),
        values=dict(raw.get("values") or {}),
        builtin=builtin,
        path=path,
    )


def _builtins() -> dict[str, Preset]:
    folder = _builtin_dir()
    if not folder.is_dir():
        return {}
    return {
        p.stem: _load_file(p, DEFAULT_NAMESPACE, builtin=True) for p in sorted(folder.glob("*.yaml"))
    }


def _user_path(namespace: str, name: str) -> Path:
    return _user_dir() / namespace / f"{name}.yaml"


def _write(preset: Preset) -> Path:
    import yaml

    data = preset.to_dict()
    data.pop("builtin")
    path = _user_path(preset.namespace, preset.name)
    private_files.ensure_dir(path.parent)
    private_files.write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    preset.path = path
    return path


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise check-then-write sequences across processes (flock on presets/.lock)."""
    import fcntl

    folder = _user_dir()
    private_files.ensure_dir(folder)
    with private_files.open_file(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _find(namespace: str, name: str) -> Preset | None:
    if namespace == DEFAULT_NAMESPACE:
        builtin = _builtins().get(name)
        if builtin is not None:
            return builtin
    path = _user_path(namespace, name)
    if path.is_file():
        return _load_file(path, namespace, builtin=False)
    return None


def _refuse_builtin(preset: Preset, action: str) -> None:
    if preset.builtin:
        raise UserError(
            f"{preset.ref} is a built-in preset and cannot be {action}; "
            f"copy it first (`tunequeue preset cp {preset.ref} NAMESPACE/NAME`)."
        )


# ---------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------


def list_presets(namespace: str | None = None, *, problems: list[str] | None = None) -> list[Preset]:
    """Built-in and user presets, sorted by namespace then name; only ``namespace`` when given.

    A user preset that cannot be read raises its one-line UserError; with a ``problems`` list it is
    skipped instead and that line appended, so a caller can show every preset that could be read. Only
    with ``problems`` is a file where the user presets folder should be reported (otherwise it just
    holds no presets).
    """
    if namespace is not None:
        check_name(namespace, "namespace")
    found: dict[tuple[str, str], Preset] = {}
    for preset in _builtins().values():
        found[(preset.namespace, preset.name)] = preset
    for preset in _user_presets(problems):
        found.setdefault((preset.namespace, preset.name), preset)
    presets = [p for key, p in sorted(found.items()) if namespace is None or key[0] == namespace]
    return presets


def _user_presets(problems: list[str] | None) -> Iterator[Preset]:
    """The user presets on disk; what cannot be read raises, or goes to ``problems`` when given."""
    root = _user_dir()

    def problem(message: str) -> None:
        if problems is None:
            raise UserError(message)
        problems.append(message)

    if not root.is_dir():
        if problems is not None and root.exists():
            problems.append(f"user presets folder {root} exists but is not a directory; move it away.")
        return
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and NAME_RE.match(p.name))
    except OSError as err:
        problem(f"user presets folder {root} cannot be read ({err}); fix its permissions.")
        return
    for folder in folders:
        try:
            files = sorted(folder.glob("*.yaml"))
        except OSError as err:
            problem(f"preset folder {folder} cannot be read ({err}); fix its permissions.")
            continue
        for path in files:
            if not NAME_RE.match(path.stem):
                continue
            try:
                preset = _load_file(path, folder.name, builtin=False)
            except UserError as err:
                problem(err.message)
                continue
            yield preset


def namespaces() -> list[str]:
    """Every namespace that holds a preset (``default`` always)."""
    return sorted({DEFAULT_NAMESPACE} | {p.namespace for p in list_presets()})


def preset_exists(ref: str | tuple[str, str]) -> bool:
    """Whether a built-in or user preset named ``ref`` exists, without reading any preset file."""
    namespace, name = parse_ref(ref)
    if namespace == DEFAULT_NAMESPACE and (_builtin_dir() / f"{name}.yaml").is_file():
        return True
    return _user_path(namespace, name).is_file()


def get_preset(ref: str | tuple[str, str] | Preset) -> Preset:
    """The preset named by ``ref`` (``ns/name``, ``name`` in default, or ``(ns, name)``)."""
    namespace, name = parse_ref(ref)
    preset = _find(namespace, name)
    if preset is None:
        import difflib

        refs = [p.ref for p in list_presets()]
        near = difflib.get_close_matches(f"{namespace}/{name}", refs, n=1, cutoff=0.6)
        hint = f"; did you mean '{near[0]}'?" if near else "; `tunequeue preset ls` lists them"
        raise UserError(f"no preset {namespace}/{name}{hint}")
    return preset


def create_preset(
    ref: str | tuple[str, str],
    *,
    values: Mapping[str, Any] | None = None,
    stage: str | None = None,
    finetuning_type: str | None = None,
    description: str = "",
) -> Preset:
    """Validate and store a new user preset; omitted parameters keep the task defaults."""
    namespace, name = parse_ref(ref)
    rest, stage, finetuning_type = _split_header(values, stage, finetuning_type)
    stage = stage or "sft"
    finetuning_type = finetuning_type or "lora"
    warnings = validate_values(stage, finetuning_type, rest)
    with _locked():
        if _find(namespace, name) is not None:
            raise UserError(f"preset {namespace}/{name} already exists; choose another name or edit it.")
        now = _now()
        preset = Preset(namespace, name, stage, finetuning_type, description or "", now, now, rest)
        _write(preset)
    preset.warnings = warnings
    return preset


def edit_preset(
    ref: str | tuple[str, str],
    *,
    values: Mapping[str, Any] | None = None,
    unset: list[str] | tuple[str, ...] = (),
    replace_values: bool = False,
    stage: str | None = None,
    finetuning_type: str | None = None,
    description: str | None = None,
    rename: str | None = None,
    expected_updated_at: str | None = None,
) -> Preset:
    """Change a user preset: merge (or with ``replace_values`` replace) values, drop ``unset`` keys,
    change the header, or rename it (``name`` or ``ns/name``; the new name must be free).

    With ``expected_updated_at`` the edit is refused when the stored preset changed since then.
    """
    namespace, name = parse_ref(ref)
    rest, stage, finetuning_type = _split_header(values, stage, finetuning_type)
    with _locked():
        current = get_preset((namespace, name))
        _refuse_builtin(current, "edited")
        if expected_updated_at is not None and current.updated_at != expected_updated_at:
            raise UserError(
                f"preset {current.ref} was changed elsewhere at {current.updated_at}; "
                "reload it and make your edit again."
            )
        new_values = dict(rest) if replace_values else {**current.values, **rest}
        for key in unset:
            if key not in new_values:
                raise UserError(f"preset {current.ref} has no value for '{key}' to unset.")
            new_values.pop(key)
        new_stage = stage or current.stage
        new_type = finetuning_type or current.finetuning_type
        warnings = validate_values(new_stage, new_type, new_values)
        target_ns, target_name = namespace, name
        if rename:
            target_ns, target_name = parse_ref(rename if "/" in rename else (namespace, rename))
            if (target_ns, target_name) != (namespace, name) and _find(target_ns, target_name) is not None:
                raise UserError(f"preset {target_ns}/{target_name} already exists; choose another name.")
        updated = Preset(
            target_ns,
            target_name,
            new_stage,
            new_type,
            current.description if description is None else description,
            current.created_at,
            _now(),
            new_values,
        )
        _write(updated)
        if (target_ns, target_name) != (namespace, name) and current.path is not None:
            current.path.unlink(missing_ok=True)
            _remove_empty_namespace(current.path.parent)
    updated.warnings = warnings
    return updated


def copy_preset(src: str | tuple[str, str], dst: str | tuple[str, str]) -> Preset:
    """Duplicate ``src`` (built-in or user) as a new user preset ``dst``."""
    source = get_preset(src)
    namespace, name = parse_ref(dst)
    with _locked():
        if _find(namespace, name) is not None:
            raise UserError(f"preset {namespace}/{name} already exists; choose another name.")
        now = _now()
        description = source.description or f"copy of {source.ref}"
        copy = Preset(namespace, name, source.stage, source.finetuning_type, description, now, now,
                      dict(source.values))
        _write(copy)
    return copy


def delete_preset(ref: str | tuple[str, str]) -> Preset:
    """Delete a user preset (irreversible); built-ins are refused. Returns what was deleted."""
    with _locked():
        preset = get_preset(ref)
        _refuse_builtin(preset, "deleted")
        if preset.path is not None:
            preset.path.unlink(missing_ok=True)
            _remove_empty_namespace(preset.path.parent)
    return preset


def _remove_empty_namespace(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()  # only succeeds when empty


def apply_preset(preset: Preset | str | tuple[str, str], task_values: Mapping[str, Any]) -> dict[str, Any]:
    """Task values with the preset's header and values filled in *under* them; records ``preset_ref``.

    Keys the task sets explicitly win; keys neither sets keep the task defaults.
    """
    if not isinstance(preset, Preset):
        preset = get_preset(preset)
    merged = {**preset.task_values(), **dict(task_values)}
    merged["preset_ref"] = preset.ref
    return merged
