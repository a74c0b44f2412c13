"""Validation of a task: field bounds, recommended ranges and the cross-field rules of PARAMETERS.md §2.7.

`check_task` turns a plain mapping of task keys into a `ValidationReport`: the resolved `TaskSpec` (when
there are no errors), the *errors* (the task cannot be queued) and the *warnings* (allowed, but shown).
Every `Problem` is one sentence in English and Chinese that says what to change. The cross-field rules
are a table (`CROSS_FIELD_RULES`), one function per rule family. Rules that need files
are separate functions for callers that have them: `check_dataset_fits_stage` (dataset-vs-stage, from
dataset_info.json) and `check_chat_template` (a local model's tokenizer files).

Also here: the learning-rate suggestion per method and stage, the effective batch and the estimate of
total optimizer steps used by the wizard and by the step-count warnings.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from tunequeue.core.extra_keys import extra_problems
from tunequeue.core.i18n import both, piece, text
from tunequeue.core.spec import (
    KEYS,
    NAME_MAX_LEN,
    TaskSpec,
    all_params,
    closest_key,
    format_value,
    param_info,
)

# Valid load-time quantization bits per method (LLaMA-Factory's checks).
QUANTIZATION_BITS: dict[str, tuple[int, ...]] = {
    "bnb": (4, 8),
    "hqq": (1, 2, 3, 4, 5, 6, 8),
    "eetq": (8,),
}
EFFECTIVE_BATCH_RECOMMENDED = (8, 64)
NAME_KEYS = ("task_name", "namespace")
REQUIRED_PLACEHOLDERS = {
    "task_name": "placeholder",
    "model_name_or_path": "placeholder",
    "dataset": "placeholder",
}


@dataclass(frozen=True)
class Problem:
    """One error or warning about a task: the key it concerns (None for the whole task) and a sentence."""

    key: str | None
    message_en: str
    message_zh: str

    def message(self, lang: str = "en") -> str:
        """The sentence in ``lang`` ("en" or "zh")."""
        return self.message_zh if lang == "zh" else self.message_en

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """JSON-friendly form: key and message."""
        return {"key": self.key, "message": self.message(lang)}


@dataclass
class ValidationReport:
    """Result of `check_task`: the resolved spec (None when there are errors), errors and warnings."""

    spec: TaskSpec | None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there are no errors."""
        return not self.errors

    def errors_for(self, key: str) -> list[Problem]:
        """Errors concerning ``key``."""
        return [p for p in self.errors if p.key == key]

    def warnings_for(self, key: str) -> list[Problem]:
        """Warnings concerning ``key``."""
        return [p for p in self.warnings if p.key == key]

    def raise_if_errors(self, lang: str = "en") -> TaskSpec | None:
        """Raise `UserError` with the first error (and how many more); else return the spec."""
        if self.errors:
            from tunequeue.core.errors import UserError

            first = self.errors[0].message(lang)
            more = len(self.errors) - 1
            if more:
                first += f" (and {more} more error{'s' if more > 1 else ''})"
            raise UserError(first)
        return self.spec

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """JSON-friendly form: ok, the task (only keys that matter), errors and warnings."""
        return {
            "ok": self.ok,
            "task": self.spec.to_yaml_dict() if self.spec is not None else None,
            "errors": [p.to_dict(lang) for p in self.errors],
            "warnings": [p.to_dict(lang) for p in self.warnings],
        }


# ---------------------------------------------------------------------------------------------------
# Helpers other parts use
# ---------------------------------------------------------------------------------------------------


def suggested_learning_rate(finetuning_type: str, stage: str) -> float:
    """Starting learning rate: 5e-6 for dpo/kto, 1e-5 for full tuning, else 1e-4 (lora, freeze)."""
    if stage in ("dpo", "kto"):
        return 5e-6
    if finetuning_type == "full":
        return 1e-5
    return 1e-4


PREFERENCE_LR_RANGE = (1e-7, 5e-5)


def recommended_learning_rate_range(finetuning_type: str, stage: str) -> tuple[float, float]:
    """The recommended learning-rate range for a method and stage; it always holds the suggestion.

    Preference stages (dpo, kto) train at far lower rates (suggested 5e-6) than the field's 1e-5–1e-3.
    """
    if stage in ("dpo", "kto"):
        return PREFERENCE_LR_RANGE
    low, high = param_info("learning_rate").rec
    return float(low), float(high)


