"""What happens to the keys a task keeps in ``extra``: passed to the Trainer, honoured, or refused.

An imported LLaMA-Factory YAML keeps every key that is not a TaskSpec key in ``extra``. Such a key is

- **passed through** to ``transformers.TrainingArguments`` when it is one of its fields
  (`TRAINING_ARGUMENTS_FIELDS`, a static list so nothing here imports transformers or torch) and
  tunequeue does not set it itself (`ENGINE_SET_ARGUMENTS`): ``save_strategy``, ``save_only_model``,
  ``max_steps``, ``dataloader_num_workers``, ``disable_tqdm``, ``eval_on_start``, ``adam_beta2`` …;
- **honoured** by the training engine (`ENGINE_KEYS`): ``trust_remote_code``, ``use_dft_loss``,
  ``use_llama_pro``, the OFT keys, the Muon / APOLLO / Adam-mini optimizer switches, ``deepspeed``;
- **refused** when switched on (`REFUSED_SWITCHES`): a method tunequeue does not implement
  (``mixture_of_depths``, ``fp8``, ``use_asft_loss`` …) is an error at validation, never ignored;
- otherwise **kept but not used** (exported again unchanged), with a warning naming it.

`extra_problems` gives the validation errors (refusals, missing optional packages, wrong value types);
it checks whether optional packages are installed with ``importlib.util.find_spec`` only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from tunequeue.core.i18n import both, piece, text
from tunequeue.core.known_keys import TRAINING_ARGUMENTS_FIELDS

# TrainingArguments fields the engine sets from the task or needs fixed for itself; in ``extra`` they
# are kept but not used (the task key or the engine decides).
ENGINE_SET_ARGUMENTS: frozenset[str] = frozenset(
    {
        "output_dir",
        "bf16",
        "fp16",
        "use_cpu",
        "local_rank",
        "remove_unused_columns",
        "label_names",
        "include_num_input_tokens_seen",
        "use_liger_kernel",
        "do_train",
        "do_eval",
        "do_predict",
        "report_to",
        "deepspeed",
        "resume_from_checkpoint",
    }
)

APOLLO_KEYS = (
    "apollo_target",
    "apollo_rank",
    "apollo_update_interval",
    "apollo_scale",
    "apollo_proj",
    "apollo_proj_type",
    "apollo_scale_type",
    "apollo_layerwise",
    "apollo_scale_front",
)
OFT_KEYS = ("oft_rank", "oft_block_size", "oft_target", "module_dropout")

# LLaMA-Factory keys the engine reads from ``extra`` (besides TrainingArguments pass-through).
ENGINE_KEYS: frozenset[str] = frozenset(
    {
        "trust_remote_code",
        "use_dft_loss",
        "use_llama_pro",
        "use_muon",
        "use_adam_mini",
        "use_apollo",
        "deepspeed",
        "resume_from_checkpoint",
        *APOLLO_KEYS,
        *OFT_KEYS,
    }
)

# Switches that change how training works and that tunequeue does not implement: key → what to do.
# Switches refused when on; the reasons are the catalog's ``rules.extra.refused.<key>``.
REFUSED_SWITCHES: tuple[str, ...] = (
    "mixture_of_depths",
    "fp8",
    "use_asft_loss",
    "use_eaft_loss",
    "use_mca",
    "use_kt",
    "shift_attn",
    "push_to_hub",
)

# Optional packages: switch → (import name, pip package).
OPTIONAL_PACKAGES: dict[str, tuple[str, str]] = {
    "use_adam_mini": ("adam_mini", "adam-mini"),
    "use_apollo": ("apollo_torch", "apollo-torch"),
    "deepspeed": ("deepspeed", "deepspeed"),
}

BOOL_SWITCHES = (
    "trust_remote_code",
    "use_dft_loss",
    "use_llama_pro",
    "use_muon",
    "use_adam_mini",
    "use_apollo",
    "apollo_layerwise",
    "apollo_scale_front",
)
INT_KEYS = ("oft_rank", "oft_block_size", "apollo_rank", "apollo_update_interval")

# LLaMA-Factory's defaults for the engine keys a file may omit.
DEFAULTS: dict[str, Any] = {
    "oft_rank": 0,
    "oft_block_size": 32,
    "oft_target": "all",
    "module_dropout": 0.0,
    "apollo_target": "all",
    "apollo_rank": 16,
    "apollo_update_interval": 200,
    "apollo_scale": 32.0,
    "apollo_proj": "random",
    "apollo_proj_type": "std",
    "apollo_scale_type": "channel",
    "apollo_layerwise": False,
    "apollo_scale_front": False,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Values of common pass-through Trainer arguments, checked before queueing: key → (test, what it must be).
PASSTHROUGH_VALUES: dict[str, tuple[Any, str]] = {
    "save_strategy": (lambda v: v in ("no", "steps", "epoch", "best"), "one of no, steps, epoch, best"),
    "logging_strategy": (lambda v: v in ("no", "steps", "epoch"), "one of no, steps, epoch"),
    "max_steps": (lambda v: _is_int(v) and (v > 0 or v == -1), "a whole number > 0 (or -1 for epochs)"),
    "dataloader_num_workers": (lambda v: _is_int(v) and v >= 0, "a whole number ≥ 0"),
    "dataloader_prefetch_factor": (lambda v: v is None or (_is_int(v) and v > 0), "a whole number > 0"),
    "save_only_model": (lambda v: isinstance(v, bool), "true or false"),
    "disable_tqdm": (lambda v: isinstance(v, bool), "true or false"),
    "eval_on_start": (lambda v: isinstance(v, bool), "true or false"),
    "logging_first_step": (lambda v: isinstance(v, bool), "true or false"),
    "load_best_model_at_end": (lambda v: isinstance(v, bool), "true or false"),
    "adam_beta1": (lambda v: _is_number(v) and 0 <= v < 1, "a number from 0 to below 1"),
    "adam_beta2": (lambda v: _is_number(v) and 0 <= v < 1, "a number from 0 to below 1"),
    "adam_epsilon": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "label_smoothing_factor": (lambda v: _is_number(v) and 0 <= v < 1, "a number from 0 to below 1"),
    "eval_accumulation_steps": (lambda v: v is None or (_is_int(v) and v > 0), "a whole number > 0"),
}


def extra_value(extra: Mapping[str, Any] | None, key: str) -> Any:
    """The value of ``key`` in ``extra``, or LLaMA-Factory's default for it (None when it has none)."""
    if extra and key in extra and extra[key] is not None:
        return extra[key]
    return DEFAULTS.get(key)


