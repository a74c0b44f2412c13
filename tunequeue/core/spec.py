"""The task model: every setting of a fine-tuning task, grouped as the wizard shows them.

Hyperparameters are data. Each group is a pydantic model; each field carries its default, hard bounds
or allowed values (enforced by pydantic: violating them is an *error*) and a recommended range (leaving it
is only a *warning*). The wizard, validation, the ``params`` reference and preset checks are all generated
from this metadata through `param_info`. The texts about a key live in the catalog
(``tunequeue/locales/*.yaml``, see `tunequeue.core.i18n`): ``param.<key>.help`` (the one-line explanation),
``param.<key>.rec`` (the recommendation in words), ``param.<key>.bounds`` (bounds a validator checks) and
``param.<key>.choice.<value>`` (one allowed value); group titles are ``group.<id>``.

Key names are LLaMA-Factory's (PARAMETERS.md), so an LLaMA-Factory YAML maps onto `TaskSpec` directly.
`TaskSpec` is flat (one namespace of keys, as in LLaMA-Factory YAML); the group models only say which
wizard step or advanced block a key belongs to.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Optional, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tunequeue.core.i18n import catalog, lookup, text

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX_LEN = 63


def param(
    default: Any = ...,
    *,
    rec: tuple[float, float] | list[Any] | None = None,
    tq: bool = False,
    editable: bool = True,
    **constraints: Any,
) -> Any:
    """Declare one task field with its recommended range.

    ``rec`` is ``(low, high)`` for numbers (inclusive) or a list of recommended values; its words, the
    help and per-choice help come from the catalog (``param.<key>.*``). ``tq`` marks tunequeue-only keys,
    which are left out of LLaMA-Factory YAML. ``editable=False`` marks keys the wizard shows but never
    edits (``preset_ref``). Remaining keyword arguments are pydantic constraints (ge, gt, le, lt, pattern,
    min_length, max_length).
    """
    extra: dict[str, Any] = {
        "rec": list(rec) if isinstance(rec, tuple) else rec,
        "rec_is_range": isinstance(rec, tuple),
        "tq": tq,
        "editable": editable,
    }
    return Field(default, json_schema_extra=extra, **constraints)


class _Group(BaseModel):
    """Base of every group: unknown keys are refused, assignments are validated.

    Validators are built on first use: a task is validated as a whole `TaskSpec`, so the groups' own
    validators are mostly never needed, and importing this module stays cheap for the CLI and the TUI.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_enum_values=True, defer_build=True
    )


# ---------------------------------------------------------------------------------------------------
# Step 1 — basic info
# ---------------------------------------------------------------------------------------------------


class BasicInfo(_Group):
    """Step 1 — basic info (基本信息)."""

    task_name: str = param(..., pattern=NAME_PATTERN, min_length=1, max_length=NAME_MAX_LEN, tq=True)
    namespace: str = param("default", pattern=NAME_PATTERN, min_length=1, max_length=NAME_MAX_LEN, tq=True)
    model_name_or_path: str = param(..., min_length=1)
    template: Optional[str] = param(None)
    finetuning_type: Literal["lora", "oft", "freeze", "full"] = param("lora")
    stage: Literal["pt", "sft", "rm", "ppo", "dpo", "kto"] = param("sft")
    dataset: Optional[str] = param(None, min_length=1)
    dataset_dir: Optional[str] = param(None)


# ---------------------------------------------------------------------------------------------------
# Step 2 — task config
# ---------------------------------------------------------------------------------------------------


class TaskConfig(_Group):
    """Step 2 — task config (任务配置): where and on how many GPUs the task runs."""

    accelerator: Literal["nvidia"] = param("nvidia", tq=True)
    gpu_count: int = param(1, ge=1, le=64, tq=True)
    nnodes: int = param(1, ge=1, tq=True)
    allow_cpu: bool = param(True, tq=True)
    allow_share: bool = param(False, tq=True)


