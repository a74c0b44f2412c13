"""GaLore and BAdam: memory-saving optimizers for full fine-tuning, from their optional packages.

GaLore (``pip install 'tunequeue[galore]'``, package galore-torch) runs through transformers' own
``optim="galore_*"`` support: `optimizer_arguments` turns the task's galore_* keys into ``optim``,
``optim_target_modules`` and ``optim_args``. BAdam (``pip install 'tunequeue[badam]'``) wraps a base
AdamW in a block-coordinate optimizer that trains one block of layers at a time; `badam_optimizer` builds
it and the Trainer receives it through ``optimizers=(optimizer, None)``. Missing packages are refused
earlier, at validation (`tunequeue.core.rules`).
"""

from __future__ import annotations

from typing import Any

from tunequeue.core.errors import UserError

GALORE_ALL_TARGETS = ["attn", "mlp"]


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def galore_optim_name(spec: Any) -> str:
    """The transformers optimizer name for GaLore with the task's base optimizer."""
    if "adafactor" in spec.optim:
        base = "galore_adafactor"
    elif "8bit" in spec.optim:
        base = "galore_adamw_8bit"
    else:
        base = "galore_adamw"
    return base + ("_layerwise" if spec.galore_layerwise else "")


def optimizer_arguments(spec: Any) -> dict[str, Any]:
    """TrainingArguments overrides for GaLore (an empty dict when the task does not use it)."""
    if not getattr(spec, "use_galore", False):
        return {}
    targets = _split(spec.galore_target)
    if not targets or targets == ["all"]:
        targets = list(GALORE_ALL_TARGETS)
    optim_args = (
        f"rank={spec.galore_rank}, update_proj_gap={spec.galore_update_interval}, "
        f"scale={spec.galore_scale}, proj_type={spec.galore_proj_type}"
    )
    return {"optim": galore_optim_name(spec), "optim_target_modules": targets, "optim_args": optim_args}


def badam_optimizer(model: Any, spec: Any, args: Any) -> Any | None:
    """BAdam's block optimizer over `model` (None when the task does not use BAdam).

    Layer mode trains one decoder layer block at a time, switching every ``badam_switch_interval``
    steps in ``badam_switch_mode`` order. Ratio mode is refused: its sparse gradients cannot pass the
    gradient-norm step of the installed transformers.
    """
    if not getattr(spec, "use_badam", False):
        return None
    import torch

    base = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=args.learning_rate,
        weight_decay=args.weight_decay,
    )
    named = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
    if spec.badam_mode == "layer":
        from badam import BlockOptimizer

        num_layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
        prefix = _layer_prefix(named)
        block_prefixes = [[f"{prefix}{i}."] for i in range(num_layers)] if prefix and num_layers else None
        return BlockOptimizer(
            base_optimizer=base,
            named_parameters_list=named,
            block_prefix_list=block_prefixes,
            switch_block_every=spec.badam_switch_interval if spec.badam_switch_interval > 0 else 10**9,
            switch_mode=spec.badam_switch_mode,
            start_block=spec.badam_start_block,
            verbose=spec.badam_verbose,
        )
    # transformers 5 computes the gradient norm after every step, which fails on the sparse gradients
    # BlockOptimizerRatio produces (no sparse norm kernel), so ratio mode cannot train here.
    raise UserError(
        "badam_mode ratio does not work with the installed transformers (its sparse gradients break the "
        "gradient-norm step); use badam_mode layer"
    )


def _layer_prefix(named: list[tuple[str, Any]]) -> str | None:
    """The name prefix of the decoder layers ("model.layers." for Llama-like models)."""
    for name, _param in named:
        marker = name.find("layers.")
        if marker >= 0:
            return name[: marker + len("layers.")]
    return None
