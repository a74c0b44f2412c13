"""Preference optimization on chosen/rejected pairs: DPO (sigmoid, hinge, ipo), ORPO and SimPO.

Pairs reach TRL tokenized and cut to cutoff_len as LLaMA-Factory cuts them (see `data.prepare_datasets`),
so no example is dropped and no second EOS follows an answer.

``pref_loss`` picks the trainer: sigmoid / hinge / ipo run TRL's `DPOTrainer` against a frozen reference
(``ref_model`` when given; with LoRA the adapter-disabled base; otherwise a frozen copy of the starting
model), with ``dpo_label_smoothing`` (cDPO) and ``pref_ftx`` as an added SFT term on the chosen answers.
orpo (`trl.experimental.orpo.ORPOTrainer`, λ = ``pref_beta``) and simpo (`trl.experimental.cpo.CPOTrainer`
with loss_type simpo, γ = ``simpo_gamma``, SFT weight ``pref_ftx``) need no reference model.
kto_pair is not offered by the installed TRL; it is refused with the alternative named.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError
from tunequeue.train.callbacks import StopRequest
from tunequeue.train.data import prepare_datasets
from tunequeue.train.model import load_tokenizer, resolve_precision
from tunequeue.train.optimizers import badam_optimizer
from tunequeue.train.rlhf import (
    callbacks,
    load_policy,
    load_reference,
    pretokenized,
    quiet_printer,
    trl_arguments,
)
from tunequeue.train.runtime import TrainOutcome, newest_checkpoint, train_and_save
from tunequeue.train.templates import template_for_spec

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

DPO_LOSSES = ("sigmoid", "hinge", "ipo")


def _optimizers(model: Any, spec: TaskSpec, args: Any) -> tuple[Any, None]:
    return badam_optimizer(model, spec, args), None


def _trainer(
    spec: TaskSpec, run_dir: Path, precision: Any, model: Any, tokenizer: Any, data: Any, cbs: list
) -> Any:
    loss = spec.pref_loss
    has_eval = data.eval is not None
    common = {
        "train_dataset": data.train,
        "eval_dataset": data.eval,
        "processing_class": tokenizer,
        "callbacks": cbs,
    }
    if loss in DPO_LOSSES:
        from trl import DPOConfig, DPOTrainer

        loss_types, weights = [loss], [1.0]
        if spec.pref_ftx > 0:
            loss_types.append("sft")
            weights.append(spec.pref_ftx)
        args = trl_arguments(
            DPOConfig,
            spec,
            run_dir,
            precision,
            has_eval=has_eval,
            beta=spec.pref_beta,
            loss_type=loss_types,
            loss_weights=weights,
            label_smoothing=spec.dpo_label_smoothing,
            max_length=spec.cutoff_len,
            include_num_input_tokens_seen="non_padding",
        )
        reference = load_reference(spec, precision, model)
        return pretokenized(DPOTrainer)(
            model=model, ref_model=reference, args=args, optimizers=_optimizers(model, spec, args), **common
        )
    if loss == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        args = trl_arguments(
            ORPOConfig,
            spec,
            run_dir,
            precision,
            has_eval=has_eval,
            beta=spec.pref_beta,
            max_length=spec.cutoff_len,
        )
        return ORPOTrainer(model=model, args=args, optimizers=_optimizers(model, spec, args), **common)
    if loss == "simpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        args = trl_arguments(
            CPOConfig,
            spec,
            run_dir,
            precision,
            has_eval=has_eval,
            loss_type="simpo",
            beta=spec.pref_beta,
            simpo_gamma=spec.simpo_gamma,
            cpo_alpha=spec.pref_ftx,
            max_length=spec.cutoff_len,
        )
        return CPOTrainer(model=model, args=args, optimizers=_optimizers(model, spec, args), **common)
    raise UserError(
        f"pref_loss {loss} is not available with the installed TRL; use sigmoid, hinge, ipo, orpo or simpo"
    )


def run_dpo(spec: TaskSpec, run_dir: Path, stop: StopRequest) -> TrainOutcome:
    """Train `spec` with stage dpo in `run_dir`; resumes from the newest checkpoint unless overwriting."""
    if spec.pref_loss == "kto_pair":
        raise UserError("pref_loss kto_pair is not available with the installed TRL; use stage kto instead")
    tokenizer = load_tokenizer(spec)
    template = template_for_spec(spec, tokenizer)
    data = prepare_datasets(spec, tokenizer, template, stage="dpo")
    precision = resolve_precision(spec)
    model = load_policy(spec, precision)
    resume_from = None if spec.overwrite_output_dir else newest_checkpoint(run_dir)
    cbs = callbacks(run_dir, stop, resuming=resume_from is not None)
    trainer = quiet_printer(_trainer(spec, run_dir, precision, model, tokenizer, data, cbs))
    return train_and_save(trainer, spec, run_dir, tokenizer, stop, resume_from=resume_from)
