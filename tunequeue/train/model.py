"""Load the tokenizer and model for a task and make the right weights trainable.

Everything here runs inside the training process. The order mirrors what a workflow needs:

1. `check_model_options(spec)` — before anything is read or written, refuse options that the installed
   packages or the hardware cannot honour (hqq/eetq/unsloth/liger/flash-attn missing, bad bit widths).
2. `resolve_precision(spec)` — `compute_type` (auto → bf16 on compute capability ≥ 8, fp16 on older GPUs,
   fp32 on CPU) into the load dtype and the Trainer's AMP flags.
3. `load_tokenizer(spec)` and `load_model(spec, precision)` — local directory only; attention
   implementation, RoPE scaling and load-time quantization applied.
4. `prepare_for_training(model, spec, ...)` — full, freeze or LoRA (rsLoRA, DoRA, PiSSA, continued or stacked
   adapters); QLoRA is LoRA on a quantized base; OFT (orthogonal adapters through peft's OFTConfig).
   With ``use_llama_pro`` only the expanded blocks of a LLaMA Pro model train (freeze or LoRA): with
   N = ``freeze_trainable_layers`` over L layers, the last layer of every group of L/N layers, which is
   where `tunequeue.train.llama_pro.expand_blocks` puts its copies.

``trust_remote_code`` (kept in the task's ``extra``) is passed to every config, tokenizer and model loader.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError
from tunequeue.core.extra_keys import extra_value

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

logger = logging.getLogger(__name__)

BNB_BITS = (4, 8)
HQQ_BITS = (1, 2, 3, 4, 5, 6, 8)
EETQ_BITS = (8,)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _split_list(value: Any) -> list[str]:
    """Turn "a, b" or ["a", "b"] into ["a", "b"]; None or "" into []."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def trust_remote_code(spec: TaskSpec) -> bool:
    """Whether the task allows the model's own Python code (``trust_remote_code`` in ``extra``)."""
    return bool(extra_value(getattr(spec, "extra", None), "trust_remote_code"))


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def attention_choice(spec: TaskSpec) -> str:
    """The `flash_attn` setting after mapping `booster`: auto, disabled, sdpa or fa2."""
    booster = getattr(spec, "booster", "auto") or "auto"
    if booster == "flashattn2":
        return "fa2"
    return getattr(spec, "flash_attn", "auto") or "auto"


def wants_unsloth(spec: TaskSpec) -> bool:
    """True when the task asks for unsloth (`use_unsloth` or `booster: unsloth`)."""
    return bool(getattr(spec, "use_unsloth", False)) or getattr(spec, "booster", None) == "unsloth"


def wants_liger(spec: TaskSpec) -> bool:
    """True when the task asks for liger kernels (`enable_liger_kernel` or `booster: liger_kernel`)."""
    return (
        bool(getattr(spec, "enable_liger_kernel", False)) or getattr(spec, "booster", None) == "liger_kernel"
    )


