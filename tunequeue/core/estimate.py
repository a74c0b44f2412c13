"""Peak GPU memory estimate for one training task, from the model's config.json and the task (no torch).

The estimate is per GPU (DDP replicates the model on every GPU) and is the sum of five parts:

``weights``
    Every parameter of the base model in its storage dtype: 2 bytes (bf16/fp16) or 4 bytes (fp32 compute).
    With ``quantization_bit`` the decoder's linear weights take ``bits/8`` bytes plus the quantization
    constants (bitsandbytes 4-bit: one fp32 absmax per 64 weights, or with double quantization an 8-bit
    absmax plus one fp32 per 256 blocks; 8-bit: one fp32 scale per row; HQQ: fp16 scale and zero per 64).
    Embeddings, norms and ``lm_head`` stay in the compute dtype, as transformers leaves them unquantized.
    Parameters that train under mixed precision are stored in fp32 (LLaMA-Factory upcasts trainable
    parameters unless ``pure_bf16``), so they are counted in ``trainable`` instead.

``trainable``
    Trainable parameters + their gradients + optimizer states + (full/freeze under AMP) the bf16 copy
    autocast keeps of each weight during the forward pass. Bytes per trainable parameter:
    AMP (bf16/fp16): 4 weight + 4 grad + optimizer + 2 autocast copy → 18 with AdamW;
    ``pure_bf16``: 2 + 2 + optimizer in bf16 (AdamW 4) → 8; fp32: 4 + 4 + optimizer.
    Optimizer state bytes per parameter (fp32): AdamW (torch, fused, paged 32-bit) 8, 8-bit AdamW 2,
    Adagrad 4, SGD 0 (the Trainer uses no momentum), Adafactor (rows + cols) × 4 per matrix.
    These reproduce LLaMA-Factory's published table: full AMP 18x GB, full pure_bf16 8x GB, LoRA 2x GB.
    Trainable parameters: LoRA: rank × (d_in + d_out) over the targeted linear modules of every decoder
    layer (``all`` = q/k/v/o and gate/up/down, the attention and MLP linears); freeze: the last
    ``freeze_trainable_layers`` decoder layers (first N when negative); full: everything.
    More than one GPU adds one more gradient-sized buffer (DDP's gradient buckets).

``activations``
    Saved tensors of the forward pass with SDPA/flash attention (no s × s score matrix), in the compute
    dtype. Per token and decoder layer: 21·H bytes (norm inputs in fp32, q/k/v/attention output, the
    attention and MLP inputs) + 8·I bytes (gate, up, act(gate), gate×up) at 2-byte precision, doubled for
    fp32. Without gradient checkpointing every layer is stored; with it only each layer's input
    (2·H bytes per token) is kept plus one layer's full set during the backward recompute.
    Tokens = per-device batch × cutoff_len (batches are padded to the longest sample, so plan for the cap).
    Preference stages run chosen and rejected (dpo, rm) or the KL batch (kto) together: 2× the batch.

``logits``
    batch × cutoff_len × vocab × 4 bytes for the fp32 logits, ×2 for the loss (log-softmax output and its
    gradient). Reward models only output one score per sequence, so they have none. This part dominates
    for small models with large vocabularies (128k for Llama 3, 152k for Qwen 2.5).

``cuda_context``
    0.75 GiB for the CUDA context, cuBLAS workspace and allocator slack (measured 0.5–1 GiB on H100).

Extra for stages with a second model: dpo/kto with ``full`` keep a frozen reference copy (weights in
compute dtype); with LoRA the reference is the base with adapters disabled (free); orpo/simpo need none.
ppo adds a value head, a reference copy for ``full`` and a reward model (weights) unless it is a LoRA
adapter on the same base.

Calibration: Llama-3.2-1B shape, LoRA r8 all linear, batch 8 × 1024, bf16, measured on an H100
(``max_memory_allocated``): 12.4 GiB with gradient checkpointing, 24.4 GiB without; this formula gives
11.5 and 23.4 GiB before the CUDA context. Known blind spots: DeepSpeed/FSDP sharding, packing, vision
towers, MoE routing buffers, fused kernels (liger's fused cross-entropy removes most of ``logits``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError

if TYPE_CHECKING:
    from typing import TypeAlias

    from tunequeue.core.spec import TaskSpec

    # A task as a TaskSpec or a mapping of its keys (missing keys take the task defaults).
    TaskValues: TypeAlias = TaskSpec | Mapping[str, Any]

GIB = 1024**3
CUDA_CONTEXT_GIB = 0.75
TINY_MODEL_ALIAS = "tunequeue/tiny-llama"

ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_MODULES = ("gate_proj", "up_proj", "down_proj")
# Module names other architectures use for the same linears (LoRA targets given by the user).
MODULE_ALIASES = {
    "query_key_value": ("q_proj", "k_proj", "v_proj"),
    "qkv_proj": ("q_proj", "k_proj", "v_proj"),
    "c_attn": ("q_proj", "k_proj", "v_proj"),
    "dense": ("o_proj",),
    "c_proj": ("o_proj",),
    "w1": ("gate_proj",),
    "w3": ("up_proj",),
    "w2": ("down_proj",),
    "gate_up_proj": ("gate_proj", "up_proj"),
    "dense_h_to_4h": ("up_proj",),
    "dense_4h_to_h": ("down_proj",),
}

OPTIMIZER_BYTES = {
    "adamw_torch": 8.0,
    "adamw_torch_fused": 8.0,
    "adamw_hf": 8.0,
    "paged_adamw_32bit": 8.0,
    "adamw_8bit": 2.0,
    "adamw_bnb_8bit": 2.0,
    "paged_adamw_8bit": 2.0,
    "adagrad": 4.0,
    "sgd": 0.0,
}


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a decoder-only transformer that memory depends on."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    experts: int = 1

    def linears(self) -> dict[str, tuple[int, int]]:
        """(d_in, d_out) of each linear module in one decoder layer (per expert for the MLP)."""
        q_out = self.heads * self.head_dim
        kv_out = self.kv_heads * self.head_dim
        return {
            "q_proj": (self.hidden, q_out),
            "k_proj": (self.hidden, kv_out),
            "v_proj": (self.hidden, kv_out),
            "o_proj": (q_out, self.hidden),
            "gate_proj": (self.hidden, self.intermediate),
            "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }

    def module_count(self, name: str) -> int:
        """How many copies of a linear module one layer has (MoE experts repeat the MLP)."""
        return self.experts if name in MLP_MODULES else 1

    def layer_linear_params(self) -> int:
        """Parameters in one decoder layer's linear modules."""
        return sum(d_in * d_out * self.module_count(n) for n, (d_in, d_out) in self.linears().items())

    def layer_params(self) -> int:
        """Parameters in one decoder layer (linears, two norms, MoE router)."""
        router = self.hidden * self.experts if self.experts > 1 else 0
        return self.layer_linear_params() + 2 * self.hidden + router

    def embedding_params(self) -> int:
        """Input embeddings plus the output head (once when tied) plus the final norm."""
        heads = 1 if self.tied_embeddings else 2
        return heads * self.vocab * self.hidden + self.hidden

    def total_params(self) -> int:
        """All parameters of the model."""
        return self.layers * self.layer_params() + self.embedding_params()