def effective_batch(spec: TaskSpec) -> int:
    """Examples per optimizer step: per-device batch × accumulation × GPUs × nodes."""
    return spec.per_device_train_batch_size * spec.gradient_accumulation_steps * spec.gpu_count * spec.nnodes


def estimate_total_steps(num_examples: int, spec: TaskSpec) -> int:
    """Optimizer steps of a run over ``num_examples`` training examples (before the validation split).

    Applies ``max_samples`` (per dataset), ``val_size`` and the Trainer's arithmetic: batches per epoch
    over all devices, floor-divided by the accumulation steps (at least 1), times the epochs, rounded up.
    """
    n = max(int(num_examples), 0)
    if spec.max_samples is not None:
        datasets = max(len([d for d in (spec.dataset or "").split(",") if d.strip()]), 1)
        n = min(n, spec.max_samples * datasets)
    if isinstance(spec.val_size, int) and not isinstance(spec.val_size, bool):
        n -= spec.val_size
    elif spec.val_size:
        n -= math.ceil(n * spec.val_size)
    if n <= 0:
        return 0
    world = spec.per_device_train_batch_size * spec.gpu_count * spec.nnodes
    batches = math.ceil(n / world)
    updates_per_epoch = max(batches // spec.gradient_accumulation_steps, 1)
    return math.ceil(spec.num_train_epochs * updates_per_epoch)


def _attr(entry: Any, name: str, default: Any = None) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(name, default)
    return getattr(entry, name, default)


def check_dataset_fits_stage(
    stage: str, dataset_info_entries: Mapping[str, Any] | Iterable[Any]
) -> list[Problem]:
    """Errors for datasets that do not fit ``stage``: rm/dpo need ranking data, kto needs a kto_tag column.

    ``dataset_info_entries`` maps dataset names to their dataset_info.json entries (dicts or objects with
    ``ranking`` and ``columns`` attributes), or is a plain iterable of such entries.
    """
    if isinstance(dataset_info_entries, Mapping):
        items = list(dataset_info_entries.items())
    else:
        items = [(_attr(e, "name", "?"), e) for e in dataset_info_entries]
    problems: list[Problem] = []
    for name, entry in items:
        ranking = bool(_attr(entry, "ranking", False))
        columns = _attr(entry, "columns", None) or {}
        if stage in ("rm", "dpo") and not ranking:
            problems.append(
                Problem(
                    "dataset",
                    *both("rules.dataset_needs_pairs", stage=stage, name=name),
                )
            )
        elif stage not in ("rm", "dpo") and ranking:
            problems.append(
                Problem(
                    "dataset",
                    *both("rules.dataset_is_pairs", name=name, stage=stage),
                )
            )
        if stage == "kto" and not (isinstance(columns, Mapping) and columns.get("kto_tag")):
            problems.append(
                Problem(
                    "dataset",
                    *both("rules.dataset_needs_kto_tag", name=name),
                )
            )
    return problems


def local_model_dir(model_name_or_path: Any) -> Path | None:
    """The local directory of a model reference (bundled, a local directory or a cached hub model).

    None for anything else (a hub ID to download, a bad path): checks that read model files then skip.
    """
    from tunequeue.core.errors import UserError
    from tunequeue.core.models import resolve_model

    try:
        return resolve_model(model_name_or_path).directory
    except UserError:
        return None


def has_chat_template(model_dir: Path) -> bool:
    """Whether the tokenizer in ``model_dir`` ships a chat template (chat_template.jinja or in its config)."""
    if (model_dir / "chat_template.jinja").is_file():
        return True
    try:
        config = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("chat_template"))


def check_chat_template(template: str | None, model_dir: Path | None) -> list[Problem]:
    """Warn (§2.7 rule 2) when ``template`` is unset or ``auto`` and the tokenizer has no chat template.

    Nothing when the model directory is unknown (not a local model).
    """
    if template not in (None, "", "auto") or model_dir is None or has_chat_template(model_dir):
        return []
    return [
        Problem(
            "template",
            *both("rules.no_chat_template", model_dir=model_dir),
        )
    ]


# ---------------------------------------------------------------------------------------------------
# Field-level problems (pydantic errors → sentences)
# ---------------------------------------------------------------------------------------------------