# ---------------------------------------------------------------------------------------------------
# Step 3 — hyperparameters
# ---------------------------------------------------------------------------------------------------


class Hyperparameters(_Group):
    """Step 3 — hyperparameters (超参数配置). A preset picker above this step prefills steps 3–5."""

    preset_ref: Optional[str] = param(None, tq=True, editable=False)
    trainer_type: Literal["standard"] = param("standard", tq=True)
    learning_rate: float = param(1e-4, rec=(1e-5, 1e-3), gt=0, le=1e-2)
    num_train_epochs: float = param(3.0, rec=(1.0, 10.0), gt=0)
    max_grad_norm: float = param(1.0, rec=(0.5, 1.0), ge=0)
    max_samples: Optional[int] = param(None, ge=1)
    compute_type: Literal["auto", "bf16", "fp16", "fp32", "pure_bf16"] = param("auto", tq=True)
    cutoff_len: int = param(2048, ge=4, le=131072)
    per_device_train_batch_size: int = param(2, ge=1)
    gradient_accumulation_steps: int = param(8, rec=(1, 8), ge=1)
    val_size: float | int = param(0.0)
    lr_scheduler_type: Literal[
        "linear", "cosine", "constant", "constant_with_warmup", "polynomial", "cosine_with_restarts"
    ] = param("cosine", rec=["cosine", "linear"])
    warmup_ratio: float = param(0.1, rec=(0.0, 0.2), ge=0, lt=1)
    weight_decay: float = param(0.0, rec=(0.0, 0.1), ge=0)

    @field_validator("val_size", mode="before")
    @classmethod
    def _check_val_size(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"val_size must be a fraction in [0, 1) or a whole count ≥ 1; got {value}")
        if not isinstance(value, (int, float)):
            return value  # pydantic reports the type error
        if isinstance(value, float) and value.is_integer() and value >= 1:
            value = int(value)
        if isinstance(value, int):
            if value == 0:
                return 0.0
            if value >= 1:
                return value
        elif 0 <= value < 1:
            return value
        raise ValueError(f"val_size must be a fraction in [0, 1) or a whole count ≥ 1; got {value}")


# ---------------------------------------------------------------------------------------------------
# Step 4 — LoRA settings and the advanced block (quantization, RoPE, booster)
# ---------------------------------------------------------------------------------------------------


class LoraSettings(_Group):
    """Step 4 — LoRA settings (LoRA参数配置) and the advanced block (高级配置) shown for every method."""

    lora_rank: int = param(8, rec=(4, 16), ge=1, le=1024)
    lora_alpha: int = param(16, rec=(8, 32), ge=1, le=2048)
    lora_dropout: float = param(0.1, rec=(0.0, 0.1), ge=0, lt=1)
    loraplus_lr_ratio: Optional[float] = param(None, rec=(2.0, 32.0), gt=1)
    quantization_bit: Optional[int] = param(None, ge=1, le=8)
    quantization_method: Literal["bnb", "hqq", "eetq"] = param("bnb")
    quantization_type: Literal["nf4", "fp4"] = param("nf4")
    double_quantization: bool = param(True)
    rope_scaling: Optional[Literal["linear", "dynamic", "yarn", "llama3"]] = param(None)
    booster: Literal["auto", "flashattn2", "unsloth", "liger_kernel"] = param("auto", tq=True)
    flash_attn: Literal["auto", "disabled", "sdpa", "fa2"] = param("auto")
    use_unsloth: bool = param(False)
    enable_liger_kernel: bool = param(False)


# ---------------------------------------------------------------------------------------------------
# Step 5 — other settings
# ---------------------------------------------------------------------------------------------------