def check_model_options(spec: TaskSpec) -> None:
    """Refuse, with one sentence, any model option that cannot run here; writes and loads nothing."""
    bits = spec.quantization_bit
    method = spec.quantization_method or "bnb"
    if bits is not None:
        if spec.finetuning_type != "lora":
            raise UserError(
                f"quantization_bit needs finetuning_type lora (QLoRA); got {spec.finetuning_type} — "
                "remove quantization_bit or switch to lora"
            )
        if method == "bnb":
            if bits not in BNB_BITS:
                raise UserError(f"quantization_method bnb supports quantization_bit 4 or 8; got {bits}")
            if not _installed("bitsandbytes"):
                raise UserError(
                    "quantization_method bnb needs the 'bitsandbytes' package, which is not installed; "
                    "pip install bitsandbytes or remove quantization_bit"
                )
        elif method == "hqq":
            if bits not in HQQ_BITS:
                raise UserError(f"quantization_method hqq supports quantization_bit 1–6 or 8; got {bits}")
            if not _installed("hqq"):
                raise UserError(
                    "quantization_method hqq needs the 'hqq' package, which is not installed; "
                    "pip install hqq or use quantization_method bnb"
                )
        elif method == "eetq":
            if bits not in EETQ_BITS:
                raise UserError(f"quantization_method eetq supports quantization_bit 8 only; got {bits}")
            if not _installed("eetq"):
                raise UserError(
                    "quantization_method eetq needs the 'eetq' package, which is not installed; "
                    "install eetq or use quantization_method bnb"
                )
            if not _cuda_available():
                raise UserError(
                    "quantization_method eetq needs an NVIDIA GPU; use quantization_method bnb on CPU"
                )
        else:
            raise UserError(f"unknown quantization_method {method!r}; use bnb, hqq or eetq")
    attention = attention_choice(spec)
    if attention == "fa2":
        if not _installed("flash_attn"):
            raise UserError(
                "flash_attn fa2 needs the 'flash-attn' package, which is not installed; "
                "pip install flash-attn or set flash_attn to auto"
            )
        if not _cuda_available():
            raise UserError("flash_attn fa2 needs an NVIDIA GPU; set flash_attn to auto to use sdpa")
    if wants_unsloth(spec):
        if not _installed("unsloth"):
            raise UserError(
                "use_unsloth needs the 'unsloth' package, which is not installed; "
                "pip install unsloth or set booster to auto"
            )
        if not _cuda_available():
            raise UserError("use_unsloth needs an NVIDIA GPU; set booster to auto on CPU")
    if wants_liger(spec):
        if not _installed("liger_kernel"):
            raise UserError(
                "enable_liger_kernel needs the 'liger-kernel' package, which is not installed; "
                "pip install liger-kernel or set booster to auto"
            )
        if not _cuda_available():
            raise UserError("liger kernels need an NVIDIA GPU (triton); set booster to auto on CPU")


@dataclass(frozen=True)
class Precision:
    """How the model is loaded and how the Trainer runs mixed precision.

    ``name`` is the resolved compute type (bf16, fp16, fp32, pure_bf16); ``load_dtype`` the dtype the
    base weights are loaded in; ``bf16`` / ``fp16`` the Trainer's autocast flags; ``on_cuda`` whether a GPU
    trains.
    """

    name: str
    load_dtype: Any
    bf16: bool
    fp16: bool
    on_cuda: bool

    @property
    def compute_dtype(self) -> Any:
        """The dtype matmuls run in (also the 4-bit compute dtype)."""
        import torch

        return {"bf16": torch.bfloat16, "pure_bf16": torch.bfloat16, "fp16": torch.float16}.get(
            self.name, torch.float32
        )


def resolve_precision(spec: TaskSpec) -> Precision:
    """Turn `compute_type` into a `Precision`; `auto` picks bf16/fp16 from the GPU, fp32 on CPU."""
    import torch

    on_cuda = torch.cuda.is_available()
    name = getattr(spec, "compute_type", "auto") or "auto"
    if name == "auto":
        if not on_cuda:
            name = "fp32"
        else:
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name in ("bf16", "pure_bf16") and on_cuda and not torch.cuda.is_bf16_supported():
        raise UserError(
            f"compute_type {name} needs a GPU with compute capability 8.0 or newer; use fp16 or auto"
        )
    full_weights = spec.finetuning_type == "full" and spec.quantization_bit is None
    if name == "pure_bf16":
        return Precision(name, torch.bfloat16, bf16=False, fp16=False, on_cuda=on_cuda)
    if name == "fp32":
        return Precision(name, torch.float32, bf16=False, fp16=False, on_cuda=on_cuda)
    # Mixed precision: frozen base weights sit in the half dtype; fully trained weights stay fp32 as
    # master copies (autocast computes in half precision), which is what AMP's grad scaler expects.
    half = torch.bfloat16 if name == "bf16" else torch.float16
    load_dtype = torch.float32 if (full_weights or not on_cuda) else half
    return Precision(name, load_dtype, bf16=name == "bf16", fp16=name == "fp16", on_cuda=on_cuda)