def _bounds_phrase(key: str, lang: str) -> str:
    """What ``key`` accepts, in ``lang``: its choices, its bounds in words, or its kind and bounds."""
    info = param_info(key)
    if info.choices:
        return text("rules.one_of", lang, values=", ".join(format_value(c) for c in info.choices))
    words = info.bounds_words(lang)
    if words:
        return words
    parts: list[str] = []
    for name, symbol in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
        bound = getattr(info, name)
        if bound is not None:
            parts.append(f"{symbol} {format_value(bound)}")
    kind = text(f"rules.kind.{info.kind}", lang)
    if not parts:
        return kind
    return text("rules.kind_bounds", lang, kind=kind, bounds=text("rules.bounds_and", lang).join(parts))


def _expected(key: str, lang: str) -> str:
    """`_bounds_phrase`, plus "or empty" for a key that may be left unset."""
    phrase = _bounds_phrase(key, lang)
    return phrase + text("rules.or_empty", lang) if param_info(key).nullable else phrase


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else format_value(value)
    return text if len(text) <= 80 else text[:76] + "..."


def _field_problem(key: str, error: ErrorDetails, data: Mapping[str, Any]) -> Problem:
    kind = error["type"]
    value = data.get(key)
    if kind == "missing":
        info = param_info(key)
        return Problem(key, *both("rules.required", key=key, help=info.help))
    if key in NAME_KEYS:
        return Problem(
            key,
            *both("rules.bad_name", key=key, NAME_MAX_LEN=NAME_MAX_LEN, value=_shown(value)),
        )
    if kind == "value_error":
        text = str(error.get("ctx", {}).get("error") or error["msg"]).removeprefix("Value error, ")
        return Problem(key, text, text)
    return Problem(
        key,
        *both("rules.bad_value", key=key, expected=lambda lang: _expected(key, lang), value=_shown(value)),
    )


def _validate_fields(data: dict[str, Any]) -> tuple[TaskSpec | None, dict[str, Problem]]:
    """Validate; on failure return the per-key problems (first error per key)."""
    try:
        return TaskSpec.model_validate(data), {}
    except ValidationError as exc:
        problems: dict[str, Problem] = {}
        for error in exc.errors():
            loc = error.get("loc") or ("",)
            key = str(loc[0])
            if key not in problems:
                if key in KEYS:
                    problems[key] = _field_problem(key, error, data)
                else:
                    msg = f"{key or 'task'}: {error['msg']}"
                    problems[key] = Problem(key or None, msg, msg)
        return None, problems


# ---------------------------------------------------------------------------------------------------
# Cross-field rules (PARAMETERS.md §2.7)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleContext:
    """What a cross-field rule may look at besides the task: the keys set, the model and the machine."""

    present: frozenset[str]
    model_config: Mapping[str, Any] | None
    host_gpus: list[Any] | None
    multi_node: bool


Emit = Callable[[str | None, str, str], None]


def _rule_lora_only_options(spec: TaskSpec, ctx: RuleContext, err: Emit, warn: Emit) -> None:
    """LoRA-only options (rule 4) and load-time quantization bits."""
    ft = spec.finetuning_type
    lora_only = {
        "quantization_bit": spec.quantization_bit is not None,
        "loraplus_lr_ratio": spec.loraplus_lr_ratio is not None,
        "use_rslora": spec.use_rslora,
        "use_dora": spec.use_dora,
        "pissa_init": spec.pissa_init,
        "use_unsloth": spec.use_unsloth or spec.booster == "unsloth",
    }
    if ft != "lora":
        for key, used in lora_only.items():
            if used:
                shown = "booster unsloth" if key == "use_unsloth" and not spec.use_unsloth else key
                err(
                    key if shown == key else "booster",
                    *both("rules.lora_only", shown=shown, ft=ft),
                )
    if spec.quantization_bit is not None:
        valid = QUANTIZATION_BITS[spec.quantization_method]
        if spec.quantization_bit not in valid:
            bits = ", ".join(str(b) for b in valid)
            err(
                "quantization_bit",
                *both(
                    "rules.quantization_bits",
                    quantization_bit=spec.quantization_bit,
                    quantization_method=spec.quantization_method,
                    bits=bits,
                ),
            )


def _rule_pissa_restrictions(spec: TaskSpec, ctx: RuleContext, err: Emit, warn: Emit) -> None:
    """PiSSA restrictions (rule 5)."""
    stage = spec.stage
    if spec.pissa_init:
        if spec.quantization_bit is not None:
            err(
                "pissa_init",
                *both("rules.pissa_quantization"),
            )
        if stage in ("ppo", "kto"):
            err(
                "pissa_init",
                *both("rules.pissa_stage", stage=stage),
            )
        if stage == "dpo" and spec.pref_loss not in ("orpo", "simpo"):
            err(
                "pissa_init",
                *both("rules.pissa_dpo"),
            )


