"""Shared pieces of the preference stages (rm, dpo, kto, ppo): TRL arguments, models, metrics file.

The preference workflows use TRL's trainers, which are Trainer subclasses with their own config classes.
`trl_arguments` validates the task through the same `build_training_arguments` as sft (so every
optimizer, scheduler and precision rule is shared) and then re-creates the TRL config from those
values plus the stage's own knobs. `StageLogCallback` writes the same ``trainer_log.jsonl`` lines as
sft and adds the stage's metrics (``rewards/chosen``, ``rewards/accuracies``, ``accuracy``, ``kl`` …).
"""

from __future__ import annotations

import logging
import math
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError
from tunequeue.train.callbacks import StopCallback, TrainerLogCallback

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

logger = logging.getLogger(__name__)

# The TrainingArguments fields that `build_training_arguments` sets; they carry over to TRL's configs.
_SHARED_FIELDS = (
    "output_dir",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "max_grad_norm",
    "optim",
    "optim_args",
    "optim_target_modules",
    "logging_steps",
    "save_strategy",
    "save_steps",
    "save_total_limit",
    "seed",
    "data_seed",
    "report_to",
    "logging_dir",
    "eval_strategy",
    "eval_steps",
    "bf16",
    "fp16",
    "use_cpu",
    "disable_tqdm",
    "ddp_timeout",
    "dataloader_num_workers",
)

# Keys of a Trainer log that are already written under LLaMA-Factory names or are bookkeeping.
_PLAIN_KEYS = {"loss", "eval_loss", "learning_rate", "grad_norm", "epoch", "num_tokens", "total_flos"}


class StageLogCallback(TrainerLogCallback):
    """`TrainerLogCallback` plus every numeric metric the stage's trainer logs (rewards, accuracies, KL)."""

    def record(self, state: Any, logs: dict) -> dict[str, Any]:
        """The sft record with the stage's extra metrics added under TRL's names."""
        record = super().record(state, logs)
        for key, value in logs.items():
            if key in _PLAIN_KEYS or key in record or key.endswith(("_runtime", "_per_second")):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                record[key] = round(float(value), 6)
        if "rewards/accuracies" in record and "accuracy" not in record:
            # LLaMA-Factory's LlamaBoard plots the preference accuracy under this key.
            record["accuracy"] = record["rewards/accuracies"]
        if "mean_reward" in record and "margin" in record:
            # RewardTrainer logs the mean over both sides and the mean margin; split them per side.
            record["rewards/chosen"] = round(record["mean_reward"] + record["margin"] / 2, 6)
            record["rewards/rejected"] = round(record["mean_reward"] - record["margin"] / 2, 6)
        return record


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def trl_arguments(
    config_cls: type, spec: TaskSpec, run_dir: Path, precision: Any, *, has_eval: bool, **stage: Any
) -> Any:
    """A TRL config (`DPOConfig`, `RewardConfig` …) with the task's training settings and `stage` knobs."""
    from tunequeue.train.optimizers import optimizer_arguments
    from tunequeue.train.runtime import build_training_arguments

    base = build_training_arguments(spec, run_dir, precision, has_eval=has_eval)
    values = {name: _plain(getattr(base, name)) for name in _SHARED_FIELDS if hasattr(base, name)}
    from tunequeue.core.extra_keys import passthrough_arguments

    values.update(passthrough_arguments(getattr(spec, "extra", None)))
    if base.deepspeed:
        values["deepspeed"] = base.deepspeed
    values.update(optimizer_arguments(spec))
    values.update(
        remove_unused_columns=False,
        include_num_input_tokens_seen="no",
        gradient_checkpointing=False,
    )
    values.update(stage)
    try:
        return config_cls(**values)
    except (TypeError, ValueError, ImportError) as err:
        raise UserError(f"the {spec.stage} settings were refused: {err}") from err


