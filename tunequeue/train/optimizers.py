"""Optimizers beyond the Trainer's ``optim`` names: GaLore, APOLLO, BAdam, Muon and Adam-mini.

GaLore (``pip install 'tunequeue[galore]'``, package galore-torch) runs through transformers' own
``optim="galore_*"`` support: `optimizer_arguments` turns the task's galore_* keys into ``optim``,
``optim_target_modules`` and ``optim_args``. BAdam (``pip install 'tunequeue[badam]'``) wraps a base
AdamW in a block-coordinate optimizer that trains one block of layers at a time; `badam_optimizer` builds
it and the Trainer receives it through ``optimizers=(optimizer, None)``. Missing packages are refused
earlier, at validation (`tunequeue.core.rules`).

APOLLO (``use_apollo``, package apollo-torch) also runs through transformers (``optim="apollo_adamw"``).
Muon (``use_muon``) uses torch's own Muon update for the 2-D weight matrices of the hidden layers and
AdamW for everything else (embeddings, output head, norms, biases), with Muon's step size matched to
AdamW's RMS so one learning rate serves both (`MuonWithAdamW`). Adam-mini (``use_adam_mini``, package
adam-mini) is built from the model's named parameters and head counts. `custom_optimizer` returns the
optimizer object the Trainer receives, or None for the Trainer's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError
from tunequeue.core.extra_keys import extra_value

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

GALORE_ALL_TARGETS = ["attn", "mlp"]


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def galore_optim_name(spec: TaskSpec) -> str:
    """The transformers optimizer name for GaLore with the task's base optimizer."""
    if "adafactor" in spec.optim:
        base = "galore_adafactor"
    elif "8bit" in spec.optim:
        base = "galore_adamw_8bit"
    else:
        base = "galore_adamw"
    return base + ("_layerwise" if spec.galore_layerwise else "")


def _extra(spec: TaskSpec, key: str) -> Any:
    return extra_value(getattr(spec, "extra", None), key)


def apollo_arguments(spec: TaskSpec) -> dict[str, Any]:
    """TrainingArguments overrides for APOLLO (transformers' apollo_adamw optimizers)."""
    targets = _split(_extra(spec, "apollo_target"))
    if not targets or targets == ["all"]:
        targets = list(GALORE_ALL_TARGETS)
    optim_args = (
        f"rank={_extra(spec, 'apollo_rank')}, proj={_extra(spec, 'apollo_proj')}, "
        f"scale_type={_extra(spec, 'apollo_scale_type')}, "
        f"update_proj_gap={_extra(spec, 'apollo_update_interval')}, scale={_extra(spec, 'apollo_scale')}, "
        f"proj_type={_extra(spec, 'apollo_proj_type')}"
    )
    name = "apollo_adamw" + ("_layerwise" if _extra(spec, "apollo_layerwise") else "")
    return {"optim": name, "optim_target_modules": targets, "optim_args": optim_args}


def optimizer_arguments(spec: TaskSpec) -> dict[str, Any]:
    """TrainingArguments overrides for GaLore or APOLLO (an empty dict when the task uses neither)."""
    if _extra(spec, "use_apollo"):
        return apollo_arguments(spec)
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


def badam_optimizer(model: Any, spec: TaskSpec, args: Any) -> Any | None:
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


def custom_optimizer(model: Any, spec: TaskSpec, args: Any) -> Any | None:
    """The optimizer the Trainer is given (BAdam, Muon, Adam-mini), or None for the Trainer's own."""
    if getattr(spec, "use_badam", False):
        return badam_optimizer(model, spec, args)
    if _extra(spec, "use_muon"):
        return muon_optimizer(model, args)
    if _extra(spec, "use_adam_mini"):
        return adam_mini_optimizer(model, args)
    return None


def _is_hidden_matrix(name: str, param: Any) -> bool:
    """A 2-D weight inside the decoder layers (not the embeddings or the output head)."""
    return param.ndim == 2 and "embed" not in name and "lm_head" not in name and "layers." in name