def _rule_galore_and_badam(spec: TaskSpec, ctx: RuleContext, err: Emit, warn: Emit) -> None:
    """GaLore and BAdam: full tuning, their packages, one GPU (rule 6)."""
    ft = spec.finetuning_type
    for key, used, name in (
        ("use_galore", spec.use_galore, "GaLore"),
        ("use_badam", spec.use_badam, "BAdam"),
    ):
        if used and ft != "full":
            err(
                key,
                *both("rules.full_only", name=name, key=key, ft=ft),
            )
    for key, used, module, extra in (
        ("use_galore", spec.use_galore, "galore_torch", "galore"),
        ("use_badam", spec.use_badam, "badam", "badam"),
    ):
        if used and importlib.util.find_spec(module) is None:
            err(
                key,
                *both("rules.optional_package", key=key, module=module, extra=extra),
            )
    if spec.use_galore and spec.use_badam:
        err(
            "use_badam",
            *both("rules.galore_badam"),
        )
    if spec.gpu_count > 1 or spec.nnodes > 1:
        if spec.use_badam:
            err(
                "use_badam",
                *both("rules.badam_one_gpu"),
            )
        if spec.use_galore and spec.galore_layerwise:
            err(
                "galore_layerwise",
                *both("rules.galore_layerwise_one_gpu"),
            )


def _rule_ppo_reward_model(spec: TaskSpec, ctx: RuleContext, err: Emit, warn: Emit) -> None:
    """PPO needs a reward model that fits the method (rule 7)."""
    ft = spec.finetuning_type
    stage = spec.stage
    if stage == "ppo":
        if not spec.reward_model:
            err(
                "reward_model",
                *both("rules.ppo_reward_model"),
            )
        if spec.reward_model_type == "lora" and ft != "lora":
            err(
                "reward_model_type",
                *both("rules.reward_model_type", ft=ft),
            )


def _rule_preference_and_validation(spec: TaskSpec, ctx: RuleContext, err: Emit, warn: Emit) -> None:
    """DPO label smoothing, validation data for eval, predictions (rule 8)."""
    stage = spec.stage
    if spec.dpo_label_smoothing > 0 and spec.pref_loss != "sigmoid":
        err(
            "dpo_label_smoothing",
            *both("rules.dpo_label_smoothing", pref_loss=spec.pref_loss),
        )
    has_val = bool(spec.val_size)
    if has_val and spec.eval_dataset:
        err(
            "val_size",
            *both("rules.val_size_eval_dataset"),
        )
    if spec.do_eval and not has_val and not spec.eval_dataset:
        err(
            "do_eval",
            *both("rules.do_eval_data"),
        )
    if spec.eval_strategy != "no" and not has_val and not spec.eval_dataset:
        err(
            "eval_strategy",
            *both("rules.eval_strategy_data", eval_strategy=spec.eval_strategy),
        )
    if spec.do_predict and stage == "sft" and not spec.predict_with_generate:
        warn(
            "predict_with_generate",
            *both("rules.predict_with_generate"),
        )


def _rule_hardware(spec: TaskSpec, ctx: RuleContext, err: Emit, warn: Emit) -> None:
    """Precision against the GPUs, GPU count, nodes, FlashAttention precision (rule 9)."""
    host_gpus = ctx.host_gpus
    multi_node = ctx.multi_node
    if spec.nnodes != 1 and not multi_node:
        err(
            "nnodes",
            *both("rules.nnodes_slurm", nnodes=spec.nnodes),
        )
    if host_gpus is not None:
        if spec.compute_type in ("bf16", "pure_bf16"):
            old = [
                capability
                for g in host_gpus
                if (capability := _capability(g)) is not None and capability < (8, 0)
            ]
            if old:
                cap = ".".join(str(x) for x in old[0])
                err(
                    "compute_type",
                    *both("rules.compute_capability", compute_type=spec.compute_type, cap=cap),
                )
        if host_gpus and spec.gpu_count > len(host_gpus):
            err(
                "gpu_count",
                *both("rules.gpu_count_host", available=len(host_gpus), gpu_count=spec.gpu_count),
            )
        if not host_gpus and not spec.allow_cpu:
            err(
                "allow_cpu",
                *both("rules.no_gpu"),
            )
    if spec.booster == "flashattn2" and spec.compute_type == "fp32":
        err(
            "booster",
            *both("rules.flashattn_precision"),
        )


