"""Next-token training shared by pre-training and supervised fine-tuning: the two differ only in data prep."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tunequeue.train.callbacks import StopRequest
from tunequeue.train.data import make_collator, prepare_datasets, uses_packing
from tunequeue.train.model import (
    load_model,
    load_tokenizer,
    needs_gradient_checkpointing,
    prepare_for_training,
    resolve_precision,
)
from tunequeue.train.runtime import (
    TrainOutcome,
    build_trainer,
    newest_checkpoint,
    save_pissa_initial,
    train_and_save,
)
from tunequeue.train.templates import template_for_spec

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec


def run_causal_lm(
    spec: TaskSpec, run_dir: Path, stop: StopRequest, *, stage: Literal["pt", "sft"]
) -> TrainOutcome:
    """Train `spec` as `stage` in `run_dir`, resuming from its newest checkpoint unless overwriting.

    `stage` picks how the data is prepared (plain text vs. templated conversations with the loss on responses)
    and whether packing is on by default (pt packs unless told not to, as in LLaMA-Factory).
    """
    tokenizer = load_tokenizer(spec)
    template = template_for_spec(spec, tokenizer)
    data = prepare_datasets(spec, tokenizer, template, stage=stage)
    precision = resolve_precision(spec)
    # Tensor cores want sequence lengths in multiples of 8; on CPU any rounding is wasted work.
    collator = make_collator(
        tokenizer, packing=uses_packing(spec, stage), pad_to_multiple_of=8 if precision.on_cuda else None
    )
    model = load_model(spec, precision)
    checkpointing = needs_gradient_checkpointing(model, spec, precision)
    model = prepare_for_training(model, spec, gradient_checkpointing=checkpointing)
    resume_from = None if spec.overwrite_output_dir else newest_checkpoint(run_dir)
    pissa_init_dir = save_pissa_initial(model, spec, run_dir)
    trainer = build_trainer(
        spec, run_dir, model, tokenizer, data, collator, precision, stop, resuming=resume_from is not None
    )
    return train_and_save(
        trainer,
        spec,
        run_dir,
        tokenizer,
        stop,
        resume_from=resume_from,
        pissa_init_dir=pissa_init_dir,
        num_train_tokens=data.num_train_tokens,
    )
