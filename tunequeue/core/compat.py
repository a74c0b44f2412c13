"""Read and write task files: our YAML, LLaMA-Factory training YAML, Firefly JSON, dataset_info.json.

`load_task_file` detects the format and returns our keys plus warnings:

- **our YAML** (has ``task_name``): keys are TaskSpec keys plus an ``extra`` mapping; read as written.
- **LLaMA-Factory YAML** (or JSON): every key is looked up. TaskSpec keys map directly; ``bf16`` /
  ``fp16`` / ``pure_bf16`` become ``compute_type`` (none of them = fp32, as LLaMA-Factory trains without
  mixed precision then); ``flash_attn`` / ``use_unsloth`` / ``enable_liger_kernel`` set ``booster``
  (``flash_attn`` is kept too). Keys that LLaMA-Factory or Transformers' training arguments know but
  tunequeue has no task key for are kept in ``extra``: Trainer arguments and the switches the engine
  honours are used from there (`tunequeue.core.extra_keys`), the rest get one warning naming them; a
  key nobody knows is an error naming the closest known key. Omitted keys take
  LLaMA-Factory/Transformers defaults where ours differ (``lora_alpha`` = 2 × ``lora_rank``,
  ``lora_dropout`` 0, ``learning_rate`` 5e-5, batch 8 × 1 accumulation, linear schedule, no warmup…),
  so the task trains the way the file did under LLaMA-Factory. ``task_name`` comes from the last part
  of ``output_dir`` (or the file name), lowercased with other characters turned into '-'.
- **Firefly** ``train_args/*.json`` (has ``train_mode``, ``template_name``, ``max_seq_length`` or a
  train file): mapped as PARAMETERS.md §3/§6 say; ``train_mode`` absent means ``qlora``. The train
  file becomes a dataset entry to register (`ImportResult.datasets`): ``import -o`` writes it into a
  ``dataset_info.json`` next to the output YAML (``import`` without ``-o`` writes nothing), ``submit``
  into the task's own folder under TUNEQUEUE_HOME, merging with entries already there, and sets
  ``dataset_dir`` to that folder; ``file_name`` is the data file's absolute path, which
  LLaMA-Factory's loader and ours both accept.

`dump_task_yaml` writes our YAML (ordered by parameter group, defaults left out) or, with
``lf_only``, LLaMA-Factory YAML. Our YAML → TaskSpec → YAML is byte-identical.

dataset_info.json itself is read and written by `tunequeue.core.dataset_info`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunequeue.core.dataset_info import (  # noqa: F401 — re-exported for importers of compat
    DatasetEntry,
    bundled_dataset_dir,
    closest_hint,
    dataset_entries,
    dataset_info_path,
    parse_dataset_entry,
    read_dataset_info,
    register_datasets,
)
from tunequeue.core.errors import UserError
from tunequeue.core.known_keys import KNOWN_ELSEWHERE

NAME_MAX_LEN = 63

# ---------------------------------------------------------------------------------------------------
# Task files
# ---------------------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """What reading a task file gives: our keys, warnings, the detected format, datasets to register."""

    values: dict[str, Any]
    warnings: list[str]
    kind: str  # "ours", "lf" or "firefly"
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)


def sanitize_name(text: str) -> str:
    """Turn any text into a valid task name: lowercase, [a-z0-9-], no leading/trailing '-', ≤ 63."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return name[:NAME_MAX_LEN].strip("-")


def _task_name_from(output_dir: Any, path: Path) -> str:
    for candidate in (Path(str(output_dir)).name if output_dir else "", path.stem):
        name = sanitize_name(candidate)
        if name:
            return name
    return "imported"


def _finish_import(
    values: dict[str, Any], extra: dict[str, Any], path: Path, warnings: list[str]
) -> dict[str, Any]:
    """The imported `values` with a task_name first and the unused keys of `extra` kept under ``extra``.

    A task without model_name_or_path is a `UserError`; `extra` keys that change nothing (neither passed
    to the Trainer nor read by the engine, see `tunequeue.core.extra_keys`) get a warning naming them.
    """
    if "model_name_or_path" not in values:
        raise UserError(f"{path} has no model_name_or_path; add the base model to fine-tune.")
    values = {"task_name": _task_name_from(values.get("output_dir"), path), **values}
    if extra:
        from tunequeue.core.extra_keys import unused_keys

        values["extra"] = extra
        unused = unused_keys(extra)
        if unused:
            warnings.append(
                "kept but not used by tunequeue (exported again unchanged): " + ", ".join(unused)
            )
    return values