def _rule_context_and_neftune(spec: TaskSpec, ctx: RuleContext, err: Emit, warn: Emit) -> None:
    """Context length against the model, NEFTune outside sft (rule 10)."""
    stage = spec.stage
    model_config = ctx.model_config
    max_pos = (model_config or {}).get("max_position_embeddings")
    if isinstance(max_pos, int) and spec.cutoff_len > max_pos and spec.rope_scaling is None:
        warn(
            "cutoff_len",
            *both("rules.cutoff_len_positions", cutoff_len=spec.cutoff_len, max_pos=max_pos),
        )
    if spec.neftune_noise_alpha is not None and stage != "sft":
        warn(
            "neftune_noise_alpha",
            *both("rules.neftune_stage", stage=stage),
        )


def _rule_export_quantization(spec: TaskSpec, ctx: RuleContext, err: Emit, warn: Emit) -> None:
    """GPTQ export needs calibration data (rule 11)."""
    if spec.export_quantization_bit is not None and not spec.export_quantization_dataset:
        err(
            "export_quantization_dataset",
            *both("rules.export_quantization_dataset"),
        )


def _rule_effective_batch(spec: TaskSpec, ctx: RuleContext, err: Emit, warn: Emit) -> None:
    """The effective batch against the recommended 8–64 (not the per-device batch)."""
    present = ctx.present
    if present & {"per_device_train_batch_size", "gradient_accumulation_steps", "gpu_count", "nnodes"}:
        low, high = EFFECTIVE_BATCH_RECOMMENDED
        eff = effective_batch(spec)
        if not low <= eff <= high:
            warn(
                "per_device_train_batch_size",
                *both("rules.effective_batch", eff=eff, low=low, high=high),
            )


# The cross-field rules of PARAMETERS.md §2.7, one function per family, run in this order.
CROSS_FIELD_RULES: tuple[Callable[[TaskSpec, RuleContext, Emit, Emit], None], ...] = (
    _rule_lora_only_options,
    _rule_pissa_restrictions,
    _rule_galore_and_badam,
    _rule_ppo_reward_model,
    _rule_preference_and_validation,
    _rule_hardware,
    _rule_context_and_neftune,
    _rule_export_quantization,
    _rule_effective_batch,
)


def _cross_field(
    spec: TaskSpec,
    present: set[str],
    *,
    model_config: Mapping[str, Any] | None,
    host_gpus: list[Any] | None,
    multi_node: bool = False,
) -> tuple[list[Problem], list[Problem]]:
    """Run every rule of `CROSS_FIELD_RULES`; return (errors, warnings)."""
    errors: list[Problem] = []
    warnings: list[Problem] = []

    def err(key: str | None, en: str, zh: str) -> None:
        errors.append(Problem(key, en, zh))

    def warn(key: str | None, en: str, zh: str) -> None:
        warnings.append(Problem(key, en, zh))

    ctx = RuleContext(frozenset(present), model_config, host_gpus, multi_node)
    for rule in CROSS_FIELD_RULES:
        rule(spec, ctx, err, warn)
    return errors, warnings


def _capability(gpu: Any) -> tuple[int, ...] | None:
    cap = _attr(gpu, "compute_capability")
    return tuple(cap) if cap else None


def _recommended_warnings(spec: TaskSpec, present: set[str]) -> list[Problem]:
    problems = []
    for key in sorted(present, key=_order):
        info = param_info(key)
        value = getattr(spec, key)
        if key == "learning_rate":
            low, high = recommended_learning_rate_range(spec.finetuning_type, spec.stage)
            if low <= value <= high:
                continue
            shown_range = f"{format_value(low)}–{format_value(high)} for {spec.finetuning_type} {spec.stage}"
            problems.append(
                Problem(
                    key,
                    *both("rules.learning_rate_range", key=key, value=_shown(value), shown_range=shown_range),
                )
            )
            continue
        if info.rec is None or info.in_recommended(value):
            continue
        problems.append(
            Problem(
                key, *both("rules.outside_recommended", key=key, value=_shown(value), rec=info.recommendation)
            )
        )
    return problems


def _order(key: str) -> int:
    return _KEY_ORDER[key]


_KEY_ORDER = {info.key: index for index, info in enumerate(all_params())}


def step_warnings(spec: TaskSpec, total: int) -> list[Problem]:
    """Warnings for step settings that reach the run's ``total`` optimizer steps (nothing when unknown)."""
    problems = []
    for key in ("save_steps", "warmup_steps", "eval_steps", "logging_steps"):
        value = getattr(spec, key, None)
        if total and value and value >= total:
            problems.append(
                Problem(
                    key,
                    *both("rules.step_setting_total", key=key, value=value, total=total),
                )
            )
    return problems