def load_tokenizer(spec: TaskSpec) -> Any:
    """Load the tokenizer of the task's local model directory; pad token falls back to eos."""
    from tunequeue.train.assets import resolve_model_path

    return load_tokenizer_from(
        resolve_model_path(spec.model_name_or_path), trust_remote_code=trust_remote_code(spec)
    )


def load_tokenizer_from(path: str, *, trust_remote_code: bool = False) -> Any:
    """Load the tokenizer saved in the local directory `path`; pad token falls back to eos."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot load a tokenizer from {path} ({err}); give a local HF model directory"
        ) from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _rope_parameters(config: Any, kind: str, cutoff_len: int) -> dict[str, Any]:
    """The RoPE dict for `rope_scaling` kind, stretching to cover `cutoff_len`.

    The new dict is built on the model's current one so `rope_theta` is kept (transformers fails with
    a None theta otherwise).
    """
    current = dict(getattr(config, "rope_parameters", None) or {})
    if "rope_theta" not in current:
        current["rope_theta"] = getattr(config, "rope_theta", None) or 10000.0
    max_positions = int(getattr(config, "max_position_embeddings", 0) or 0)
    factor = (
        float(math.ceil(cutoff_len / max_positions)) if max_positions and cutoff_len > max_positions else 2.0
    )
    params = {**current, "rope_type": kind, "factor": factor}
    params.pop("type", None)
    if kind in ("yarn", "llama3") and max_positions:
        params["original_max_position_embeddings"] = max_positions
    if kind == "llama3":
        params.setdefault("low_freq_factor", 1.0)
        params.setdefault("high_freq_factor", 4.0)
    return params


def load_config(spec: TaskSpec) -> Any:
    """Load the model config with RoPE scaling applied."""
    from transformers import AutoConfig

    from tunequeue.train.assets import resolve_model_path

    path = resolve_model_path(spec.model_name_or_path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code(spec))
    except (OSError, ValueError) as err:
        if "custom code" in str(err):
            raise UserError(
                f"the model in {path} ships its own Python code; set trust_remote_code: true to run it "
                "(only for a model you trust)"
            ) from err
        raise UserError(
            f"cannot read config.json in {path} ({err}); give a local HF model directory"
        ) from err
    if spec.rope_scaling:
        params = _rope_parameters(config, spec.rope_scaling, spec.cutoff_len)
        config.rope_parameters = params
        if spec.rope_scaling in ("yarn", "llama3") and getattr(config, "max_position_embeddings", None):
            config.max_position_embeddings = int(config.max_position_embeddings * params["factor"])
        logger.info("RoPE scaling %s with factor %s", spec.rope_scaling, params["factor"])
    return config


def _quantization_config(spec: TaskSpec, precision: Precision) -> Any:
    bits = spec.quantization_bit
    if bits is None:
        return None
    method = spec.quantization_method or "bnb"
    if method == "bnb":
        from transformers import BitsAndBytesConfig

        if bits == 8:
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=spec.quantization_type or "nf4",
            bnb_4bit_use_double_quant=bool(spec.double_quantization),
            bnb_4bit_compute_dtype=precision.compute_dtype,
            bnb_4bit_quant_storage=precision.compute_dtype,
        )
    if method == "hqq":
        from transformers import HqqConfig

        return HqqConfig(nbits=bits, group_size=64)
    from transformers import EetqConfig

    return EetqConfig("int8")


def _device_map(precision: Precision) -> Any:
    if precision.on_cuda:
        return {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return {"": "cpu"}


def load_model(spec: TaskSpec, precision: Precision) -> Any:
    """Load the causal LM from its local directory with attention, RoPE and quantization applied."""
    from transformers import AutoModelForCausalLM

    from tunequeue.train.assets import resolve_model_path

    path = resolve_model_path(spec.model_name_or_path)
    if wants_unsloth(spec):
        return _load_with_unsloth(spec, path, precision)
    config = load_config(spec)
    attention = {"auto": "sdpa", "sdpa": "sdpa", "disabled": "eager", "fa2": "flash_attention_2"}[
        attention_choice(spec)
    ]
    kwargs: dict[str, Any] = {
        "config": config,
        "dtype": precision.load_dtype,
        "attn_implementation": attention,
        "trust_remote_code": trust_remote_code(spec),
    }
    quantization = _quantization_config(spec, precision)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = _device_map(precision)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except ValueError as err:
        if "attn_implementation" in str(err) or "does not support" in str(err):
            raise UserError(f"{err}; set flash_attn to auto or disabled") from err
        raise
    if not precision.on_cuda and quantization is None:
        model = model.to("cpu")
    return model


def _load_with_unsloth(spec: TaskSpec, path: str, precision: Precision) -> Any:
    """Load through unsloth's patched kernels (GPU only; checked by `check_model_options`)."""
    from unsloth import FastLanguageModel

    model, _tokenizer = FastLanguageModel.from_pretrained(
        model_name=path,
        max_seq_length=spec.cutoff_len,
        dtype=precision.compute_dtype,
        load_in_4bit=spec.quantization_bit == 4,
    )
    return model