def muon_optimizer(model: Any, args: Any) -> Any:
    """`MuonWithAdamW` over the trainable parameters: Muon for hidden matrices, AdamW for the rest."""
    named = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
    matrices = [param for name, param in named if _is_hidden_matrix(name, param)]
    others = [param for name, param in named if not _is_hidden_matrix(name, param)]
    groups = []
    if matrices:
        groups.append({"params": matrices, "use_muon": True})
    if others:
        groups.append({"params": others, "use_muon": False})
    return make_muon_with_adamw(
        groups,
        lr=args.learning_rate,
        weight_decay=args.weight_decay,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
    )


def make_muon_with_adamw(groups: list[dict[str, Any]], **defaults: Any) -> Any:
    """Build a `MuonWithAdamW` (the class needs torch, so it is defined on first use)."""
    return _muon_class()(groups, **defaults)


def _muon_class() -> type:
    import torch
    from torch.optim._muon import muon
    from torch.optim.adam import adam

    class MuonWithAdamW(torch.optim.Optimizer):
        """Muon on groups with ``use_muon`` (2-D matrices), decoupled-weight-decay Adam elsewhere.

        Both updates are torch's own functional kernels; Muon's learning rate is scaled to match AdamW's
        update RMS (``adjust_lr_fn="match_rms_adamw"``).
        """

        def __init__(
            self,
            params: Any,
            lr: float = 1e-3,
            weight_decay: float = 0.0,
            betas: tuple[float, float] = (0.9, 0.999),
            eps: float = 1e-8,
            momentum: float = 0.95,
            ns_steps: int = 5,
        ) -> None:
            defaults = {
                "lr": lr,
                "weight_decay": weight_decay,
                "betas": betas,
                "eps": eps,
                "momentum": momentum,
                "ns_steps": ns_steps,
                "use_muon": False,
            }
            super().__init__(params, defaults)

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            """One update of every group."""
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if not params:
                    continue
                grads = [p.grad for p in params]
                if group["use_muon"]:
                    buffers = []
                    for p in params:
                        state = self.state[p]
                        if "momentum_buffer" not in state:
                            state["momentum_buffer"] = torch.zeros_like(p.grad)
                        buffers.append(state["momentum_buffer"])
                    muon(
                        params,
                        grads,
                        buffers,
                        lr=group["lr"],
                        weight_decay=group["weight_decay"],
                        momentum=group["momentum"],
                        nesterov=True,
                        ns_coefficients=(3.4445, -4.775, 2.0315),
                        ns_steps=group["ns_steps"],
                        eps=1e-7,
                        adjust_lr_fn="match_rms_adamw",
                        has_complex=False,
                    )
                    continue
                exp_avgs, exp_avg_sqs, steps = [], [], []
                for p in params:
                    state = self.state[p]
                    if "step" not in state:
                        state["step"] = torch.tensor(0.0)
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                    exp_avgs.append(state["exp_avg"])
                    exp_avg_sqs.append(state["exp_avg_sq"])
                    steps.append(state["step"])
                beta1, beta2 = group["betas"]
                adam(
                    params,
                    grads,
                    exp_avgs,
                    exp_avg_sqs,
                    [],
                    steps,
                    decoupled_weight_decay=True,
                    amsgrad=False,
                    beta1=beta1,
                    beta2=beta2,
                    lr=group["lr"],
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=False,
                )
            return loss

    return MuonWithAdamW


def adam_mini_optimizer(model: Any, args: Any) -> Any:
    """Adam-mini over the model's named parameters, told the hidden size and attention head counts."""
    from adam_mini import Adam_mini

    config = model.config
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    return Adam_mini(
        named_parameters=list(model.named_parameters()),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay,
        dim=int(getattr(config, "hidden_size", 0) or 0),
        n_heads=heads,
        n_kv_heads=int(getattr(config, "num_key_value_heads", 0) or heads),
    )