def _step_warnings(spec: TaskSpec, num_examples: int) -> list[Problem]:
    return step_warnings(spec, estimate_total_steps(num_examples, spec))


def _missing_dataset(task: TaskSpec | Mapping[str, Any]) -> Problem | None:
    """The error of a task without ``dataset`` that needs data: every kind but export (see job_kinds)."""
    if isinstance(task, TaskSpec):
        do_train, export_dir = task.do_train, task.export_dir
    else:
        do_train, export_dir = task.get("do_train", True), task.get("export_dir")
    if not do_train and export_dir:
        return None
    return Problem(
        "dataset",
        *both("rules.dataset_required"),
    )


# ---------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------


def check_task(
    data: Mapping[str, Any],
    *,
    partial: bool = False,
    model_config: dict | None = None,
    host_gpus: list | None = None,
    num_examples: int | None = None,
    multi_node: bool = False,
) -> ValidationReport:
    """Validate a mapping of task keys: bounds (errors), recommended ranges (warnings), §2.7 rules.

    ``partial`` validates a subset (a preset, one wizard step): missing required keys are not errors,
    and the returned spec is None. Otherwise an absent ``learning_rate`` takes
    `suggested_learning_rate` for the task's method and stage. ``model_config`` (a config.json dict)
    enables the context-length check; ``host_gpus`` (objects or dicts with ``compute_capability``)
    enables the precision and GPU-count checks; ``num_examples`` enables the step-count warnings.
    ``multi_node`` allows nnodes > 1 (the runner submits to Slurm, which spans several machines).
    """
    data = dict(data)
    errors: list[Problem] = []
    warnings: list[Problem] = []

    for key in list(data):
        if key == "extra":
            if not isinstance(data[key], Mapping):
                errors.append(Problem("extra", *both("rules.extra_mapping")))
                del data[key]
            continue
        if key not in KEYS:
            near = closest_key(key)
            hint = "rules.unknown_key_near" if near else "rules.unknown_key_remove"
            errors.append(Problem(key, *both("rules.unknown_key", key=key, hint=piece(hint, near=near))))
            del data[key]
    if data.get("optim") == "adamw_hf":
        warnings.append(
            Problem(
                "optim",
                *both("rules.adamw_hf"),
            )
        )
    present = {k for k in data if k in KEYS}

    candidate = dict(data)
    if partial:
        for key, placeholder in REQUIRED_PLACEHOLDERS.items():
            candidate.setdefault(key, placeholder)
    elif "learning_rate" not in candidate:
        ft = candidate.get("finetuning_type", "lora")
        stage = candidate.get("stage", "sft")
        if isinstance(ft, str) and isinstance(stage, str):
            candidate["learning_rate"] = suggested_learning_rate(ft, stage)

    spec, field_problems = _validate_fields(candidate)
    errors.extend(field_problems[k] for k in sorted(field_problems, key=lambda k: _KEY_ORDER.get(k, -1)))
    if spec is None:
        # Check the cross-field rules on the valid part, so the user sees as much as possible at once.
        rest = {k: v for k, v in candidate.items() if k not in field_problems}
        for key, placeholder in REQUIRED_PLACEHOLDERS.items():
            rest.setdefault(key, placeholder)
        try:
            probe = TaskSpec.model_validate(rest)
        except ValidationError:
            probe = None
    else:
        probe = spec

    if not partial and "dataset" not in field_problems and not data.get("dataset"):
        dataset_problem = _missing_dataset(probe if probe is not None else candidate)
        if dataset_problem is not None:
            errors.append(dataset_problem)

    if probe is not None:
        cross_errors, cross_warnings = _cross_field(
            probe, present, model_config=model_config, host_gpus=host_gpus, multi_node=multi_node
        )
        errors.extend(cross_errors)
        errors.extend(
            Problem(*problem)
            for problem in extra_problems(
                data.get("extra"), finetuning_type=probe.finetuning_type, stage=probe.stage
            )
        )
        warnings.extend(_recommended_warnings(probe, present - set(field_problems)))
        warnings.extend(cross_warnings)
        if num_examples is not None:
            warnings.extend(_step_warnings(probe, num_examples))

    if partial or errors:
        spec = None
    return ValidationReport(spec=spec, errors=errors, warnings=warnings)