def _unsloth_lora(model: Any, spec: TaskSpec, *, gradient_checkpointing: bool) -> Any:
    from unsloth import FastLanguageModel

    targets = _split_list(spec.lora_target) or ["all"]
    if targets == ["all"]:
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return FastLanguageModel.get_peft_model(
        model,
        r=spec.lora_rank,
        target_modules=targets,
        lora_alpha=spec.lora_alpha if spec.lora_alpha is not None else spec.lora_rank * 2,
        lora_dropout=spec.lora_dropout,
        use_gradient_checkpointing="unsloth" if gradient_checkpointing else False,
        use_rslora=bool(spec.use_rslora),
        random_state=spec.seed,
        modules_to_save=_split_list(spec.additional_target) or None,
    )


def _layer_count(model: Any) -> int:
    config = model.config
    for name in ("num_hidden_layers", "num_layers", "n_layer"):
        value = getattr(config, name, None)
        if value:
            return int(value)
    raise UserError(
        "cannot find the number of layers in this model's config; use finetuning_type lora or full"
    )


def _setup_freeze(model: Any, spec: TaskSpec) -> None:
    """Train only the last (+N) or first (−N) decoder layers, optionally only some sub-modules."""
    import torch

    num_layers = _layer_count(model)
    n = int(spec.freeze_trainable_layers)
    if n == 0:
        raise UserError("freeze_trainable_layers must not be 0; +N trains the last N layers, −N the first N")
    if abs(n) > num_layers:
        raise UserError(f"freeze_trainable_layers is {n} but the model has only {num_layers} layers")
    if _uses_llama_pro(spec):
        layer_ids = llama_pro_layer_ids(num_layers, n)
    else:
        layer_ids = range(num_layers - n, num_layers) if n > 0 else range(0, -n)
    modules = _split_list(spec.freeze_trainable_modules) or ["all"]
    extra = _split_list(spec.freeze_extra_modules)
    layer_prefixes = {f".{i}." for i in layer_ids}

    def in_trainable_layer(name: str) -> bool:
        for prefix in layer_prefixes:
            position = name.find(prefix)
            if position > 0 and name[:position].endswith(("layers", "h", "blocks", "layer")):
                rest = name[position + len(prefix) :]
                return "all" in modules or any(rest.startswith(m + ".") or f".{m}." in rest for m in modules)
        return False

    def is_extra(name: str) -> bool:
        return any(name.startswith(m + ".") or f".{m}." in name for m in extra)

    trained = 0
    for name, param in model.named_parameters():
        trainable = in_trainable_layer(name) or is_extra(name)
        param.requires_grad_(trainable)
        if trainable:
            trained += 1
            if param.dtype != torch.float32:
                param.data = param.data.float()
    if trained == 0:
        raise UserError(
            f"freeze_trainable_modules {spec.freeze_trainable_modules!r} matches no parameter of the chosen "
            "layers; use 'all' or module names such as self_attn,mlp"
        )


def _uses_llama_pro(spec: TaskSpec) -> bool:
    return bool(extra_value(getattr(spec, "extra", None), "use_llama_pro"))