class OtherSettings(_Group):
    """Step 5 — other settings (其他参数配置)."""

    logging_steps: int = param(10, rec=(1, 1000), ge=1)
    save_steps: int = param(500, ge=1)
    warmup_steps: int = param(0, ge=0)
    neftune_noise_alpha: Optional[float] = param(None, rec=(5.0, 15.0), gt=0)
    optim: Literal[
        "adamw_torch",
        "adamw_torch_fused",
        "adamw_8bit",
        "paged_adamw_32bit",
        "paged_adamw_8bit",
        "adafactor",
        "sgd",
        "adagrad",
    ] = param("adamw_torch")

    @field_validator("optim", mode="before")
    @classmethod
    def _normalise_optim(cls, value: Any) -> Any:
        # adamw_hf was Transformers' legacy AdamW (same algorithm) and no longer exists there.
        return "adamw_torch" if value == "adamw_hf" else value


# ---------------------------------------------------------------------------------------------------
# Advanced groups (seeds 002–004)
# ---------------------------------------------------------------------------------------------------


class FreezeSettings(_Group):
    """Freeze tuning (finetuning_type: freeze): which layers train."""

    freeze_trainable_layers: int = param(2)
    freeze_trainable_modules: str = param("all", min_length=1)
    freeze_extra_modules: Optional[str] = param(None)

    @field_validator("freeze_trainable_layers")
    @classmethod
    def _non_zero_layers(cls, value: int) -> int:
        if value == 0:
            raise ValueError(
                "freeze_trainable_layers must not be 0; use N > 0 for the last N layers "
                "or N < 0 for the first N"
            )
        return value


class LoraExtras(_Group):
    """LoRA extras: targets, rsLoRA, DoRA, PiSSA, LoRA+ for embeddings, adapters to load."""

    lora_target: str = param("all", min_length=1)
    additional_target: Optional[str] = param(None)
    loraplus_lr_embedding: float = param(1e-6, ge=0)
    use_rslora: bool = param(False)
    use_dora: bool = param(False)
    pissa_init: bool = param(False)
    pissa_iter: int = param(16, ge=-1)
    pissa_convert: bool = param(False)
    create_new_adapter: bool = param(False)
    adapter_name_or_path: Optional[str] = param(None)

    @field_validator("pissa_iter")
    @classmethod
    def _pissa_iter(cls, value: int) -> int:
        if value == 0:
            raise ValueError("pissa_iter must be -1 (full SVD) or ≥ 1; got 0")
        return value


class PreferenceSettings(_Group):
    """RLHF / preference training: rm, dpo (incl. ORPO/SimPO), kto, ppo."""

    pref_beta: float = param(0.1, rec=(0.01, 0.5), gt=0)
    pref_ftx: float = param(0.0, ge=0)
    pref_loss: Literal["sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"] = param("sigmoid")
    dpo_label_smoothing: float = param(0.0, ge=0, lt=0.5)
    simpo_gamma: float = param(0.5, ge=0)
    kto_chosen_weight: float = param(1.0, gt=0)
    kto_rejected_weight: float = param(1.0, gt=0)
    ref_model: Optional[str] = param(None)
    reward_model: Optional[str] = param(None)
    reward_model_type: Literal["lora", "full", "api"] = param("lora")
    ppo_epochs: int = param(4, ge=1)
    ppo_buffer_size: int = param(1, ge=1)
    ppo_target: float = param(6.0, gt=0)
    ppo_score_norm: bool = param(False)
    ppo_whiten_rewards: bool = param(False)


class GaloreSettings(_Group):
    """GaLore (finetuning_type: full): low-rank gradient projection."""

    use_galore: bool = param(False)
    galore_target: str = param("all", min_length=1)
    galore_rank: int = param(16, ge=1)
    galore_update_interval: int = param(200, ge=1)
    galore_scale: float = param(2.0, gt=0)
    galore_proj_type: Literal["std", "reverse_std", "right", "left", "full"] = param("std")
    galore_layerwise: bool = param(False)


