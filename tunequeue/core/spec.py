"""The task model: every setting of a fine-tuning task, grouped as the wizard shows them.

Hyperparameters are data. Each group is a pydantic model; each field carries its default, hard bounds
or allowed values (enforced by pydantic: violating them is an *error*), a recommended range (leaving it
is only a *warning*) and a one-line explanation in English and Chinese. The wizard, validation, the
``params`` reference and preset checks are all generated from this metadata through `param_info`.

Key names are LLaMA-Factory's (PARAMETERS.md), so an LLaMA-Factory YAML maps onto `TaskSpec` directly.
`TaskSpec` is flat (one namespace of keys, as in LLaMA-Factory YAML); the group models only say which
wizard step or advanced block a key belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX_LEN = 63


def param(
    default: Any = ...,
    *,
    en: str,
    zh: str,
    rec: tuple[float, float] | list[Any] | None = None,
    rec_en: str | None = None,
    rec_zh: str | None = None,
    choices_help: dict[Any, tuple[str, str]] | None = None,
    tq: bool = False,
    **constraints: Any,
) -> Any:
    """Declare one task field with its help and recommended range.

    ``rec`` is ``(low, high)`` for numbers (inclusive) or a list of recommended values; ``rec_en`` /
    ``rec_zh`` give the recommendation in words where a range says too little. ``choices_help`` maps
    each allowed value to its (en, zh) explanation. ``tq`` marks tunequeue-only keys, which are left
    out of LLaMA-Factory YAML. Remaining keyword arguments are pydantic constraints (ge, gt, le, lt,
    pattern, min_length, max_length).
    """
    extra = {
        "help_en": en,
        "help_zh": zh,
        "rec": list(rec) if isinstance(rec, tuple) else rec,
        "rec_is_range": isinstance(rec, tuple),
        "rec_en": rec_en,
        "rec_zh": rec_zh,
        "choices_help": {str(k): list(v) for k, v in (choices_help or {}).items()},
        "tq": tq,
    }
    return Field(default, json_schema_extra=extra, **constraints)


class _Group(BaseModel):
    """Base of every group: unknown keys are refused, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=True)


# ---------------------------------------------------------------------------------------------------
# Step 1 — basic info
# ---------------------------------------------------------------------------------------------------

STAGE_HELP = {
    "sft": ("Supervised fine-tuning on prompt→response pairs.", "监督微调：用“指令→回答”数据训练。"),
    "pt": ("Continued pre-training on raw text.", "增量预训练：在无标注文本上训练。"),
    "rm": ("Reward modeling: scalar scorer from chosen/rejected pairs.", "奖励建模：用偏好对训练打分模型。"),
    "ppo": ("Proximal policy optimization against a reward model.", "近端策略优化：依据奖励模型做强化学习。"),
    "dpo": ("Direct preference optimization; ORPO/SimPO via pref_loss.", "直接偏好优化；ORPO/SimPO由pref_loss选择。"),
    "kto": ("Kahneman–Tversky optimization, unpaired good/bad labels.", "KTO：用非成对的好/坏标签对齐。"),
}
FINETUNING_HELP = {
    "lora": ("Low-rank adapters, base frozen; + quantization_bit = QLoRA.", "训练低秩适配器；加量化即QLoRA。"),
    "freeze": ("Train only some layers (last 2 by default).", "只训练部分层（默认最后2层）。"),
    "full": ("Update all weights.", "更新全部参数。"),
}


class BasicInfo(_Group):
    """Step 1 — basic info (基本信息)."""

    task_name: str = param(
        ...,
        en="Task ID; names the output dir. Lowercase letters, digits and '-', 1–63 characters.",
        zh="任务名称，兼作输出目录名。小写字母、数字和“-”，1–63个字符。",
        pattern=NAME_PATTERN,
        min_length=1,
        max_length=NAME_MAX_LEN,
        tq=True,
    )
    namespace: str = param(
        "default",
        en="Groups tasks and presets.",
        zh="命名空间，归组任务与参数组。",
        pattern=NAME_PATTERN,
        min_length=1,
        max_length=NAME_MAX_LEN,
        tq=True,
    )
    model_name_or_path: str = param(
        ...,
        en="Base model to fine-tune: a local model directory (absolute path) or tunequeue/tiny-llama.",
        zh="待微调的基础模型：本地模型目录（绝对路径）或 tunequeue/tiny-llama。",
        min_length=1,
    )
    template: Optional[str] = param(
        None,
        en="Chat format for samples; must match a chat model's own format. Empty = the tokenizer's chat template.",
        zh="对话模板，决定样本拼接格式；对话模型须与其原格式一致。留空则用分词器自带模板。",
        rec_en="Keep the base model's own template, also when re-tuning a tuned model.",
        rec_zh="使用基础模型自己的模板，续训已微调模型时也保持不变。",
    )
    finetuning_type: Literal["lora", "freeze", "full"] = param(
        "lora", en="Which weights train.", zh="微调方法。", choices_help=FINETUNING_HELP
    )
    stage: Literal["pt", "sft", "rm", "ppo", "dpo", "kto"] = param(
        "sft", en="Training objective.", zh="训练阶段。", choices_help=STAGE_HELP
    )
    dataset: str = param(
        ...,
        en="Training data: names in dataset_info.json, comma separated.",
        zh="训练数据集，逗号分隔（dataset_info.json中的名称）。",
        min_length=1,
        rec_en="Use data that fits the stage (pairs for rm/dpo, kto_tag for kto).",
        rec_zh="选择与训练阶段相符的数据（rm/dpo用偏好对，kto需kto_tag）。",
    )
    dataset_dir: Optional[str] = param(
        None,
        en="Folder holding dataset_info.json. Empty = the bundled demo datasets.",
        zh="数据集目录（含dataset_info.json）。留空则使用内置示例数据集。",
    )


# ---------------------------------------------------------------------------------------------------
# Registry helpers used by the wizard, validation, presets and the params reference
# ---------------------------------------------------------------------------------------------------


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
    rec_en: str | None = None
    rec_zh: str | None = None
    help_en: str = ""
    help_zh: str = ""
    choices_help: dict[str, list[str]] = field(default_factory=dict)
    tq: bool = False

    def help(self, lang: str = "en") -> str:
        """The one-line explanation in ``lang`` ("en" or "zh")."""
        return self.help_zh if lang == "zh" else self.help_en

    def recommendation(self, lang: str = "en") -> str:
        """The recommended range or values as a short human string ('' when there is none)."""
        words = self.rec_zh if lang == "zh" else self.rec_en
        if self.rec is None:
            return words or ""
        if self.rec_is_range:
            low, high = self.rec
            text = f"{_fmt(low)}–{_fmt(high)}"
        else:
            text = ", ".join(_fmt(v) for v in self.rec)
        return f"{text} ({words})" if words else text

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

    def bounds_text(self) -> str:
        """Hard bounds or allowed values as a short human string."""
        if self.choices:
            return " | ".join(_fmt(c) for c in self.choices)
        parts = []
        if self.ge is not None:
            parts.append(f"≥ {_fmt(self.ge)}")
        if self.gt is not None:
            parts.append(f"> {_fmt(self.gt)}")
        if self.le is not None:
            parts.append(f"≤ {_fmt(self.le)}")
        if self.lt is not None:
            parts.append(f"< {_fmt(self.lt)}")
        return ", ".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "null"
    return str(value)