def llama_pro_layer_ids(num_layers: int, num_expanded: int) -> list[int]:
    """The expanded blocks of a LLaMA Pro model: the last layer of each of ``num_expanded`` equal groups."""
    if num_expanded <= 0 or num_layers % num_expanded != 0:
        raise UserError(
            f"use_llama_pro needs freeze_trainable_layers to be a positive divisor of the model's "
            f"{num_layers} layers (the number of expanded blocks); got {num_expanded}"
        )
    stride = num_layers // num_expanded
    return list(range(stride - 1, num_layers, stride))


def _llama_pro_targets(model: Any, spec: TaskSpec, targets: Any) -> list[str]:
    """Full names of the LoRA target linear layers inside the expanded blocks only."""
    import torch

    layer_ids = llama_pro_layer_ids(_layer_count(model), int(spec.freeze_trainable_layers))
    wanted = None if targets == "all-linear" else set(targets)
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or "lm_head" in name:
            continue
        if not any(f"layers.{i}." in name for i in layer_ids):
            continue
        if wanted is None or name.rsplit(".", 1)[-1] in wanted:
            names.append(name)
    if not names:
        raise UserError(
            "use_llama_pro with lora found no target layer in the expanded blocks; check lora_target"
        )
    return names


def _oft_config(spec: TaskSpec) -> Any:
    """peft's OFTConfig from LLaMA-Factory's oft_rank / oft_block_size / oft_target / module_dropout."""
    from peft import OFTConfig, TaskType

    extra = getattr(spec, "extra", None) or {}
    targets = _split_list(extra_value(extra, "oft_target")) or ["all"]
    rank = int(extra.get("oft_rank") or 0)
    # peft takes either a rank or a block size; LLaMA-Factory's default block size yields to a given rank.
    block_size = int(extra.get("oft_block_size") or (0 if rank else extra_value(extra, "oft_block_size")))
    try:
        return OFTConfig(
            task_type=TaskType.CAUSAL_LM,
            r=rank,
            oft_block_size=block_size,
            target_modules="all-linear" if targets == ["all"] else targets,
            module_dropout=float(extra_value(extra, "module_dropout")),
            modules_to_save=_split_list(spec.additional_target) or None,
        )
    except ValueError as err:
        raise UserError(f"the OFT settings were refused: {err}; change oft_rank or oft_block_size") from err


def _setup_oft(model: Any, spec: TaskSpec) -> Any:
    """Wrap `model` in OFT adapters (continuing the last given adapter when one is set)."""
    from peft import PeftModel, get_peft_model

    adapters = _split_list(spec.adapter_name_or_path)
    if adapters and not spec.create_new_adapter:
        for adapter in adapters[:-1]:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        return PeftModel.from_pretrained(model, adapters[-1], is_trainable=True)
    for adapter in adapters:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    try:
        return get_peft_model(model, _oft_config(spec))
    except ValueError as err:
        raise UserError(
            f"OFT cannot be applied to this model ({err}); change oft_block_size or oft_rank so it divides "
            "the layers' input sizes"
        ) from err


def _lora_config(spec: TaskSpec) -> Any:
    from peft import LoraConfig, TaskType

    targets = _split_list(spec.lora_target) or ["all"]
    target_modules: Any = "all-linear" if targets == ["all"] else targets
    init: Any = True
    if spec.pissa_init:
        init = "pissa" if spec.pissa_iter == -1 else f"pissa_niter_{spec.pissa_iter}"
    alpha = spec.lora_alpha if spec.lora_alpha is not None else spec.lora_rank * 2
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=spec.lora_rank,
        lora_alpha=alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=target_modules,
        modules_to_save=_split_list(spec.additional_target) or None,
        use_rslora=bool(spec.use_rslora),
        use_dora=bool(spec.use_dora),
        init_lora_weights=init,
    )