@dataclass
class Estimate:
    """Per-GPU peak memory estimate with its parts (GiB) and the assumptions it rests on."""

    total_gib: float
    breakdown: dict[str, float]
    total_params: int
    trainable_params: int
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable lines: total, then each part of the breakdown."""
        share = 100.0 * self.trainable_params / max(self.total_params, 1)
        out = [
            f"estimated peak VRAM per GPU: {self.total_gib:.1f} GiB",
            f"  parameters: {self.total_params / 1e9:.2f} B total, "
            f"{self.trainable_params / 1e6:.2f} M trainable ({share:.2f} %)",
        ]
        out += [f"  {name:<13} {value:7.2f} GiB" for name, value in self.breakdown.items()]
        out += [f"  note: {note}" for note in self.notes]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "total_gib": round(self.total_gib, 3),
            "breakdown": {k: round(v, 3) for k, v in self.breakdown.items()},
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "notes": list(self.notes),
        }


def read_model_config(path: str | Path) -> dict:
    """Read a model's config.json from a model directory, the file itself, or ``tunequeue/tiny-llama``."""
    from tunequeue.core.paths import DATA_DIR

    text = str(path)
    if text == TINY_MODEL_ALIAS:
        candidate = DATA_DIR / "tiny-llama" / "config.json"
    else:
        candidate = Path(text).expanduser()
        if candidate.is_dir():
            candidate = candidate / "config.json"
    if not candidate.is_file():
        raise UserError(
            f"no config.json found at {candidate}; give a local model directory that contains one."
        )
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {candidate}: {err}; fix or replace the model's config.json.") from None
    if not isinstance(data, dict):
        raise UserError(f"{candidate} is not a JSON object; fix or replace the model's config.json.")
    return data