def pretokenized(trainer_cls: type) -> type:
    """A subclass of TRL's `DPOTrainer` or `KTOTrainer` that takes the rows `prepare_datasets` built.

    Rows that already hold ``prompt_ids`` are used as they are: TRL neither re-tokenizes them, nor adds
    an EOS, nor drops the examples whose prompt reaches ``max_length`` (the rows are cut to cutoff_len
    already, as LLaMA-Factory cuts them). For KTO the mismatched completions of the KL estimate are
    added as TRL adds them (completions rotated by one within each batch).
    """

    class Pretokenized(trainer_cls):
        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
            if "prompt_ids" not in (dataset.column_names or []):
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            if getattr(self, "calculate_KL", False):

                def rotate(batch: dict) -> dict:
                    batch["KL_completion_ids"] = [batch["completion_ids"][-1], *batch["completion_ids"][:-1]]
                    return batch

                dataset = dataset.map(rotate, batched=True, batch_size=args.per_device_train_batch_size)
            return dataset

    Pretokenized.__name__ = Pretokenized.__qualname__ = trainer_cls.__name__
    return Pretokenized


def callbacks(run_dir: Path, stop: Any, *, resuming: bool) -> list[Any]:
    """The metrics-file and stop-on-signal callbacks every stage trainer gets."""
    return [StageLogCallback(run_dir, resuming=resuming), StopCallback(stop)]


def quiet_printer(trainer: Any) -> Any:
    """Drop transformers' raw-dict printer; `StageLogCallback` prints one readable line per log."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def load_policy(spec: TaskSpec, precision: Any) -> Any:
    """The causal LM to train, with LoRA/freeze/full applied as for sft."""
    from tunequeue.train.model import load_model, needs_gradient_checkpointing, prepare_for_training

    model = load_model(spec, precision)
    checkpointing = needs_gradient_checkpointing(model, spec, precision)
    return prepare_for_training(model, spec, gradient_checkpointing=checkpointing)


def load_reference(spec: TaskSpec, precision: Any, policy: Any) -> Any:
    """The frozen reference model: `ref_model` when given, None for LoRA (TRL then disables the
    adapter to get the base), else a fresh frozen copy of the starting model."""
    from transformers import AutoModelForCausalLM

    from tunequeue.train.assets import resolve_model_path
    from tunequeue.train.model import load_model, trust_remote_code

    if spec.ref_model:
        path = resolve_model_path(spec.ref_model)
        reference = AutoModelForCausalLM.from_pretrained(
            path, dtype=precision.load_dtype, trust_remote_code=trust_remote_code(spec)
        )
    elif spec.finetuning_type == "lora" and hasattr(policy, "disable_adapter"):
        return None
    else:
        reference = load_model(spec, precision)
    reference.eval()
    reference.requires_grad_(False)
    return reference


def load_reward_model(spec: TaskSpec, precision: Any) -> tuple[Any, Any]:
    """(reward model, its tokenizer) for ppo: a full sequence-classification dir or an rm LoRA adapter.

    ``reward_model_type lora``: `reward_model` is an adapter trained by stage rm (LoRA) on the same base
    model; it is loaded onto the base and merged. ``full``: `reward_model` is a model directory saved
    by stage rm with full or freeze tuning.
    """
    import os

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunequeue.train.assets import resolve_model_path
    from tunequeue.train.model import trust_remote_code

    remote = trust_remote_code(spec)
    if spec.reward_model_type == "api":
        raise UserError("reward_model_type api is not supported; use lora or full with a local rm result")
    path = spec.reward_model
    if not path or not os.path.isdir(path):
        raise UserError(f"reward_model {path!r} is not a directory; give the run dir of an rm job")
    if spec.reward_model_type == "lora":
        if not os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise UserError(
                f"reward_model {path} has no adapter_config.json; use reward_model_type full for a full model"
            )
        from peft import PeftModel

        base = AutoModelForSequenceClassification.from_pretrained(
            resolve_model_path(spec.model_name_or_path),
            num_labels=1,
            dtype=precision.load_dtype,
            trust_remote_code=remote,
        )
        model = PeftModel.from_pretrained(base, path).merge_and_unload()
    else:
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise UserError(
                f"reward_model {path} has no config.json; use reward_model_type lora for an adapter"
            )
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=precision.load_dtype, trust_remote_code=remote
        )
    tokenizer = AutoTokenizer.from_pretrained(
        path
        if os.path.isfile(os.path.join(path, "tokenizer_config.json"))
        else resolve_model_path(spec.model_name_or_path),
        trust_remote_code=remote,
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer
