"""KTO: align on unpaired answers labelled desirable or undesirable (``kto_tag``).

TRL's `KTOTrainer` with β = ``pref_beta`` and the per-class weights ``kto_chosen_weight`` /
``kto_rejected_weight``; the reference model is chosen as for dpo (``ref_model``, the adapter-disabled
base with LoRA, or a frozen copy). Examples reach TRL tokenized and cut to cutoff_len as LLaMA-Factory
cuts them, so none is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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


def run_kto(spec: TaskSpec, run_dir: Path, stop: StopRequest) -> TrainOutcome:
    """Train `spec` with stage kto in `run_dir`; resumes from the newest checkpoint unless overwriting."""
    from trl import KTOConfig, KTOTrainer

    tokenizer = load_tokenizer(spec)
    template = template_for_spec(spec, tokenizer)
    data = prepare_datasets(spec, tokenizer, template, stage="kto")
    precision = resolve_precision(spec)
    model = load_policy(spec, precision)
    resume_from = None if spec.overwrite_output_dir else newest_checkpoint(run_dir)
    args = trl_arguments(
        KTOConfig,
        spec,
        run_dir,
        precision,
        has_eval=data.eval is not None,
        beta=spec.pref_beta,
        desirable_weight=spec.kto_chosen_weight,
        undesirable_weight=spec.kto_rejected_weight,
        max_length=spec.cutoff_len,
        include_num_input_tokens_seen="non_padding",
    )
    trainer = pretokenized(KTOTrainer)(
        model=model,
        ref_model=load_reference(spec, precision, model),
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=tokenizer,
        optimizers=(badam_optimizer(model, spec, args), None),
        callbacks=callbacks(run_dir, stop, resuming=resume_from is not None),
    )
    quiet_printer(trainer)
    return train_and_save(trainer, spec, run_dir, tokenizer, stop, resume_from=resume_from)