def _spec_api():
    from tunequeue.core import spec

    return spec


def _parse_file(path: Path) -> Any:
    from tunequeue.core.yaml_files import parse_file

    return parse_file(path, "a task YAML or Firefly JSON")


FIREFLY_MARKERS = frozenset(
    {"train_mode", "template_name", "max_seq_length", "train_file", "train_file_path", "train_file_name",
     "task_type", "tokenize_num_workers", "eval_file"}
)


def detect_kind(data: Mapping[str, Any], path: Path) -> str:
    """"ours", "lf" or "firefly" for a parsed task mapping."""
    if path.suffix.lower() == ".json" and FIREFLY_MARKERS & set(data):
        return "firefly"
    if "task_name" in data or "extra" in data:
        return "ours"
    if FIREFLY_MARKERS & set(data) and not ({"stage", "template", "dataset"} & set(data)):
        return "firefly"
    return "lf"


def load_task(path: str | Path) -> ImportResult:
    """Read a task file of any supported format (see the module docstring)."""
    path = Path(path).expanduser()
    data = _parse_file(path)
    if not isinstance(data, Mapping):
        raise UserError(f"{path} must hold a mapping of keys to values, not a {type(data).__name__}.")
    data = dict(data)
    kind = detect_kind(data, path)
    if kind == "ours":
        return ImportResult(_read_ours(data, path), [], "ours")
    if kind == "firefly":
        return _import_firefly(data, path)
    values, warnings = _import_lf(data, path)
    return ImportResult(values, warnings, "lf")