class BadamSettings(_Group):
    """BAdam (finetuning_type: full): block-coordinate Adam."""

    use_badam: bool = param(False)
    badam_mode: Literal["layer", "ratio"] = param("layer")
    badam_start_block: Optional[int] = param(None, ge=0)
    badam_switch_mode: Literal["ascending", "descending", "random", "fixed"] = param("ascending")
    badam_switch_interval: int = param(50, ge=-1)
    badam_update_ratio: float = param(0.05, gt=0, le=1)
    badam_mask_mode: Literal["adjacent", "scatter"] = param("adjacent")
    badam_verbose: int = param(0, ge=0, le=2)

    @field_validator("badam_switch_interval")
    @classmethod
    def _switch_interval(cls, value: int) -> int:
        if value == 0:
            raise ValueError("badam_switch_interval must be -1 (never switch) or ≥ 1; got 0")
        return value


class DatasetSettings(_Group):
    """Dataset handling beyond step 1: evaluation data, preprocessing, packing, mixing."""

    eval_dataset: Optional[str] = param(None)
    overwrite_cache: bool = param(False)
    preprocessing_num_workers: Optional[int] = param(None, ge=1)
    packing: Optional[bool] = param(None)
    neat_packing: bool = param(False)
    train_on_prompt: bool = param(False)
    mask_history: bool = param(False)
    mix_strategy: Literal["concat", "interleave_under", "interleave_over", "interleave_once"] = param(
        "concat"
    )


REPORT_TO = (
    "none",
    "tensorboard",
    "wandb",
    "mlflow",
    "swanlab",
    "comet_ml",
    "clearml",
    "neptune",
    "dvclive",
    "trackio",
    "all",
)


class OutputSettings(_Group):
    """Output and logging: where results go, checkpoints kept, trackers, seed."""

    output_dir: Optional[str] = param(None)
    overwrite_output_dir: bool = param(False)
    save_total_limit: Optional[int] = param(2, ge=1)
    plot_loss: bool = param(True)
    report_to: Literal[REPORT_TO] = param(  # type: ignore[valid-type]
        "none"
    )
    seed: int = param(42, ge=0)
    disable_gradient_checkpointing: bool = param(False)
    ddp_timeout: int = param(180000000, ge=1)


class EvalPredictSettings(_Group):
    """Evaluate and predict: what runs besides training, and generation settings."""

    do_train: bool = param(True)
    do_eval: bool = param(False)
    do_predict: bool = param(False)
    predict_with_generate: bool = param(False)
    eval_strategy: Literal["no", "steps", "epoch"] = param("no")
    eval_steps: Optional[int] = param(None, ge=1)
    per_device_eval_batch_size: int = param(1, ge=1)
    max_new_tokens: int = param(1024, ge=1)
    do_sample: bool = param(True)
    temperature: float = param(0.95, ge=0)
    top_p: float = param(0.7, gt=0, le=1)


class ExportSettings(_Group):
    """Export: merge the adapter and write a standalone model."""

    export_dir: Optional[str] = param(None)
    export_size: int = param(5, ge=1)
    export_quantization_bit: Optional[Literal[2, 3, 4, 8]] = param(None)
    export_quantization_dataset: Optional[str] = param(None)
    export_quantization_nsamples: int = param(128, ge=1)
    export_quantization_maxlen: int = param(1024, ge=1)
    export_device: Literal["cpu", "auto"] = param("cpu")
    export_legacy_format: bool = param(False)
    export_hub_model_id: Optional[str] = param(None)


# ---------------------------------------------------------------------------------------------------
# Registry helpers used by the wizard, validation, presets and the params reference
# ---------------------------------------------------------------------------------------------------


@cache
def _explained_choices() -> dict[str, list[str]]:
    """Task key → the values the catalog explains (``param.<key>.choice.<value>``), in catalog order.

    Indexed once: the help pane asks for every shown row's choices, and scanning the whole catalog for
    each was a visible share of building a wizard step.
    """
    choices: dict[str, list[str]] = {}
    for key in catalog("en"):
        if key.startswith("param.") and ".choice." in key:
            param_key, _, value = key.removeprefix("param.").partition(".choice.")
            choices.setdefault(param_key, []).append(value)
    return choices