def model_shape(config: Mapping[str, Any]) -> ModelShape:
    """Extract the dimensions from a transformers config.json (text_config used for multimodal models)."""
    text_config = config.get("text_config")
    cfg: Mapping[str, Any] = text_config if isinstance(text_config, Mapping) else config
    try:
        hidden = int(_first(cfg, "hidden_size", "n_embd", "d_model"))
        layers = int(_first(cfg, "num_hidden_layers", "n_layer", "num_layers"))
        heads = int(_first(cfg, "num_attention_heads", "n_head"))
        vocab = int(_first(cfg, "vocab_size", default=config.get("vocab_size")))
    except (TypeError, ValueError):
        raise UserError(
            "the model's config.json lacks hidden_size, num_hidden_layers, num_attention_heads or "
            "vocab_size; give the config of a decoder-only transformer."
        ) from None
    kv_heads = int(_first(cfg, "num_key_value_heads", default=heads) or heads)
    head_dim = int(_first(cfg, "head_dim", default=hidden // heads) or hidden // heads)
    intermediate = int(_first(cfg, "moe_intermediate_size", "intermediate_size", "n_inner", "ffn_dim",
                              default=4 * hidden) or 4 * hidden)
    experts = int(_first(cfg, "num_local_experts", "num_experts", "n_routed_experts", default=1) or 1)
    tied = bool(_first(cfg, "tie_word_embeddings", default=config.get("tie_word_embeddings", False)))
    return ModelShape(hidden, intermediate, layers, heads, kv_heads, head_dim, vocab, tied, experts)


def _first(cfg: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return default


def _get(spec: TaskValues, key: str, default: Any = None) -> Any:
    """Read ``key`` from a TaskSpec, any object with attributes, or a mapping."""
    if isinstance(spec, Mapping):
        value = spec.get(key, default)
    else:
        value = getattr(spec, key, default)
    return default if value is None else value


def lora_target_modules(target: Any) -> list[str]:
    """Normalise ``lora_target`` ("all", "q_proj,v_proj", a list) to our canonical linear module names."""
    if target is None or target == "all" or target == ["all"]:
        return list(ATTENTION_MODULES + MLP_MODULES)
    names = [t.strip() for t in target.split(",")] if isinstance(target, str) else [str(t) for t in target]
    modules: list[str] = []
    for name in names:
        for canonical in MODULE_ALIASES.get(name, (name,)):
            if canonical in ATTENTION_MODULES + MLP_MODULES and canonical not in modules:
                modules.append(canonical)
    return modules


def _weight_bytes_per_param(bits: int, method: str, double_quant: bool) -> float:
    """Bytes per quantized weight including its quantization constants."""
    if method == "bnb" and bits == 4:
        constants = (1 / 64 + 4 / (64 * 256)) if double_quant else 4 / 64
        return 0.5 + constants
    if method == "bnb" and bits == 8:
        return 1.0 + 4 / 4096  # one fp32 scale per row of a ~4k-wide matrix
    if method == "hqq":
        return bits / 8 + 4 / 64  # fp16 scale + zero per group of 64
    return bits / 8 + 4 / 4096  # eetq int8: per-channel scale


def _compute_dtype(spec: TaskValues) -> tuple[str, int]:
    """(compute type, bytes per activation/weight element) — auto means bf16 on a GPU."""
    compute = str(_get(spec, "compute_type", "auto"))
    if compute == "auto":
        compute = "bf16"
    return compute, (4 if compute == "fp32" else 2)


def _trainable_layers(spec: TaskValues, shape: ModelShape) -> int:
    count = int(_get(spec, "freeze_trainable_layers", 2))
    return min(abs(count), shape.layers)


def estimate_vram(spec: TaskValues, model_config: Mapping[str, Any] | None) -> Estimate:
    """Estimate the per-GPU peak memory of training ``spec`` on the model described by ``model_config``.

    ``spec`` is a TaskSpec (or a mapping with its keys; missing keys take the task defaults). See the
    module docstring for the formula. Raises UserError when no model config is given.
    """
    if not model_config:
        raise UserError("a VRAM estimate needs the model's config.json; give a local model directory.")
    shape = model_shape(model_config)
    compute, act_bytes = _compute_dtype(spec)
    pure_bf16 = compute == "pure_bf16"
    stage = str(_get(spec, "stage", "sft"))
    method = str(_get(spec, "finetuning_type", "lora"))
    bits = _get(spec, "quantization_bit", None)
    quant_method = str(_get(spec, "quantization_method", "bnb"))
    if quant_method == "bitsandbytes":
        quant_method = "bnb"
    double_quant = bool(_get(spec, "double_quantization", True))
    optim = str(_get(spec, "optim", "adamw_torch"))
    batch = int(_get(spec, "per_device_train_batch_size", 2))
    cutoff = int(_get(spec, "cutoff_len", 2048))
    checkpointing = not bool(_get(spec, "disable_gradient_checkpointing", False))
    gpu_count = int(_get(spec, "gpu_count", 1))
    pref_loss = str(_get(spec, "pref_loss", "sigmoid"))
    notes: list[str] = []

    total_params = shape.total_params()
    layer_linear = shape.layer_linear_params()
    embed_params = shape.embedding_params()
    non_linear = total_params - shape.layers * layer_linear - embed_params

    # --- trainable parameters -------------------------------------------------------------------
    if method in ("lora", "oft"):
        linears = shape.linears()
        targets = lora_target_modules(_get(spec, "lora_target", "all"))
        rank = int(_get(spec, "lora_rank", 8))
        if method == "oft":
            # An OFT block of size b holds b(b-1)/2 values per b inputs: about a LoRA of rank (b-1)/4.
            extra = _get(spec, "extra", None) or {}
            targets = lora_target_modules(extra.get("oft_target") or "all")
            rank = max(1, (int(extra.get("oft_block_size") or 32) - 1) // 4)
        per_layer = sum(rank * (linears[m][0] + linears[m][1]) * shape.module_count(m) for m in targets)
        trainable = per_layer * shape.layers
        trainable_matrices = [(rank, linears[m][0] + linears[m][1]) for m in targets] * shape.layers
        frozen_in_compute = embed_params + non_linear
        frozen_linear = shape.layers * layer_linear
    elif method == "freeze":
        n = _trainable_layers(spec, shape)
        trainable = n * shape.layer_params()
        trainable_matrices = [(d_in, d_out) for d_in, d_out in shape.linears().values()] * n
        frozen_layers = (shape.layers - n) * layer_linear
        frozen_in_compute = embed_params + non_linear + frozen_layers - n * 2 * shape.hidden
        frozen_linear = 0
        bits = None
    else:
        trainable = total_params
        trainable_matrices = [(d_in, d_out) for d_in, d_out in shape.linears().values()] * shape.layers
        trainable_matrices.append((shape.vocab, shape.hidden))
        frozen_in_compute = 0
        frozen_linear = 0
        bits = None

    # --- weights ---------------------------------------------------------------------------------
    weight_bytes = 4 if compute == "fp32" else 2
    if bits:
        quantized = frozen_linear * _weight_bytes_per_param(int(bits), quant_method, double_quant)
        weights = frozen_in_compute * weight_bytes + quantized
        notes.append(f"{bits}-bit {quant_method} base weights; embeddings and lm_head stay 16-bit")
    else:
        weights = (frozen_in_compute + frozen_linear) * weight_bytes

    # --- trainable: params + grads + optimizer (+ autocast copy) -----------------------------------
    if optim == "adafactor":
        opt_state = sum(4 * (a + b) for a, b in trainable_matrices)
        opt_per_param = opt_state / max(trainable, 1)
    else:
        opt_per_param = OPTIMIZER_BYTES.get(optim, 8.0)
    if pure_bf16:
        per_param = 2 + 2 + opt_per_param / 2
    elif compute == "fp32":
        per_param = 4 + 4 + opt_per_param
    else:
        autocast_copy = 0 if method == "lora" else 2
        per_param = 4 + 4 + opt_per_param + autocast_copy
    grad_bytes = 2 if pure_bf16 else 4
    trainable_bytes = trainable * per_param
    if gpu_count > 1:
        trainable_bytes += trainable * grad_bytes
        notes.append("DDP keeps one more gradient-sized buffer per GPU")

    # --- activations and logits --------------------------------------------------------------------
    sequences = batch * (2 if stage in ("dpo", "kto", "rm") else 1)
    tokens = sequences * cutoff
    scale = act_bytes / 2
    per_layer_act = tokens * (21 * shape.hidden + 8 * shape.intermediate) * scale
    if shape.experts > 1:
        per_layer_act += tokens * 8 * shape.intermediate * scale  # routed tokens hit a few experts each
    if checkpointing:
        activations = shape.layers * tokens * 2 * shape.hidden * scale + per_layer_act
    else:
        activations = shape.layers * per_layer_act
        notes.append("gradient checkpointing off: every layer's activations are kept")
    if bits:
        biggest = max(d_in * d_out for d_in, d_out in shape.linears().values())
        activations += biggest * 2  # one dequantized weight at a time
    logits = 0.0 if stage == "rm" else tokens * shape.vocab * 4 * 2

    # --- second models ----------------------------------------------------------------------------
    extra_models = 0.0
    if stage in ("dpo", "kto") and method != "lora" and pref_loss not in ("orpo", "simpo"):
        extra_models += total_params * 2
        notes.append("frozen reference model copy (16-bit)")
    if stage == "ppo":
        extra_models += shape.hidden * 4 * 2
        if method != "lora":
            extra_models += total_params * 2
            notes.append("frozen reference model copy (16-bit)")
        if str(_get(spec, "reward_model_type", "lora")) != "lora":
            extra_models += total_params * 2
            notes.append("separate reward model (16-bit, assumed the policy's size)")
        logits *= 2  # generation plus the training forward
    if _get(spec, "booster", "auto") == "liger_kernel" or _get(spec, "enable_liger_kernel", False):
        logits *= 0.1
        notes.append("liger fused cross-entropy: logits are never materialised in full")

    breakdown = {
        "weights": weights / GIB,
        "trainable": trainable_bytes / GIB,
        "activations": activations / GIB,
        "logits": logits / GIB,
    }
    if extra_models:
        breakdown["other_models"] = extra_models / GIB
    breakdown["cuda_context"] = CUDA_CONTEXT_GIB
    return Estimate(
        total_gib=sum(breakdown.values()),
        breakdown=breakdown,
        total_params=total_params,
        trainable_params=int(trainable),
        notes=notes,
    )


def _gpu_field(gpu: Any, name: str) -> Any:
    return gpu.get(name) if isinstance(gpu, Mapping) else getattr(gpu, name, None)


def fits_on(
    estimate: Estimate, gpus: list[Any], *, reserved_mib: Mapping[int, float] | None = None
) -> list[int]:
    """Indices of the GPUs whose free memory holds ``estimate`` (a ``tunequeue.gpus.Gpu`` or a dict each).

    Free = ``memory_total_mib`` − ``memory_used_mib`` − ``reserved_mib[index]`` (memory our own jobs'
    estimates already claim on that GPU but have not allocated yet).
    """
    need_mib = estimate.total_gib * 1024
    reserved = reserved_mib or {}
    fitting = []
    for gpu in gpus:
        index = _gpu_field(gpu, "index")
        total = _gpu_field(gpu, "memory_total_mib") or 0
        used = _gpu_field(gpu, "memory_used_mib") or 0
        if total - used - reserved.get(index, 0) >= need_mib:
            fitting.append(index)
    return fitting


# Sustained training throughput assumed for the time estimate, FLOP/s: a data-centre GPU in bf16/fp16
# at about a third of its peak, and a many-core server CPU in fp32.
GPU_TRAIN_FLOPS = 1e14 * 0.35
CPU_TRAIN_FLOPS = 2e11


def estimate_train_seconds(
    spec: TaskValues, model_config: Mapping[str, Any], total_steps: int, *, on_gpu: bool = True
) -> float:
    """Rough wall time of ``total_steps`` optimizer steps: FLOPs per token × tokens ÷ throughput.

    Tokens per step assume every example fills ``cutoff_len`` (an upper bound); a token costs 6 × the
    parameters when all weights train and 4 × when the base is frozen (LoRA, freeze: no weight
    gradients). Data parallel GPUs divide the time.
    """
    shape = model_shape(model_config)
    method = str(_get(spec, "finetuning_type", "lora"))
    per_token = (6 if method == "full" else 4) * shape.total_params()
    batch = int(_get(spec, "per_device_train_batch_size", 2))
    batch *= int(_get(spec, "gradient_accumulation_steps", 8))
    devices = int(_get(spec, "gpu_count", 1)) * int(_get(spec, "nnodes", 1)) if on_gpu else 1
    tokens = total_steps * batch * devices * int(_get(spec, "cutoff_len", 2048))
    throughput = (GPU_TRAIN_FLOPS * devices) if on_gpu else CPU_TRAIN_FLOPS
    return per_token * tokens / throughput


def format_duration(seconds: float) -> str:
    """``1 h 05 min``, ``12 min``, ``40 s``: a duration rounded for display."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