def load_task_file(
    path: str | Path, dataset_home: str | Path | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Read our YAML, an LLaMA-Factory YAML or a Firefly JSON and return (our keys, warnings).

    A Firefly train file is registered in ``dataset_home``/dataset_info.json and ``dataset_dir`` points
    there (``submit`` gives the job its own folder under TUNEQUEUE_HOME, ``validate`` a temporary one);
    without ``dataset_home`` it stays unregistered and preflight reports the unknown dataset. The
    relative paths of an LLaMA-Factory file are resolved against the current directory, as
    LLaMA-Factory resolves them (`resolve_lf_paths`), so a queued job finds them wherever the runner runs.
    """
    result = load_task(path)
    values = dict(result.values)
    warnings = list(result.warnings)
    if result.kind == "lf":
        values = resolve_lf_paths(values, Path.cwd())
        folder = values.get("dataset_dir")
        note = f"dataset_dir not set: LLaMA-Factory's default 'data' folder is used ({folder})"
        warnings = [note if w.startswith("dataset_dir not set") else w for w in warnings]
    if result.datasets and dataset_home is not None:
        register_datasets(result.datasets, dataset_home)
        values["dataset_dir"] = str(Path(dataset_home).resolve())
    return values, warnings


# Keys that always name a local path in LLaMA-Factory, and keys that name a local path or a hub id.
LF_PATH_KEYS = ("dataset_dir", "output_dir", "export_dir")
LF_PATH_OR_HUB_KEYS = ("model_name_or_path", "adapter_name_or_path", "ref_model", "reward_model")


def resolve_lf_paths(values: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """LLaMA-Factory's relative paths made absolute against ``cwd`` (hub ids and absent paths left alone).

    ``dataset_dir``, ``output_dir``, ``export_dir`` and a ``deepspeed`` config are paths; the model,
    adapter, reference and reward model keys are paths only when such a folder exists under ``cwd``.
    """
    values = dict(values)

    def absolute(text: str) -> str:
        return str((cwd / Path(text).expanduser()).resolve())

    for key in LF_PATH_KEYS:
        value = values.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            values[key] = absolute(value)
    for key in LF_PATH_OR_HUB_KEYS:
        value = values.get(key)
        if not isinstance(value, str) or not value:
            continue
        parts = [part.strip() for part in value.split(",")]
        resolved = [
            absolute(part) if not Path(part).is_absolute() and (cwd / part).is_dir() else part
            for part in parts
        ]
        values[key] = ",".join(resolved)
    extra = values.get("extra")
    if isinstance(extra, Mapping) and isinstance(extra.get("deepspeed"), str):
        deepspeed = extra["deepspeed"]
        if deepspeed and not Path(deepspeed).expanduser().is_absolute():
            values["extra"] = {**extra, "deepspeed": absolute(deepspeed)}
    return values


def _read_ours(data: dict[str, Any], path: Path) -> dict[str, Any]:
    spec = _spec_api()
    for key in data:
        if key != "extra" and key not in spec.KEYS:
            raise UserError(f"unknown key '{key}' in {path}{closest_hint(key, spec.KEYS)}")
    extra = data.get("extra")
    if extra is not None and not isinstance(extra, Mapping):
        raise UserError(f"'extra' in {path} must be a mapping of LLaMA-Factory keys to values.")
    return data


# --- LLaMA-Factory ---------------------------------------------------------------------------------

# Defaults LLaMA-Factory / Transformers use where tunequeue's differ: an imported file that omits the
# key must behave as it did there. (lora_alpha is 2 × lora_rank, computed.)
LF_DEFAULTS: dict[str, Any] = {
    "learning_rate": 5e-5,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "lr_scheduler_type": "linear",
    "warmup_ratio": 0.0,
    "logging_steps": 500,
    "optim": "adamw_torch_fused",
    "save_total_limit": None,
    "plot_loss": False,
    "per_device_eval_batch_size": 8,
    "do_train": False,
    "ddp_timeout": 1800,
    "dataset_dir": "data",
}
LF_LORA_DEFAULTS: dict[str, Any] = {"lora_dropout": 0.0}
PRECISION_FLAGS = ("bf16", "fp16", "pure_bf16")
LIST_KEYS = ("dataset", "eval_dataset", "lora_target", "additional_target", "freeze_trainable_modules",
             "freeze_extra_modules", "galore_target", "adapter_name_or_path")


def _normalise_value(key: str, value: Any, warnings: list[str]) -> Any:
    """Aliases and old spellings → our values."""
    if key in LIST_KEYS and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if key == "quantization_method" and value in ("bitsandbytes", "bitsandbytes4", "bitsandbytes8"):
        return "bnb"
    if key == "optim" and value == "adamw_hf":
        warnings.append(
            "optim adamw_hf was removed from Transformers; using adamw_torch (the same algorithm)"
        )
        return "adamw_torch"
    if key == "flash_attn" and isinstance(value, bool):
        return "fa2" if value else "auto"
    if key == "report_to" and isinstance(value, list):
        if len(value) > 1:
            warnings.append(f"report_to lists {', '.join(map(str, value))}; tunequeue keeps only {value[0]}")
        return str(value[0]) if value else "none"
    return value


def _import_lf(data: dict[str, Any], path: Path) -> tuple[dict[str, Any], list[str]]:
    spec = _spec_api()
    warnings: list[str] = []
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    flags: dict[str, Any] = {}
    for key, value in data.items():
        if key == "evaluation_strategy":
            warnings.append("evaluation_strategy is the old name of eval_strategy; imported as eval_strategy")
            key = "eval_strategy"
        if key == "warmup_steps" and isinstance(value, float) and 0 < value < 1:
            key = "warmup_ratio"  # Transformers reads a warmup_steps below 1 as a ratio of all steps
        if key in PRECISION_FLAGS:
            flags[key] = bool(value)
        elif key in spec.KEYS and not spec.param_info(key).tq:
            values[key] = _normalise_value(key, value, warnings)
        elif key in KNOWN_ELSEWHERE:
            extra[key] = value
        else:
            known = set(spec.KEYS) | KNOWN_ELSEWHERE
            raise UserError(f"unknown key '{key}' in {path}{closest_hint(key, known) or '; remove it'}")

    on = [flag for flag in PRECISION_FLAGS if flags.get(flag)]
    if flags.get("bf16") and flags.get("fp16"):
        raise UserError(f"{path} sets both bf16 and fp16; keep one of them.")
    if "pure_bf16" in on:
        values["compute_type"] = "pure_bf16"
    elif on:
        values["compute_type"] = on[0]
    else:
        values["compute_type"] = "fp32"
        warnings.append("no bf16/fp16 flag: LLaMA-Factory trains in fp32 then, so compute_type is fp32")

    if values.get("use_unsloth"):
        values["booster"] = "unsloth"
    elif values.get("enable_liger_kernel"):
        values["booster"] = "liger_kernel"
    elif values.get("flash_attn") == "fa2":
        values["booster"] = "flashattn2"

    finetuning_type = values.get("finetuning_type", "lora")
    for key, default in LF_DEFAULTS.items():
        values.setdefault(key, default)
    if finetuning_type == "lora":
        for key, default in LF_LORA_DEFAULTS.items():
            values.setdefault(key, default)
        values.setdefault("lora_alpha", 2 * int(values.get("lora_rank") or 8))
    if values.get("dataset_dir") == "data" and "dataset_dir" not in data:
        warnings.append(
            "dataset_dir not set: LLaMA-Factory's default 'data' (relative to where the task runs) is used; "
            "set an absolute dataset_dir"
        )
    if not values.get("dataset") and values.get("eval_dataset") and not values.get("do_train"):
        values["dataset"] = values["eval_dataset"]
        warnings.append("no dataset for this evaluate/predict task; dataset is set to its eval_dataset")
    return _finish_import(values, extra, path, warnings), warnings


# --- names of other tools that map onto ours -------------------------------------------------------

# LLaMA-Factory or Firefly key → (our key, how the value carries over). `tunequeue params NAME` says it.
FOREIGN_KEYS: dict[str, tuple[str, str]] = {
    "bf16": ("compute_type", "LLaMA-Factory's bf16: true is compute_type: bf16"),
    "fp16": ("compute_type", "LLaMA-Factory's fp16: true is compute_type: fp16"),
    "pure_bf16": ("compute_type", "LLaMA-Factory's pure_bf16: true is compute_type: pure_bf16"),
    "max_seq_length": ("cutoff_len", "Firefly's max_seq_length is cutoff_len"),
    "template_name": ("template", "Firefly's template_name is template"),
    "train_mode": ("finetuning_type", "Firefly's train_mode lora/full is finetuning_type; qlora is "
                   "finetuning_type: lora with quantization_bit: 4"),
    "train_file": ("dataset", "Firefly's train_file becomes a dataset registered in dataset_info.json"),
    "tokenize_num_workers": ("preprocessing_num_workers", "Firefly's tokenize_num_workers is "
                             "preprocessing_num_workers"),
    "beta": ("pref_beta", "Firefly's beta is pref_beta"),
    "evaluation_strategy": ("eval_strategy", "evaluation_strategy is the old name of eval_strategy"),
    "gradient_checkpointing": ("disable_gradient_checkpointing", "gradient_checkpointing: false is "
                               "disable_gradient_checkpointing: true"),
}


# --- Firefly ---------------------------------------------------------------------------------------

# Firefly key → our key, where only the name changes.
FIREFLY_RENAMES = {
    "template_name": "template",
    "max_seq_length": "cutoff_len",
    "beta": "pref_beta",
    "tokenize_num_workers": "preprocessing_num_workers",
}
FIREFLY_TASK_TYPES = {"pretrain": "pt", "sft": "sft", "dpo": "dpo"}
# Firefly's own argument defaults (its CustomizedArguments) for keys an old config may omit.
FIREFLY_DEFAULTS = {"lora_rank": 64, "lora_alpha": 16, "lora_dropout": 0.05}
FIREFLY_ONLY_EXTRA = ("max_prompt_length", "min_seq_length")


def _resolve_data_file(raw: str, path: Path, warnings: list[str]) -> Path:
    """Find a Firefly data file: as given (from the cwd), next to the config, or at the repo root."""
    given = Path(raw).expanduser()
    candidates = [given] if given.is_absolute() else [
        Path.cwd() / given, path.parent / given, path.parent.parent / given,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
        if candidate.parent.is_dir() and (candidate.parent / "csv" / candidate.name).is_file():
            return (candidate.parent / "csv" / candidate.name).resolve()
    warnings.append(f"train file {raw} not found; registered at {candidates[0].resolve()}")
    return candidates[0].resolve()


def _dataset_name_for(file: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", file.stem).strip("_") or "firefly_data"


def _firefly_entry(file: Path, stage: str) -> dict[str, Any]:
    """dataset_info entry for a Firefly data file (CSV or the conversation JSONL)."""
    entry: dict[str, Any] = {"file_name": str(file)}
    if stage == "pt":
        entry["columns"] = {"prompt": "text"}
    elif stage == "dpo":
        entry.update(formatting="sharegpt", ranking=True,
                     columns={"messages": "conversations", "chosen": "chosen", "rejected": "rejected"})
    elif file.suffix.lower() == ".csv":
        entry["columns"] = {"prompt": "human", "response": "assistant"}
    else:
        entry.update(formatting="sharegpt", columns={"messages": "conversation"})
    return entry


def _import_firefly(data: dict[str, Any], path: Path) -> ImportResult:
    spec = _spec_api()
    warnings: list[str] = []
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    datasets: dict[str, dict[str, Any]] = {}

    stage = FIREFLY_TASK_TYPES.get(str(data.get("task_type", "sft")))
    if stage is None:
        raise UserError(f"task_type '{data['task_type']}' in {path} is not one of pretrain, sft, dpo.")
    values["stage"] = stage
    mode = data.get("train_mode", "qlora")
    if "train_mode" not in data:
        warnings.append("train_mode not set: Firefly's default qlora is used")
    if mode == "qlora":
        values.update(finetuning_type="lora", quantization_bit=4, quantization_method="bnb",
                      quantization_type="nf4", double_quantization=True)
    elif mode in ("lora", "full"):
        values["finetuning_type"] = mode
    else:
        raise UserError(f"train_mode '{mode}' in {path} is not one of full, lora, qlora.")
    if values["finetuning_type"] == "lora":
        values["lora_target"] = "all"  # Firefly puts adapters on every linear layer

    if data.get("train_file"):
        train_raw = str(data["train_file"])
    elif data.get("train_file_name"):
        train_raw = str(Path(str(data.get("train_file_path") or ".")) / str(data["train_file_name"]))
    else:
        raise UserError(
            f"{path} names no training data; set train_file (or train_file_path + train_file_name)."
        )
    train_file = _resolve_data_file(train_raw, path, warnings)
    train_name = _dataset_name_for(train_file)
    datasets[train_name] = _firefly_entry(train_file, stage)
    values["dataset"] = train_name
    if data.get("eval_file"):
        eval_file = _resolve_data_file(str(data["eval_file"]), path, warnings)
        eval_name = _dataset_name_for(eval_file)
        if eval_name == train_name:
            eval_name += "_eval"
        datasets[eval_name] = _firefly_entry(eval_file, stage)
        values["eval_dataset"] = eval_name

    handled = {"task_type", "train_mode", "train_file", "train_file_path", "train_file_name", "eval_file"}
    flags: dict[str, bool] = {}
    for key, value in data.items():
        if key in handled:
            continue
        if key in FIREFLY_RENAMES:
            values[FIREFLY_RENAMES[key]] = value
        elif key == "gradient_checkpointing":
            values["disable_gradient_checkpointing"] = not bool(value)
        elif key in PRECISION_FLAGS:
            flags[key] = bool(value)
        elif key == "remove_unused_columns":
            warnings.append(
                "remove_unused_columns dropped: the trainer always keeps only the columns it needs"
            )
        elif key in FIREFLY_ONLY_EXTRA:
            extra[key] = value
        elif key in spec.KEYS and not spec.param_info(key).tq:
            values[key] = _normalise_value(key, value, warnings)
        elif key in KNOWN_ELSEWHERE:
            extra[key] = value
        else:
            known = set(spec.KEYS) | KNOWN_ELSEWHERE | FIREFLY_MARKERS | {"gradient_checkpointing", "beta"}
            raise UserError(f"unknown key '{key}' in {path}{closest_hint(key, known) or '; remove it'}")

    if flags.get("bf16") and flags.get("fp16"):
        raise UserError(f"{path} sets both bf16 and fp16; keep one of them.")
    values["compute_type"] = "bf16" if flags.get("bf16") else "fp16" if flags.get("fp16") else "fp32"
    if values.get("use_unsloth"):
        values["booster"] = "unsloth"
    for key, default in LF_DEFAULTS.items():
        if key != "dataset_dir":
            values.setdefault(key, default)
    values["do_train"] = True  # Firefly's train.py always trains
    if values["finetuning_type"] == "lora":
        for key, default in FIREFLY_DEFAULTS.items():
            values.setdefault(key, default)
    return ImportResult(_finish_import(values, extra, path, warnings), warnings, "firefly", datasets)


# --- writing ---------------------------------------------------------------------------------------


def dump_task_yaml(spec_or_dict: Any, lf_only: bool = False) -> str:
    """YAML text of a task: our YAML, or LLaMA-Factory YAML with ``lf_only`` (see `core.task_files`)."""
    from tunequeue.core.task_files import dump_task_yaml as dump

    return dump(spec_or_dict, lf_only=lf_only)