@dataclass(frozen=True)
class ParamInfo:
    """Everything the UI and validators need to know about one key."""

    key: str
    group: str
    annotation: Any
    kind: str  # "int", "float", "bool", "str", "choice", "number" (int or float)
    default: Any
    required: bool
    nullable: bool
    choices: tuple[Any, ...] = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    pattern: str | None = None
    rec: Any = None
    rec_is_range: bool = False
    tq: bool = False
    editable: bool = True

    @property
    def type_name(self) -> str:
        """Short type name for references: int, float, number, bool, str or choice, with '?' if nullable."""
        return self.kind + ("?" if self.nullable else "")

    def _text(self, name: str, lang: str) -> str | None:
        """The catalog text ``param.<key>.<name>`` in ``lang``, None when the key has none."""
        return lookup(f"param.{self.key}.{name}", lang)

    def choice_help(self, value: Any, lang: str = "en") -> str:
        """The explanation of one allowed value ('' when there is none)."""
        return self._text(f"choice.{value}", lang) or ""

    @property
    def choices_help(self) -> dict[str, tuple[str, str]]:
        """Each value that has an explanation → its (English, Chinese) explanation, in catalog order."""
        prefix = f"param.{self.key}.choice."
        return {
            value: (catalog("en")[prefix + value], catalog("zh")[prefix + value])
            for value in _explained_choices().get(self.key, ())
        }

    def help(self, lang: str = "en") -> str:
        """The one-line explanation in ``lang`` ("en" or "zh")."""
        return text(f"param.{self.key}.help", lang)

    @property
    def help_en(self) -> str:
        """The one-line explanation in English."""
        return self.help("en")

    @property
    def help_zh(self) -> str:
        """The one-line explanation in Chinese."""
        return self.help("zh")

    def recommendation(self, lang: str = "en") -> str:
        """The recommended range or values as a short human string ('' when there is none)."""
        words = self._text("rec", lang)
        if self.rec is None:
            return words or ""
        if self.rec_is_range:
            low, high = self.rec
            shown = f"{format_value(low)}–{format_value(high)}"
        else:
            shown = ", ".join(format_value(v) for v in self.rec)
        return f"{shown} ({words})" if words else shown

    def in_recommended(self, value: Any) -> bool:
        """True when ``value`` lies inside the recommended range (or there is none)."""
        if self.rec is None or value is None:
            return True
        if self.rec_is_range:
            try:
                return self.rec[0] <= float(value) <= self.rec[1]
            except (TypeError, ValueError):
                return True
        return value in self.rec

    def bounds_words(self, lang: str = "en") -> str | None:
        """Bounds a validator checks, in words (``param.<key>.bounds``); None for pydantic-checked bounds."""
        return self._text("bounds", lang)

    def bounds_text(self, lang: str = "en") -> str:
        """Hard bounds or allowed values as a short human string."""
        words = self.bounds_words(lang)
        if words:
            return words
        if self.choices:
            return " | ".join(format_value(c) for c in self.choices)
        parts = []
        if self.ge is not None:
            parts.append(f"≥ {format_value(self.ge)}")
        if self.gt is not None:
            parts.append(f"> {format_value(self.gt)}")
        if self.le is not None:
            parts.append(f"≤ {format_value(self.le)}")
        if self.lt is not None:
            parts.append(f"< {format_value(self.lt)}")
        return ", ".join(parts)


def format_value(value: Any) -> str:
    """Format a bound or default for people: floats without trailing zeros, None as null."""
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "null"
    return str(value)


# ---------------------------------------------------------------------------------------------------
# The flat task model
# ---------------------------------------------------------------------------------------------------