def passthrough_arguments(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``extra`` keys that go to ``TrainingArguments`` unchanged."""
    return {
        key: value
        for key, value in (extra or {}).items()
        if key in TRAINING_ARGUMENTS_FIELDS and key not in ENGINE_SET_ARGUMENTS
    }


def is_used(key: str) -> bool:
    """Whether an ``extra`` key changes the run (passed to the Trainer or read by the engine)."""
    return key in ENGINE_KEYS or (key in TRAINING_ARGUMENTS_FIELDS and key not in ENGINE_SET_ARGUMENTS)


def unused_keys(extra: Mapping[str, Any] | None) -> list[str]:
    """The ``extra`` keys that are kept but change nothing (sorted)."""
    return sorted(key for key in (extra or {}) if not is_used(key) and key not in REFUSED_SWITCHES)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def extra_problems(
    extra: Mapping[str, Any] | None, *, finetuning_type: str, stage: str
) -> list[tuple[str, str, str]]:
    """Errors of the ``extra`` keys as (key, English, Chinese): refusals, missing packages, bad values."""
    extra = dict(extra or {})
    problems: list[tuple[str, str, str]] = []

    def on(key: str) -> bool:
        return bool(extra.get(key))

    for key in REFUSED_SWITCHES:
        if on(key):
            reason = piece(f"rules.extra.refused.{key}")
            problems.append((key, *both("rules.extra.refused", key=key, reason=reason)))
    for key in BOOL_SWITCHES:
        if key in extra and extra[key] is not None and not isinstance(extra[key], bool):
            problems.append(
                (
                    key,
                    *both("rules.extra.bool", value=extra[key], key=key),
                )
            )
    for key, (valid, what) in PASSTHROUGH_VALUES.items():
        if key in extra and not valid(extra[key]):
            problems.append((key, *both("rules.extra.kind", value=extra[key], key=key, what=what)))
    for key in INT_KEYS:
        value = extra.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            problems.append(
                (
                    key,
                    *both("rules.extra.int", key=key, value=value),
                )
            )
    for key, (module, package) in OPTIONAL_PACKAGES.items():
        if on(key) and not _installed(module):
            problems.append(
                (
                    key,
                    *both("rules.extra.package", key=key, package=package),
                )
            )
    if on("use_muon") and not _torch_has_muon():
        problems.append(
            (
                "use_muon",
                *both("rules.extra.muon_torch"),
            )
        )
    optimizers = [key for key in ("use_muon", "use_adam_mini", "use_apollo") if on(key)]
    if len(optimizers) > 1:
        problems.append(
            (
                optimizers[1],
                *both(
                    "rules.extra.optimizers",
                    optimizers=lambda lang: text("rules.extra.optimizers_and", lang).join(optimizers),
                ),
            )
        )
    if on("use_apollo") and on("apollo_scale_front"):
        problems.append(
            (
                "apollo_scale_front",
                *both("rules.extra.apollo_scale_front"),
            )
        )
    if on("use_apollo") and finetuning_type != "full":
        problems.append(
            (
                "use_apollo",
                *both("rules.extra.apollo_full", finetuning_type=finetuning_type),
            )
        )
    for key in ("use_muon", "use_adam_mini"):
        if on(key) and stage not in ("pt", "sft", "rm"):
            problems.append(
                (
                    key,
                    *both("rules.extra.stage_pt_sft_rm", key=key, stage=stage),
                )
            )
    if finetuning_type == "oft" and stage not in ("pt", "sft"):
        problems.append(
            (
                "finetuning_type",
                *both("rules.extra.oft_stage", stage=stage),
            )
        )
    if on("use_dft_loss") and stage not in ("sft", "pt"):
        problems.append(
            (
                "use_dft_loss",
                *both("rules.extra.dft_loss_stage", stage=stage),
            )
        )
    if on("use_llama_pro") and finetuning_type not in ("freeze", "lora"):
        problems.append(
            (
                "use_llama_pro",
                *both("rules.extra.llama_pro", finetuning_type=finetuning_type),
            )
        )
    if on("deepspeed") and not isinstance(extra["deepspeed"], str | dict):
        problems.append(
            (
                "deepspeed",
                *both("rules.extra.deepspeed"),
            )
        )
    return problems


def _torch_has_muon() -> bool:
    """Whether the installed torch ships torch.optim.Muon (read from the file, torch is not imported)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    from pathlib import Path

    return any((Path(p) / "optim" / "_muon.py").is_file() for p in spec.submodule_search_locations)
