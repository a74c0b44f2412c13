"""Reward modeling: a scalar scorer (sequence classification, one label) trained on chosen/rejected pairs.

The model is the base LM with a fresh one-output ``score`` head (`AutoModelForSequenceClassification`);
with LoRA the head trains in full next to the adapters (saved with them). TRL's `RewardTrainer` minimises
−log σ(r_chosen − r_rejected) and logs ``accuracy`` and the mean rewards, which go into
``trainer_log.jsonl`` next to the loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.train.callbacks import StopRequest
from tunequeue.train.data import prepare_datasets
from tunequeue.train.model import load_config, load_tokenizer, resolve_precision
from tunequeue.train.optimizers import custom_optimizer
from tunequeue.train.rlhf import callbacks, quiet_printer, trl_arguments
from tunequeue.train.runtime import TrainOutcome, newest_checkpoint, train_and_save
from tunequeue.train.templates import template_for_spec

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec


def load_reward_base(spec: TaskSpec, precision: Any, tokenizer: Any) -> Any:
    """The base model as a one-label sequence classifier with the task's tuning method applied."""
    from transformers import AutoModelForSequenceClassification

    from tunequeue.train.assets import resolve_model_path
    from tunequeue.train.model import _lora_config, prepare_for_training, trust_remote_code

    config = load_config(spec)
    config.num_labels = 1
    config.pad_token_id = tokenizer.pad_token_id
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model_path(spec.model_name_or_path),
        config=config,
        dtype=precision.load_dtype,
        trust_remote_code=trust_remote_code(spec),
    )
    if spec.finetuning_type != "lora":
        model = prepare_for_training(model, spec, gradient_checkpointing=False)
        if spec.finetuning_type == "freeze":
            model.score.requires_grad_(True)
        return model
    from peft import PeftModel, TaskType, get_peft_model

    if spec.adapter_name_or_path and not spec.create_new_adapter:
        return PeftModel.from_pretrained(
            model, spec.adapter_name_or_path.split(",")[-1].strip(), is_trainable=True
        )
    lora = _lora_config(spec)
    lora.task_type = TaskType.SEQ_CLS
    lora.modules_to_save = sorted({*(lora.modules_to_save or []), "score"})
    if lora.target_modules == "all-linear" or lora.target_modules == {"all-linear"}:
        lora.target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return get_peft_model(model, lora)


def run_rm(spec: TaskSpec, run_dir: Path, stop: StopRequest) -> TrainOutcome:
    """Train `spec` with stage rm in `run_dir`; resumes from the newest checkpoint unless overwriting."""
    from trl import RewardConfig, RewardTrainer

    tokenizer = load_tokenizer(spec)
    template = template_for_spec(spec, tokenizer)
    data = prepare_datasets(spec, tokenizer, template, stage="rm")
    precision = resolve_precision(spec)
    model = load_reward_base(spec, precision, tokenizer)
    resume_from = None if spec.overwrite_output_dir else newest_checkpoint(run_dir)
    args = trl_arguments(
        RewardConfig, spec, run_dir, precision, has_eval=data.eval is not None, max_length=spec.cutoff_len
    )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=_joined(data.train),
        eval_dataset=_joined(data.eval) if data.eval is not None else None,
        processing_class=tokenizer,
        optimizers=(custom_optimizer(model, spec, args), None),
        callbacks=callbacks(run_dir, stop, resuming=resume_from is not None),
    )
    quiet_printer(trainer)
    return train_and_save(trainer, spec, run_dir, tokenizer, stop, resume_from=resume_from)


def _joined(dataset: Any) -> Any:
    """Prompt + answer as one text per side: the reward model scores whole conversations."""
    return dataset.map(
        lambda row: {"chosen": row["prompt"] + row["chosen"], "rejected": row["prompt"] + row["rejected"]},
        remove_columns=["prompt"],
    )