# (id, model) of every group in wizard order; titles are the catalog's ``group.<id>``.
GROUPS: list[tuple[str, type[BaseModel]]] = [
    ("basic", BasicInfo),
    ("task", TaskConfig),
    ("hyper", Hyperparameters),
    ("lora", LoraSettings),
    ("other", OtherSettings),
    ("freeze", FreezeSettings),
    ("lora_extras", LoraExtras),
    ("preference", PreferenceSettings),
    ("galore", GaloreSettings),
    ("badam", BadamSettings),
    ("dataset", DatasetSettings),
    ("output", OutputSettings),
    ("eval", EvalPredictSettings),
    ("export", ExportSettings),
]
WIZARD_GROUPS = ("basic", "task", "hyper", "lora", "other")


class TaskSpec(
    BasicInfo,
    TaskConfig,
    Hyperparameters,
    LoraSettings,
    OtherSettings,
    FreezeSettings,
    LoraExtras,
    PreferenceSettings,
    GaloreSettings,
    BadamSettings,
    DatasetSettings,
    OutputSettings,
    EvalPredictSettings,
    ExportSettings,
):
    """One fine-tuning task: every key of every group in one flat namespace (LLaMA-Factory names).

    ``extra`` holds keys that LLaMA-Factory or Transformers know but tunequeue does not use; they are
    kept so an imported YAML exports again unchanged.
    """

    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TaskSpec:
        """Build a task from a plain mapping of our keys (an ``extra`` mapping allowed).

        Unknown keys raise `UserError` naming the closest known key; bad values raise pydantic's
        ``ValidationError`` (use `tunequeue.core.rules.check_task` for readable problems).
        """
        unknown = [k for k in data if k not in KEYS and k != "extra"]
        if unknown:
            from tunequeue.core.errors import UserError

            raise UserError(unknown_key_message(unknown[0]))
        return cls.model_validate(dict(data))

    def to_yaml_dict(
        self,
        include_defaults: bool = False,
        lf_only: bool = False,
        compute_capability: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """Plain dict of the task, ordered by group, for YAML.

        Without ``include_defaults`` only required keys, keys set explicitly and keys that differ from
        their default are written. ``lf_only`` writes LLaMA-Factory YAML: tunequeue-only keys are
        dropped, ``compute_type`` becomes a ``bf16``/``fp16``/``pure_bf16`` flag (``auto`` resolves
        with ``compute_capability``, bf16 when it is unknown) and ``booster`` becomes ``flash_attn`` /
        ``use_unsloth`` / ``enable_liger_kernel``; ``extra`` keys are written at top level. Otherwise
        ``extra`` is written as a nested mapping.
        """
        values = self.model_dump(exclude={"extra"})
        out: dict[str, Any] = {}
        for info in all_params():
            key = info.key
            value = values[key]
            wanted = (
                include_defaults or info.required or key in self.model_fields_set or value != info.default
            )
            if lf_only and info.tq:
                continue
            if wanted:
                out[key] = value
        if lf_only:
            _lf_precision_and_booster(self, out, compute_capability)
            if out.get("output_dir") is None:
                out.pop("output_dir", None)
            out.update(self.extra)
        elif self.extra:
            out["extra"] = dict(self.extra)
        return out


def resolve_compute_type(
    compute_type: str, compute_capability: tuple[int, int] | None, *, cpu: bool = False
) -> str:
    """Resolve ``auto`` precision: fp32 on CPU, bf16 at compute capability ≥ 8.0 or unknown, else fp16."""
    if compute_type != "auto":
        return compute_type
    if cpu:
        return "fp32"
    if compute_capability is None or tuple(compute_capability) >= (8, 0):
        return "bf16"
    return "fp16"


def _lf_precision_and_booster(
    spec: TaskSpec, out: dict[str, Any], compute_capability: tuple[int, int] | None
) -> None:
    """Add LLaMA-Factory's precision flags and kernel keys for ``compute_type`` and ``booster``."""
    precision = resolve_compute_type(spec.compute_type, compute_capability)
    if precision in ("bf16", "fp16", "pure_bf16"):
        out[precision] = True
    if spec.booster == "flashattn2":
        out["flash_attn"] = "fa2"
    elif spec.booster == "unsloth":
        out["use_unsloth"] = True
    elif spec.booster == "liger_kernel":
        out["enable_liger_kernel"] = True


# ---------------------------------------------------------------------------------------------------
# Registry API
# ---------------------------------------------------------------------------------------------------

_GROUP_OF: dict[str, str] = {key: group_id for group_id, model in GROUPS for key in model.model_fields}
KEYS: frozenset[str] = frozenset(_GROUP_OF)


def group_of(key: str) -> str:
    """Id of the group (wizard step or advanced block) that holds ``key``."""
    try:
        return _GROUP_OF[key]
    except KeyError:
        from tunequeue.core.errors import UserError

        raise UserError(unknown_key_message(key)) from None


def group_title(group_id: str, lang: str = "en") -> str:
    """Title of a group in ``lang``."""
    if group_id not in dict(GROUPS):
        raise KeyError(group_id)
    return text(f"group.{group_id}", lang)


def closest_key(key: str) -> str | None:
    """The known key closest to ``key`` (difflib), or None when nothing is close."""
    import difflib

    matches = difflib.get_close_matches(key, sorted(KEYS), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_message(key: str) -> str:
    """One sentence about an unknown key, suggesting the closest known key."""
    near = closest_key(key)
    hint = f"; did you mean '{near}'?" if near else "; `tunequeue params` lists every key"
    return f"unknown key '{key}'{hint}"


def _describe_annotation(annotation: Any) -> tuple[str, bool, tuple[Any, ...]]:
    """(kind, nullable, choices) of a field annotation."""
    nullable = False
    args = get_args(annotation)
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        nullable = len(members) < len(args)
        if len(members) == 1:
            kind, _, choices = _describe_annotation(members[0])
            return kind, nullable, choices
        if set(members) == {float, int}:
            return "number", nullable, ()
        return "str", nullable, ()
    if origin is Literal:
        return "choice", nullable, tuple(args)
    kinds = {bool: "bool", int: "int", float: "float", str: "str"}
    return kinds.get(annotation, "str"), nullable, ()


@cache
def all_params() -> list[ParamInfo]:
    """Every task key's `ParamInfo`, in wizard/group order (cached; do not mutate)."""
    infos: list[ParamInfo] = []
    for group_id, model in GROUPS:
        for key, finfo in model.model_fields.items():
            extra: dict[str, Any] = (
                finfo.json_schema_extra if isinstance(finfo.json_schema_extra, dict) else {}
            )
            kind, nullable, choices = _describe_annotation(finfo.annotation)
            bounds: dict[str, Any] = {}
            for meta in finfo.metadata:
                for name in ("ge", "gt", "le", "lt", "pattern"):
                    if getattr(meta, name, None) is not None:
                        bounds[name] = getattr(meta, name)
            required = finfo.is_required()
            infos.append(
                ParamInfo(
                    key=key,
                    group=group_id,
                    annotation=finfo.annotation,
                    kind=kind,
                    default=None if required else finfo.default,
                    required=required,
                    nullable=nullable,
                    choices=choices,
                    rec=extra.get("rec"),
                    rec_is_range=bool(extra.get("rec_is_range")),
                    tq=bool(extra.get("tq")),
                    editable=extra.get("editable", True),
                    **bounds,
                )
            )
    return infos


@cache
def _info_by_key() -> dict[str, ParamInfo]:
    return {info.key: info for info in all_params()}


def param_info(key: str) -> ParamInfo:
    """The `ParamInfo` of ``key``; an unknown key raises `UserError` naming the closest key."""
    try:
        return _info_by_key()[key]
    except KeyError:
        from tunequeue.core.errors import UserError

        raise UserError(unknown_key_message(key)) from None


def params_of_group(group_id: str) -> list[ParamInfo]:
    """The `ParamInfo` of every key in one group, in declaration order."""
    return [info for info in all_params() if info.group == group_id]


def defaults() -> dict[str, Any]:
    """Default value of every key that has one."""
    return {info.key: info.default for info in all_params() if not info.required}
