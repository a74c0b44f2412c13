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

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Optional, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    editable: bool = True,
    bounds_en: str | None = None,
    bounds_zh: str | None = None,
    **constraints: Any,
) -> Any:
    """Declare one task field with its help and recommended range.

    ``rec`` is ``(low, high)`` for numbers (inclusive) or a list of recommended values; ``rec_en`` /
    ``rec_zh`` give the recommendation in words where a range says too little. ``choices_help`` maps
    each allowed value to its (en, zh) explanation. ``tq`` marks tunequeue-only keys, which are left
    out of LLaMA-Factory YAML. ``editable=False`` marks keys the wizard shows but never edits
    (``preset_ref``). ``bounds_en`` / ``bounds_zh`` describe bounds that a validator checks rather than
    pydantic constraints (``val_size``). Remaining keyword arguments are pydantic constraints (ge, gt, le, lt,
    pattern, min_length, max_length).
    """
    extra: dict[str, Any] = {
        "help_en": en,
        "help_zh": zh,
        "rec": list(rec) if isinstance(rec, tuple) else rec,
        "rec_is_range": isinstance(rec, tuple),
        "rec_en": rec_en,
        "rec_zh": rec_zh,
        "choices_help": {str(k): list(v) for k, v in (choices_help or {}).items()},
        "tq": tq,
        "editable": editable,
        "bounds_en": bounds_en,
        "bounds_zh": bounds_zh,
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
    "dpo": (
        "Direct preference optimization; ORPO/SimPO via pref_loss.",
        "直接偏好优化；ORPO/SimPO由pref_loss选择。",
    ),
    "kto": ("Kahneman–Tversky optimization, unpaired good/bad labels.", "KTO：用非成对的好/坏标签对齐。"),
}
FINETUNING_HELP = {
    "lora": (
        "Low-rank adapters, base frozen; + quantization_bit = QLoRA.",
        "训练低秩适配器；加量化即QLoRA。",
    ),
    "oft": (
        "Orthogonal adapters (OFT), base frozen; oft_block_size / oft_rank / oft_target set them.",
        "训练正交适配器（OFT）；由oft_block_size、oft_rank、oft_target设置。",
    ),
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
        en="Chat format for samples; must match a chat model's own format; empty = tokenizer's template.",
        zh="对话模板，决定样本拼接格式；对话模型须与其原格式一致。留空则用分词器自带模板。",
        rec_en="Keep the base model's own template, also when re-tuning a tuned model.",
        rec_zh="使用基础模型自己的模板，续训已微调模型时也保持不变。",
    )
    finetuning_type: Literal["lora", "oft", "freeze", "full"] = param(
        "lora", en="Which weights train.", zh="微调方法。", choices_help=FINETUNING_HELP
    )
    stage: Literal["pt", "sft", "rm", "ppo", "dpo", "kto"] = param(
        "sft", en="Training objective.", zh="训练阶段。", choices_help=STAGE_HELP
    )
    dataset: Optional[str] = param(
        None,
        en="Data to train, evaluate or predict on: names in dataset_info.json, comma separated "
        "(not needed by an export-only task).",
        zh="训练、评估或预测所用数据集，逗号分隔（dataset_info.json中的名称；仅导出的任务无需填写）。",
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
# Step 2 — task config
# ---------------------------------------------------------------------------------------------------


class TaskConfig(_Group):
    """Step 2 — task config (任务配置): where and on how many GPUs the task runs."""

    accelerator: Literal["nvidia"] = param(
        "nvidia",
        en="NVIDIA CUDA GPUs only.",
        zh="仅支持NVIDIA GPU。",
        choices_help={"nvidia": ("NVIDIA GPUs through CUDA.", "通过CUDA使用NVIDIA GPU。")},
        tq=True,
    )
    gpu_count: int = param(
        1,
        en="GPUs per node; more than 1 runs distributed data parallel (torchrun).",
        zh="每台机器使用的GPU数；大于1时以torchrun做分布式数据并行。",
        ge=1,
        le=64,
        tq=True,
    )
    nnodes: int = param(
        1,
        en="Machines per task; more than 1 needs the Slurm runner backend (the local runner uses one).",
        zh="单任务使用的节点数；大于1时需使用Slurm调度后端（本地调度器只用一台机器）。",
        ge=1,
        tq=True,
    )
    allow_cpu: bool = param(
        True,
        en="Run on the CPU when the machine has no GPU (slow; for tiny models and tests).",
        zh="机器没有GPU时在CPU上运行（很慢，适合小模型和测试）。",
        tq=True,
    )
    allow_share: bool = param(
        False,
        en=(
            "Let this job join a GPU another small, lightly loaded job already uses, but only when no whole "
            "GPU is free and the VRAM estimates fit with headroom."
        ),
        zh="没有空闲整卡时，允许在显存估算（含余量）足够的前提下，加入另一个小而负载不高的任务所在的GPU。",
        tq=True,
    )


# ---------------------------------------------------------------------------------------------------
# Step 3 — hyperparameters
# ---------------------------------------------------------------------------------------------------

COMPUTE_TYPE_HELP = {
    "auto": (
        "Chosen at run time: bf16 on compute capability ≥ 8.0, fp16 on older GPUs, fp32 on CPU.",
        "运行时决定：算力≥8.0用bf16，较旧GPU用fp16，CPU用fp32。",
    ),
    "bf16": (
        "Mixed precision in bfloat16; needs Ampere or newer (compute capability ≥ 8.0).",
        "bf16混合精度；需Ampere或更新的GPU（算力≥8.0）。",
    ),
    "fp16": (
        "Mixed precision in float16 with loss scaling; for GPUs older than Ampere.",
        "fp16混合精度，带损失缩放；用于Ampere之前的GPU。",
    ),
    "fp32": ("Full precision: most memory, slowest.", "全精度：显存占用最大，最慢。"),
    "pure_bf16": (
        "All weights and compute in bf16, without AMP master weights.",
        "纯bf16：权重与计算都用bf16，不使用AMP主权重。",
    ),
}
SCHEDULER_HELP = {
    "linear": ("Warmup, then linear decay to 0.", "预热后线性衰减到0。"),
    "cosine": ("Warmup, then half-cosine decay to 0.", "预热后按半余弦衰减到0。"),
    "constant": ("Fixed learning rate, no warmup.", "恒定学习率，无预热。"),
    "constant_with_warmup": ("Warmup, then fixed learning rate.", "预热后保持恒定。"),
    "polynomial": ("Warmup, then polynomial decay to a floor.", "预热后按多项式衰减到下限。"),
    "cosine_with_restarts": ("Warmup, then cosine decay with hard restarts.", "预热后余弦衰减并周期性重启。"),
}


class Hyperparameters(_Group):
    """Step 3 — hyperparameters (超参数配置). A preset picker above this step prefills steps 3–5."""

    preset_ref: Optional[str] = param(
        None,
        en="Preset (namespace/name) the values were copied from; display only.",
        zh="参数取自的参数组（命名空间/名称），仅供显示。",
        tq=True,
        editable=False,
    )
    trainer_type: Literal["standard"] = param(
        "standard",
        en="Trainer implementation; the standard Hugging Face trainer.",
        zh="训练器实现；标准Hugging Face训练器。",
        choices_help={
            "standard": (
                "Hugging Face Trainer (TRL for preference stages).",
                "Hugging Face训练器（偏好阶段用TRL）。",
            )
        },
        tq=True,
    )
    learning_rate: float = param(
        1e-4,
        en="Peak optimizer step size; the scheduler warms up to it and decays from it.",
        zh="优化器峰值学习率；调度器先预热到该值再衰减。",
        rec=(1e-5, 1e-3),
        rec_en="start at 1e-4 for lora/freeze, 1e-5 for full, 5e-6 for dpo/kto",
        rec_zh="lora/freeze从1e-4起，full用1e-5，dpo/kto用5e-6",
        gt=0,
        le=1e-2,
    )
    num_train_epochs: float = param(
        3.0,
        en="Passes over the training data.",
        zh="遍历训练集的轮数。",
        rec=(1.0, 10.0),
        rec_en="1–3 is usually enough",
        rec_zh="通常1–3轮足够",
        gt=0,
    )
    max_grad_norm: float = param(
        1.0,
        en="Rescale all gradients when their global L2 norm exceeds this; 0 turns clipping off.",
        zh="梯度全局L2范数超过该值时整体缩放；0为关闭裁剪。",
        rec=(0.5, 1.0),
        ge=0,
    )
    max_samples: Optional[int] = param(
        None,
        en="Use at most this many examples per dataset (for quick trials); empty = all.",
        zh="每个数据集最多使用的样本数（用于快速试跑）；留空为全部。",
        ge=1,
    )
    compute_type: Literal["auto", "bf16", "fp16", "fp32", "pure_bf16"] = param(
        "auto",
        en="Training precision.",
        zh="训练计算精度。",
        choices_help=COMPUTE_TYPE_HELP,
        tq=True,
    )
    cutoff_len: int = param(
        2048,
        en="Max tokens per example (token length of each sequence); longer ones are cut.",
        zh="每个样本的最大token数（序列长度），超出部分截断。",
        rec_en="1024, 2048 or 4096, at most the model's context length",
        rec_zh="1024、2048或4096，不超过模型上下文长度",
        ge=4,
        le=131072,
    )
    per_device_train_batch_size: int = param(
        2,
        en="Examples per GPU per forward pass; a larger batch adds throughput and memory, not quality.",
        zh="每张GPU每次前向的样本数；更大批次提升吞吐、占用更多显存，但不保证效果。",
        rec_en="keep the effective batch (× accumulation × GPUs) at 8–64",
        rec_zh="有效批大小（×累积步数×GPU数）保持在8–64",
        ge=1,
    )
    gradient_accumulation_steps: int = param(
        8,
        en="Micro-batches summed before each optimizer step.",
        zh="每次参数更新前累积的批次数。",
        rec=(1, 8),
        ge=1,
    )
    val_size: float | int = param(
        0.0,
        en="Share of the training data held out for validation (0–1), or a number of examples.",
        zh="从训练数据中划出的验证集比例（0–1）或条数。",
        rec_en="0.1 or 0.2 when you want a validation loss",
        rec_zh="需要验证损失时用0.1或0.2",
        bounds_en="fraction in [0, 1) or whole count ≥ 1",
        bounds_zh="[0, 1)的比例或≥1的整数条数",
    )
    lr_scheduler_type: Literal[
        "linear", "cosine", "constant", "constant_with_warmup", "polynomial", "cosine_with_restarts"
    ] = param(
        "cosine",
        en="How the learning rate changes over training.",
        zh="学习率随训练变化的策略。",
        choices_help=SCHEDULER_HELP,
        rec=["cosine", "linear"],
    )
    warmup_ratio: float = param(
        0.1,
        en="Share of all optimizer steps spent ramping the learning rate up from 0.",
        zh="学习率从0线性升到峰值所占总步数的比例。",
        rec=(0.0, 0.2),
        ge=0,
        lt=1,
    )
    weight_decay: float = param(
        0.0,
        en="AdamW decoupled weight decay.",
        zh="AdamW解耦权重衰减。",
        rec=(0.0, 0.1),
        ge=0,
    )

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

QUANT_METHOD_HELP = {
    "bnb": ("bitsandbytes: NF4/FP4 4-bit or int8 (shipped).", "bitsandbytes：NF4/FP4 4位或int8（已内置）。"),
    "hqq": (
        "Half-Quadratic Quantization: no calibration data; needs the hqq package.",
        "半二次量化：无需校准数据；需安装hqq。",
    ),
    "eetq": (
        "EETQ (Easy and Efficient Quantization for Transformers): int8 weights; needs the eetq package.",
        "EETQ：int8权重量化；需安装eetq。",
    ),
}
ROPE_HELP = {
    "linear": ("Linear position interpolation.", "线性位置插值。"),
    "dynamic": ("Dynamic NTK scaling.", "动态NTK缩放。"),
    "yarn": ("YaRN scaling.", "YaRN缩放。"),
    "llama3": ("Llama-3.1 style scaling.", "Llama3.1方式缩放。"),
}
BOOSTER_HELP = {
    "auto": (
        "Let the model pick its attention kernel (SDPA where available).",
        "由模型自选注意力内核（优先SDPA）。",
    ),
    "flashattn2": (
        "FlashAttention-2: exact attention with less memory traffic; needs fp16/bf16.",
        "FlashAttention-2：精确注意力，减少显存读写；需fp16/bf16。",
    ),
    "unsloth": (
        "Unsloth kernels for LoRA training; needs the unsloth package.",
        "Unsloth加速内核；需安装unsloth。",
    ),
    "liger_kernel": (
        "Liger Triton kernels for common layers; needs liger-kernel.",
        "Liger Triton内核加速常见层；需安装liger-kernel。",
    ),
}
FLASH_ATTN_HELP = {
    "auto": ("The model's default attention.", "模型默认的注意力实现。"),
    "disabled": ("Plain eager attention.", "普通eager注意力。"),
    "sdpa": ("PyTorch scaled-dot-product attention.", "PyTorch SDPA注意力。"),
    "fa2": (
        "FlashAttention-2 (needs flash-attn, fp16/bf16).",
        "FlashAttention-2（需flash-attn及fp16/bf16）。",
    ),
}


class LoraSettings(_Group):
    """Step 4 — LoRA settings (LoRA参数配置) and the advanced block (高级配置) shown for every method."""

    lora_rank: int = param(
        8,
        en="Inner dimension r of the adapter: A is r×d_in, B is d_out×r. Higher r adds capacity.",
        zh="适配矩阵的内部维度r：A为r×d_in，B为d_out×r。r越大容量越大。",
        rec=(4, 16),
        ge=1,
        le=1024,
    )
    lora_alpha: int = param(
        16,
        en="Scales the adapter update by alpha/r (alpha/√r with rsLoRA); sizes and cost stay the same.",
        zh="把适配器更新缩放为alpha/r（rsLoRA为alpha/√r）；不改变矩阵大小与计算量。",
        rec=(8, 32),
        rec_en="commonly 2 × lora_rank",
        rec_zh="常取2×lora_rank",
        ge=1,
        le=2048,
    )
    lora_dropout: float = param(
        0.1,
        en="Dropout on the LoRA branch's input activations: B·A·dropout(x).",
        zh="LoRA分支输入激活的dropout率：B·A·dropout(x)。",
        rec=(0.0, 0.1),
        ge=0,
        lt=1,
    )
    loraplus_lr_ratio: Optional[float] = param(
        None,
        en="LoRA+: learning rate of B = ratio × learning rate of A (ratio > 1); empty = off.",
        zh="LoRA+：B的学习率为A的倍数（大于1）；留空为关闭。",
        rec=(2.0, 32.0),
        rec_en="16 is a common choice",
        rec_zh="常用16",
        gt=1,
    )
    quantization_bit: Optional[int] = param(
        None,
        en="Load the frozen base model in k bits to save memory (QLoRA); usually slower per step.",
        zh="以k位加载冻结的基础模型以节省显存（QLoRA）；每步通常更慢。",
        rec_en="4 (QLoRA) or 8; 8 bits is more precise",
        rec_zh="4（QLoRA）或8；8位精度更高",
        bounds_en="bnb: 4 or 8; hqq: 1–6 or 8; eetq: 8",
        bounds_zh="bnb：4或8；hqq：1–6或8；eetq：8",
        ge=1,
        le=8,
    )
    quantization_method: Literal["bnb", "hqq", "eetq"] = param(
        "bnb",
        en="Load-time quantization backend.",
        zh="加载时的量化后端。",
        choices_help=QUANT_METHOD_HELP,
    )
    quantization_type: Literal["nf4", "fp4"] = param(
        "nf4",
        en="bitsandbytes 4-bit data type.",
        zh="bitsandbytes 4位数据类型。",
        choices_help={
            "nf4": ("NormalFloat4, suited to normally distributed weights.", "NF4，适合正态分布权重。"),
            "fp4": ("Plain 4-bit float.", "普通4位浮点。"),
        },
    )
    double_quantization: bool = param(
        True,
        en="Also quantize the quantization constants (bitsandbytes 4-bit).",
        zh="对量化常数再做一次量化（bitsandbytes 4位）。",
    )
    rope_scaling: Optional[Literal["linear", "dynamic", "yarn", "llama3"]] = param(
        None,
        en="Stretch RoPE positions so the model can use contexts longer than it was trained on.",
        zh="拉伸RoPE位置，使模型能处理比训练时更长的上下文。",
        choices_help=ROPE_HELP,
    )
    booster: Literal["auto", "flashattn2", "unsloth", "liger_kernel"] = param(
        "auto",
        en="Kernel speed-up.",
        zh="训练加速方式。",
        choices_help=BOOSTER_HELP,
        tq=True,
    )
    flash_attn: Literal["auto", "disabled", "sdpa", "fa2"] = param(
        "auto",
        en="Attention implementation; booster flashattn2 sets fa2.",
        zh="注意力实现；booster选flashattn2时为fa2。",
        choices_help=FLASH_ATTN_HELP,
    )
    use_unsloth: bool = param(
        False,
        en="Use Unsloth's LoRA kernels (booster unsloth sets it).",
        zh="使用Unsloth的LoRA内核（booster选unsloth时开启）。",
    )
    enable_liger_kernel: bool = param(
        False,
        en="Use Liger kernels (booster liger_kernel sets it).",
        zh="使用Liger内核（booster选liger_kernel时开启）。",
    )


# ---------------------------------------------------------------------------------------------------
# Step 5 — other settings
# ---------------------------------------------------------------------------------------------------

OPTIM_HELP = {
    "adamw_torch": ("PyTorch AdamW.", "PyTorch AdamW。"),
    "adamw_torch_fused": ("PyTorch AdamW, fused kernel variant.", "PyTorch AdamW（融合内核版）。"),
    "adamw_8bit": ("bitsandbytes AdamW with 8-bit optimizer states.", "bitsandbytes AdamW，8位优化器状态。"),
    "paged_adamw_32bit": (
        "bitsandbytes AdamW, 32-bit states paged to CPU RAM under pressure.",
        "bitsandbytes AdamW，32位状态可分页到内存。",
    ),
    "paged_adamw_8bit": (
        "bitsandbytes AdamW, 8-bit states paged to CPU RAM under pressure.",
        "bitsandbytes AdamW，8位状态可分页到内存。",
    ),
    "adafactor": ("Factored second moments: small optimizer memory.", "二阶矩分解，优化器省显存。"),
    "sgd": ("Mini-batch SGD with the configured batch size.", "按所设批大小的小批量SGD。"),
    "adagrad": (
        "Per-parameter learning rate that only shrinks; suits sparse features.",
        "逐参数学习率只减不增；适合稀疏特征。",
    ),
}


class OtherSettings(_Group):
    """Step 5 — other settings (其他参数配置)."""

    logging_steps: int = param(
        10,
        en="Log loss and learning rate every N optimizer steps.",
        zh="每N个优化步记录一次损失和学习率。",
        rec=(1, 1000),
        ge=1,
    )
    save_steps: int = param(
        500,
        en="Save a checkpoint every N optimizer steps.",
        zh="每N个优化步保存一次检查点。",
        rec_en="below the run's total steps, or only the final model is saved",
        rec_zh="小于总步数，否则只保存最终模型",
        ge=1,
    )
    warmup_steps: int = param(
        0,
        en="Optimizer steps over which the LR ramps linearly from 0; > 0 overrides warmup_ratio.",
        zh="学习率从0线性升到峰值的优化步数；>0时覆盖warmup_ratio。",
        rec_en="0 (use warmup_ratio) or well below the run's total steps",
        rec_zh="0（使用warmup_ratio）或远小于总步数",
        ge=0,
    )
    neftune_noise_alpha: Optional[float] = param(
        None,
        en="NEFTune: add uniform noise scaled by α/√(L·d) to embeddings during sft; empty = off.",
        zh="NEFTune：sft时给嵌入加α/√(L·d)倍的均匀噪声；留空为关闭。",
        rec=(5.0, 15.0),
        rec_en="5 is a common start",
        rec_zh="常从5开始",
        gt=0,
    )
    optim: Literal[
        "adamw_torch",
        "adamw_torch_fused",
        "adamw_8bit",
        "paged_adamw_32bit",
        "paged_adamw_8bit",
        "adafactor",
        "sgd",
        "adagrad",
    ] = param("adamw_torch", en="Optimizer.", zh="优化器。", choices_help=OPTIM_HELP)

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

    freeze_trainable_layers: int = param(
        2,
        en="Train the last N decoder layers (N > 0) or the first |N| (N < 0).",
        zh="训练最后N个解码层（N>0）或最前|N|层（N<0）。",
        bounds_en="any whole number except 0",
        bounds_zh="除0以外的整数",
    )
    freeze_trainable_modules: str = param(
        "all",
        en="Sub-modules trained inside those layers: all, or a comma list (e.g. mlp,self_attn).",
        zh="这些层中参与训练的子模块：all或逗号列表（如mlp,self_attn）。",
        min_length=1,
    )
    freeze_extra_modules: Optional[str] = param(
        None,
        en="Extra trainable modules outside the decoder layers (comma list, e.g. embed_tokens).",
        zh="解码层之外额外可训练的模块（逗号列表，如embed_tokens）。",
    )

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

    lora_target: str = param(
        "all",
        en="Modules that get adapters: all (every linear layer) or a comma list (q_proj,v_proj…).",
        zh="注入LoRA的模块：all（全部线性层）或逗号列表（q_proj,v_proj…）。",
        min_length=1,
    )
    additional_target: Optional[str] = param(
        None,
        en="Modules trained fully and saved with the adapter (comma list, e.g. embed_tokens,lm_head).",
        zh="全量训练并随适配器保存的模块（逗号列表，如embed_tokens,lm_head）。",
    )
    loraplus_lr_embedding: float = param(
        1e-6,
        en="LoRA+ learning rate for embedding-layer adapters.",
        zh="LoRA+中嵌入层适配器的学习率。",
        ge=0,
    )
    use_rslora: bool = param(
        False, en="Rank-stabilized LoRA: scale the update by alpha/√r.", zh="秩稳定LoRA：更新缩放为alpha/√r。"
    )
    use_dora: bool = param(
        False,
        en="DoRA: split weights into magnitude × direction, LoRA on the direction (a bit more compute).",
        zh="DoRA：把权重分解为幅度×方向，LoRA作用于方向（计算量略增）。",
    )
    pissa_init: bool = param(
        False,
        en="PiSSA: initialize A and B from W's top-r singular values/vectors and freeze the residual.",
        zh="PiSSA：用W的前r个奇异值/向量初始化A和B，冻结残差。",
    )
    pissa_iter: int = param(
        16,
        en="Fast-SVD iterations for PiSSA; -1 = full SVD.",
        zh="PiSSA快速SVD迭代次数；-1为完整SVD。",
        bounds_en="-1 or ≥ 1",
        bounds_zh="-1或≥1",
        ge=-1,
    )
    pissa_convert: bool = param(
        False,
        en="Save the PiSSA adapter as a plain LoRA usable on the original base model.",
        zh="把PiSSA适配器转存为原模型可用的普通LoRA。",
    )
    create_new_adapter: bool = param(
        False,
        en="Start a new random adapter instead of continuing the loaded one.",
        zh="新建随机适配器，而不是继续训练已加载的适配器。",
    )
    adapter_name_or_path: Optional[str] = param(
        None,
        en="Adapter(s) to load first (comma list of local dirs).",
        zh="先加载的适配器（本地目录，逗号分隔）。",
    )

    @field_validator("pissa_iter")
    @classmethod
    def _pissa_iter(cls, value: int) -> int:
        if value == 0:
            raise ValueError("pissa_iter must be -1 (full SVD) or ≥ 1; got 0")
        return value


PREF_LOSS_HELP = {
    "sigmoid": ("DPO: −log σ(β·log-ratio margin vs the reference).", "DPO：对数比差的logistic损失。"),
    "hinge": ("Hinge (SLiC) loss on the margin.", "间隔上的hinge（SLiC）损失。"),
    "ipo": ("Squared IPO loss on the margin.", "间隔上的IPO平方损失。"),
    "kto_pair": ("KTO variant on paired data.", "成对数据版KTO。"),
    "orpo": (
        "ORPO (Odds Ratio Preference Optimization): SFT + β·odds-ratio term; no reference model.",
        "ORPO（几率比偏好优化）：SFT加β倍几率比项，无参考模型。",
    ),
    "simpo": (
        "SimPO (Simple Preference Optimization): length-normalized reward, margin γ; no reference.",
        "SimPO（简单偏好优化）：长度归一化奖励加间隔γ，无参考模型。",
    ),
}


class PreferenceSettings(_Group):
    """RLHF / preference training: rm, dpo (incl. ORPO/SimPO), kto, ppo."""

    pref_beta: float = param(
        0.1,
        en="β scales the implicit reward; higher keeps the policy nearer the reference.",
        zh="β缩放隐式奖励；越大策略越贴近参考模型。",
        rec=(0.01, 0.5),
        gt=0,
    )
    pref_ftx: float = param(
        0.0, en="Extra SFT loss weight on the chosen answers.", zh="对chosen回答附加的SFT损失权重。", ge=0
    )
    pref_loss: Literal["sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"] = param(
        "sigmoid", en="Loss of the dpo stage.", zh="dpo阶段的损失函数。", choices_help=PREF_LOSS_HELP
    )
    dpo_label_smoothing: float = param(
        0.0,
        en="cDPO: assumed rate of flipped preference labels (sigmoid loss only).",
        zh="cDPO：假定偏好标签被翻转的比例（仅sigmoid损失）。",
        ge=0,
        lt=0.5,
    )
    simpo_gamma: float = param(0.5, en="SimPO target reward margin γ.", zh="SimPO目标奖励间隔γ。", ge=0)
    kto_chosen_weight: float = param(
        1.0, en="KTO weight of desirable examples.", zh="KTO中好样本的权重。", gt=0
    )
    kto_rejected_weight: float = param(
        1.0, en="KTO weight of undesirable examples.", zh="KTO中坏样本的权重。", gt=0
    )
    ref_model: Optional[str] = param(
        None,
        en="Reference model (local dir); empty = a frozen copy of the starting model.",
        zh="参考模型（本地目录）；留空则用初始模型的冻结副本。",
    )
    reward_model: Optional[str] = param(
        None,
        en="Reward model for ppo (local dir of an rm-stage result).",
        zh="ppo使用的奖励模型（rm阶段结果的本地目录）。",
    )
    reward_model_type: Literal["lora", "full", "api"] = param(
        "lora",
        en="How the reward model is loaded.",
        zh="奖励模型的加载方式。",
        choices_help={
            "lora": (
                "An rm-stage LoRA adapter on the policy's base model.",
                "基于策略基座的rm阶段LoRA适配器。",
            ),
            "full": ("A separate full reward model.", "独立的完整奖励模型。"),
            "api": ("A reward served over HTTP.", "通过HTTP提供的奖励服务。"),
        },
    )
    ppo_epochs: int = param(4, en="PPO epochs per batch of rollouts.", zh="每批采样的PPO训练轮数。", ge=1)
    ppo_buffer_size: int = param(
        1, en="Mini-batches in the PPO experience buffer.", zh="PPO经验缓冲中的小批次数。", ge=1
    )
    ppo_target: float = param(6.0, en="Target KL for adaptive KL control.", zh="自适应KL控制的目标KL。", gt=0)
    ppo_score_norm: bool = param(False, en="Normalize reward scores.", zh="对奖励分数归一化。")
    ppo_whiten_rewards: bool = param(False, en="Whiten rewards before advantages.", zh="计算优势前白化奖励。")


class GaloreSettings(_Group):
    """GaLore (finetuning_type: full): low-rank gradient projection."""

    use_galore: bool = param(
        False,
        en="Project gradients to low rank to save optimizer memory.",
        zh="把梯度投影到低秩以节省优化器显存。",
    )
    galore_target: str = param(
        "all",
        en="Target linear modules (all or comma list).",
        zh="目标线性模块（all或逗号列表）。",
        min_length=1,
    )
    galore_rank: int = param(16, en="Projection rank.", zh="投影秩。", ge=1)
    galore_update_interval: int = param(
        200, en="Optimizer steps between projection SVDs.", zh="重算投影（SVD）的步数间隔。", ge=1
    )
    galore_scale: float = param(2.0, en="Scale of the projected update.", zh="投影更新的缩放系数。", gt=0)
    galore_proj_type: Literal["std", "reverse_std", "right", "left", "full"] = param(
        "std",
        en="Projection side.",
        zh="投影方式。",
        choices_help={
            "std": ("Project the smaller side.", "投影较小的一侧。"),
            "reverse_std": ("Project the larger side.", "投影较大的一侧。"),
            "right": ("Always project from the right.", "始终右投影。"),
            "left": ("Always project from the left.", "始终左投影。"),
            "full": ("Project both sides.", "两侧都投影。"),
        },
    )
    galore_layerwise: bool = param(
        False,
        en="Update layer by layer to save more memory (single GPU).",
        zh="逐层更新以更省显存（仅单卡）。",
    )


class BadamSettings(_Group):
    """BAdam (finetuning_type: full): block-coordinate Adam."""

    use_badam: bool = param(
        False,
        en="Block-coordinate Adam: update one block of layers at a time.",
        zh="块坐标Adam：每次只更新一块层。",
    )
    badam_mode: Literal["layer", "ratio"] = param(
        "layer",
        en="Blocks are layers or a share of the parameters.",
        zh="按层或按参数比例划分块。",
        choices_help={
            "layer": ("One block per decoder layer.", "每个解码层一块。"),
            "ratio": ("A random share of parameters per step.", "每步更新一定比例的参数。"),
        },
    )
    badam_start_block: Optional[int] = param(
        None,
        en="First block to train (layer mode); empty = chosen by the switch mode.",
        zh="起始块（层模式）。",
        ge=0,
    )
    badam_switch_mode: Literal["ascending", "descending", "random", "fixed"] = param(
        "ascending",
        en="Order in which blocks are trained.",
        zh="块的切换顺序。",
        choices_help={
            "ascending": ("First layer to last.", "从前到后。"),
            "descending": ("Last layer to first.", "从后到前。"),
            "random": ("Random order.", "随机顺序。"),
            "fixed": ("Always the start block.", "固定为起始块。"),
        },
    )
    badam_switch_interval: int = param(
        50,
        en="Optimizer steps per block; -1 = never switch.",
        zh="每块训练的步数；-1为不切换。",
        bounds_en="-1 or ≥ 1",
        bounds_zh="-1或≥1",
        ge=-1,
    )
    badam_update_ratio: float = param(
        0.05, en="Ratio mode: share of parameters updated.", zh="比例模式：更新参数的占比。", gt=0, le=1
    )
    badam_mask_mode: Literal["adjacent", "scatter"] = param(
        "adjacent",
        en="Ratio mode: layout of the update mask.",
        zh="比例模式：掩码分布方式。",
        choices_help={
            "adjacent": ("Contiguous parameters.", "相邻参数。"),
            "scatter": ("Scattered parameters.", "分散参数。"),
        },
    )
    badam_verbose: int = param(0, en="Log detail (0–2).", zh="日志详细程度（0–2）。", ge=0, le=2)

    @field_validator("badam_switch_interval")
    @classmethod
    def _switch_interval(cls, value: int) -> int:
        if value == 0:
            raise ValueError("badam_switch_interval must be -1 (never switch) or ≥ 1; got 0")
        return value


class DatasetSettings(_Group):
    """Dataset handling beyond step 1: evaluation data, preprocessing, packing, mixing."""

    eval_dataset: Optional[str] = param(
        None,
        en="Separate validation dataset(s) from dataset_info.json (comma list).",
        zh="独立验证集（dataset_info.json中的名称，逗号分隔）。",
    )
    overwrite_cache: bool = param(
        False, en="Redo preprocessing instead of using the cache.", zh="重新预处理数据。"
    )
    preprocessing_num_workers: Optional[int] = param(
        None, en="Processes used for tokenization; empty = one.", zh="分词预处理的进程数；留空为1。", ge=1
    )
    packing: Optional[bool] = param(
        None,
        en="Pack several samples into one sequence; empty = on for pt, off otherwise.",
        zh="把多个样本拼成一个序列；留空则pt开启、其他关闭。",
    )
    neat_packing: bool = param(
        False, en="Pack without attention across packed samples.", zh="拼接时样本之间不互相注意。"
    )
    train_on_prompt: bool = param(False, en="Compute the loss on the prompt too.", zh="提示部分也计算损失。")
    mask_history: bool = param(
        False, en="Compute the loss on the last turn only.", zh="只对最后一轮对话计算损失。"
    )
    mix_strategy: Literal["concat", "interleave_under", "interleave_over", "interleave_once"] = param(
        "concat",
        en="How several datasets are mixed.",
        zh="多个数据集的混合方式。",
        choices_help={
            "concat": ("One after another.", "依次拼接。"),
            "interleave_under": ("Interleave, stop at the shortest.", "交错，最短的用完即停。"),
            "interleave_over": ("Interleave, repeat until the longest ends.", "交错，重复直至最长的用完。"),
            "interleave_once": ("Interleave, each example once.", "交错，每条样本只用一次。"),
        },
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

    output_dir: Optional[str] = param(
        None,
        en="Folder for checkpoints, logs and weights; empty = the job's run dir.",
        zh="检查点、日志和权重的目录；留空则用任务的运行目录。",
    )
    overwrite_output_dir: bool = param(
        False,
        en="Start over in a non-empty output dir; off = resume from its last checkpoint.",
        zh="覆盖非空输出目录；关闭则从最后的检查点续训。",
    )
    save_total_limit: Optional[int] = param(
        2,
        en="Keep only the newest N checkpoints; empty = keep all.",
        zh="只保留最新N个检查点；留空为全部保留。",
        ge=1,
    )
    plot_loss: bool = param(True, en="Save a loss-curve PNG after training.", zh="训练后保存损失曲线图。")
    report_to: Literal[REPORT_TO] = param(  # type: ignore[valid-type]
        "none",
        en="Experiment tracker that also receives the metrics.",
        zh="同时接收指标的实验跟踪工具。",
    )
    seed: int = param(42, en="Random seed.", zh="随机种子。", ge=0)
    disable_gradient_checkpointing: bool = param(
        False,
        en="Keep activations instead of recomputing them: faster, more memory.",
        zh="保留激活而不重算：更快，但占用更多显存。",
    )
    ddp_timeout: int = param(
        180000000, en="Distributed timeout in seconds.", zh="分布式通信超时（秒）。", ge=1
    )


class EvalPredictSettings(_Group):
    """Evaluate and predict: what runs besides training, and generation settings."""

    do_train: bool = param(True, en="Train.", zh="训练。")
    do_eval: bool = param(
        False, en="Evaluate on val_size or eval_dataset.", zh="在val_size或eval_dataset上评估。"
    )
    do_predict: bool = param(False, en="Predict on the eval data.", zh="在评估数据上预测。")
    predict_with_generate: bool = param(
        False,
        en="Predict with generate(); needed by sft do_predict.",
        zh="以generate()方式预测；sft预测需开启。",
    )
    eval_strategy: Literal["no", "steps", "epoch"] = param(
        "no",
        en="When to evaluate during training.",
        zh="训练中的评估时机。",
        choices_help={
            "no": ("Never during training.", "训练中不评估。"),
            "steps": ("Every eval_steps steps.", "每eval_steps步。"),
            "epoch": ("After every epoch.", "每轮结束时。"),
        },
    )
    eval_steps: Optional[int] = param(
        None, en="Evaluate every N steps; empty = save_steps.", zh="每N步评估；留空同save_steps。", ge=1
    )
    per_device_eval_batch_size: int = param(1, en="Eval batch per GPU.", zh="每卡评估批大小。", ge=1)
    max_new_tokens: int = param(
        1024, en="Max tokens generated per answer.", zh="每个回答最多生成的token数。", ge=1
    )
    do_sample: bool = param(
        True,
        en="Sample answers using temperature and top_p (LLaMA-Factory's default); off = greedy decoding.",
        zh="生成回答时按temperature和top_p采样；关闭则贪心解码，每次结果相同。",
    )
    temperature: float = param(0.95, en="Sampling temperature.", zh="采样温度。", ge=0)
    top_p: float = param(0.7, en="Nucleus sampling probability mass.", zh="核采样概率阈值。", gt=0, le=1)


class ExportSettings(_Group):
    """Export: merge the adapter and write a standalone model."""

    export_dir: Optional[str] = param(
        None,
        en="Output folder of the exported model (required to export).",
        zh="导出模型的目录（导出时必填）。",
    )
    export_size: int = param(5, en="Max size of each shard in GB.", zh="每个分片的最大GB数。", ge=1)
    export_quantization_bit: Optional[Literal[2, 3, 4, 8]] = param(
        None,
        en="GPTQ bits for the exported model; empty = no quantization.",
        zh="导出模型的GPTQ量化位数；留空不量化。",
    )
    export_quantization_dataset: Optional[str] = param(
        None, en="GPTQ calibration data (a file path).", zh="GPTQ校准数据（文件路径）。"
    )
    export_quantization_nsamples: int = param(128, en="Calibration samples.", zh="校准样本数。", ge=1)
    export_quantization_maxlen: int = param(1024, en="Calibration sample length.", zh="校准样本长度。", ge=1)
    export_device: Literal["cpu", "auto"] = param(
        "cpu",
        en="Device that performs the merge; the weights come out the same.",
        zh="执行合并的设备；导出的权重相同。",
        choices_help={
            "cpu": ("Merge on the CPU.", "在CPU上合并。"),
            "auto": ("Merge on the GPU when there is one.", "有GPU时在GPU上合并。"),
        },
    )
    export_legacy_format: bool = param(
        False, en="Write .bin instead of .safetensors.", zh="用.bin代替.safetensors。"
    )
    export_hub_model_id: Optional[str] = param(
        None, en="Hugging Face repo to push to.", zh="推送到的Hugging Face仓库ID。"
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
    editable: bool = True
    bounds_en: str | None = None
    bounds_zh: str | None = None

    @property
    def type_name(self) -> str:
        """Short type name for references: int, float, number, bool, str or choice, with '?' if nullable."""
        return self.kind + ("?" if self.nullable else "")

    def choice_help(self, value: Any, lang: str = "en") -> str:
        """The explanation of one allowed value ('' when there is none)."""
        pair = self.choices_help.get(str(value))
        if not pair:
            return ""
        return pair[1] if lang == "zh" else pair[0]

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
            text = f"{format_value(low)}–{format_value(high)}"
        else:
            text = ", ".join(format_value(v) for v in self.rec)
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

    def bounds_text(self, lang: str = "en") -> str:
        """Hard bounds or allowed values as a short human string."""
        words = self.bounds_zh if lang == "zh" else self.bounds_en
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

GROUPS: list[tuple[str, type[BaseModel], str, str]] = [
    ("basic", BasicInfo, "Basic info", "基本信息"),
    ("task", TaskConfig, "Task config", "任务配置"),
    ("hyper", Hyperparameters, "Hyperparameters", "超参数配置"),
    ("lora", LoraSettings, "LoRA settings", "LoRA参数配置"),
    ("other", OtherSettings, "Other settings", "其他参数配置"),
    ("freeze", FreezeSettings, "Freeze", "部分参数微调"),
    ("lora_extras", LoraExtras, "LoRA extras", "LoRA扩展"),
    ("preference", PreferenceSettings, "RLHF / preference", "RLHF / 偏好训练"),
    ("galore", GaloreSettings, "GaLore", "GaLore"),
    ("badam", BadamSettings, "BAdam", "BAdam"),
    ("dataset", DatasetSettings, "Dataset", "数据集"),
    ("output", OutputSettings, "Output & logging", "输出与日志"),
    ("eval", EvalPredictSettings, "Evaluate & predict", "评估与预测"),
    ("export", ExportSettings, "Export", "导出"),
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

_GROUP_OF: dict[str, str] = {
    key: group_id for group_id, model, _en, _zh in GROUPS for key in model.model_fields
}
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
    for gid, _model, en, zh in GROUPS:
        if gid == group_id:
            return zh if lang == "zh" else en
    raise KeyError(group_id)


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
    for group_id, model, _en, _zh in GROUPS:
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
                    rec_en=extra.get("rec_en"),
                    rec_zh=extra.get("rec_zh"),
                    help_en=extra.get("help_en", ""),
                    help_zh=extra.get("help_zh", ""),
                    choices_help=dict(extra.get("choices_help") or {}),
                    tq=bool(extra.get("tq")),
                    editable=extra.get("editable", True),
                    bounds_en=extra.get("bounds_en"),
                    bounds_zh=extra.get("bounds_zh"),
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