def _setup_lora(model: Any, spec: TaskSpec, *, quantized: bool) -> Any:
    """Wrap `model` in LoRA: continue the last given adapter or create a new one on top of merged ones."""
    from peft import PeftModel, get_peft_model

    adapters = _split_list(spec.adapter_name_or_path)
    for adapter in adapters:
        if not os.path.isfile(os.path.join(adapter, "adapter_config.json")):
            raise UserError(
                f"adapter_name_or_path {adapter!r} has no adapter_config.json; give a saved adapter dir"
            )
    if quantized and len(adapters) > 1:
        raise UserError("a quantized model can continue one adapter only; give a single adapter_name_or_path")
    resume_last = bool(adapters) and not spec.create_new_adapter
    to_merge = adapters[:-1] if resume_last else adapters
    if quantized and to_merge:
        raise UserError(
            "adapters cannot be merged into a quantized model; drop create_new_adapter or quantization"
        )
    for adapter in to_merge:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        logger.info("merged adapter %s into the base model", adapter)
    if resume_last:
        model = PeftModel.from_pretrained(model, adapters[-1], is_trainable=True)
        logger.info("continuing training of adapter %s", adapters[-1])
    else:
        config = _lora_config(spec)
        if _uses_llama_pro(spec):
            config.target_modules = _llama_pro_targets(model, spec, config.target_modules)
        model = get_peft_model(model, config)
    return model


def enable_gradient_checkpointing(model: Any) -> None:
    """Recompute activations in backward (non-reentrant), with input grads for adapter training."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()
    model.config.use_cache = False


def prepare_for_training(model: Any, spec: TaskSpec, *, gradient_checkpointing: bool) -> Any:
    """Make the weights of `finetuning_type` trainable; returns the (possibly wrapped) model."""
    quantized = spec.quantization_bit is not None
    model.config.use_cache = False
    if wants_unsloth(spec) and spec.finetuning_type == "lora" and not spec.adapter_name_or_path:
        return _unsloth_lora(model, spec, gradient_checkpointing=gradient_checkpointing)
    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    elif gradient_checkpointing:
        enable_gradient_checkpointing(model)
    if spec.finetuning_type == "full":
        model.requires_grad_(True)
    elif spec.finetuning_type == "freeze":
        _setup_freeze(model, spec)
    elif spec.finetuning_type == "oft":
        model = _setup_oft(model, spec)
    else:
        model = _setup_lora(model, spec, quantized=quantized)
    trainable, total = count_parameters(model)
    logger.info("trainable params: %d of %d (%.4f%%)", trainable, total, 100 * trainable / max(total, 1))
    return model


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit weights count as their unpacked size."""
    trainable = total = 0
    for param in model.parameters():
        n = param.numel()
        if param.__class__.__name__ == "Params4bit":
            n *= 2
        total += n
        if param.requires_grad:
            trainable += n
    return trainable, total


def needs_gradient_checkpointing(model: Any, spec: TaskSpec, precision: Precision) -> bool:
    """Decide activation checkpointing: only when memory needs it.

    Off when `disable_gradient_checkpointing` is set or training runs on CPU (host RAM is not the
    limit there and recomputation costs about a third more time). On a GPU the activation memory of one
    micro-batch (≈ 34·h·L bytes per token in half precision with sdpa) plus weights, gradients and optimizer
    state is compared with the free memory; checkpointing is switched on when that exceeds 80 % of it.
    """
    if getattr(spec, "disable_gradient_checkpointing", False):
        return False
    if not precision.on_cuda:
        return False
    import torch

    free, _total = torch.cuda.mem_get_info()
    config = model.config
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    trainable, total = count_parameters(model)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    state_bytes = trainable * (4 + 8 + 4)  # fp32 grads + Adam moments + master copy
    tokens = spec.per_device_train_batch_size * spec.cutoff_len
    bytes_per_element = 2 if precision.name != "fp32" else 4
    activation_bytes = tokens * hidden * layers * 17 * bytes_per_element
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    logits_bytes = tokens * vocab * 4 * 2
    need = weight_bytes + state_bytes + activation_bytes + logits_bytes
    decision = need > 0.8 * free
    logger.info(
        "gradient checkpointing %s (estimated %.1f GiB needed, %.1f GiB free)",
        "on" if decision else "off",
        need / 2**30,
        free / 2**30,
    )
    return decision
