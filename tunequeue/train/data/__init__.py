"""Training data: dataset_info.json lookup → format conversion → templating → tokenized rows.

`prepare_datasets` reads and checks every dataset of a task before any model is loaded, so a missing
file, an empty file or a missing column fails at once with the file, row and column named.

Rows per stage:

- ``pt`` / ``sft``: ``input_ids``, ``labels`` (-100 where no loss) and ``attention_mask``, or, when
  packed, ``position_ids`` restarting at every packed sample (see `processor.pack_rows`).
- ``dpo`` (sigmoid, hinge, ipo): token ids ``prompt_ids``, ``chosen_ids``, ``rejected_ids``, cut to
  cutoff_len as LLaMA-Factory cuts them (`processor.infer_seqlen`), so TRL neither drops nor re-cuts
  a row; how many rows were cut is logged.
- ``rm`` and dpo with orpo / simpo: text columns ``prompt``, ``chosen``, ``rejected`` (templated), as
  those TRL trainers tokenize text themselves.
- ``kto``: token ids ``prompt_ids``, ``completion_ids`` and a boolean ``label``, cut like dpo.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError
from tunequeue.train.data.collator import PaddingCollator, make_collator
from tunequeue.train.data.converter import Example, convert_rows
from tunequeue.train.data.loader import (
    DatasetEntry,
    dataset_entry,
    read_dataset_info,
    read_entry_rows,
    resolve_dataset_dir,
)
from tunequeue.train.data.processor import (
    IGNORE_INDEX,
    add_attention,
    count_loss_tokens,
    encode_feedback,
    encode_pairwise,
    encode_pretrain,
    encode_supervised,
    pack_rows,
    preference_texts,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    from tunequeue.core.spec import TaskSpec

    # A task as a TaskSpec or a plain mapping of its keys (missing keys take the defaults).
    TaskValues: TypeAlias = TaskSpec | dict[str, Any]

__all__ = [
    "IGNORE_INDEX",
    "PaddingCollator",
    "PreparedData",
    "load_examples",
    "make_collator",
    "prepare_datasets",
    "uses_packing",
]

log = logging.getLogger(__name__)

STAGES = ("pt", "sft", "rm", "dpo", "kto", "ppo")
# pref_loss values trained by TRL's DPOTrainer, which takes pre-tokenized pairs.
TOKENIZED_PAIR_LOSSES = ("sigmoid", "hinge", "ipo")


@dataclass
class PreparedData:
    """Tokenized (pt/sft) or templated text (rm/dpo/kto) datasets ready for a Trainer."""

    train: Any
    eval: Any | None
    num_train_tokens: int
    num_examples: int


def _setting(spec: TaskValues, key: str, default: Any = None) -> Any:
    """A task setting from a TaskSpec-like object or a plain mapping."""
    value = spec.get(key, default) if isinstance(spec, dict) else getattr(spec, key, default)
    return default if value is None else value


def uses_packing(spec: TaskValues, stage: str) -> bool:
    """Whether rows are packed: ``packing`` (or ``neat_packing``) when set, else on for pt only."""
    if _setting(spec, "neat_packing", False):
        return True
    packing = spec.get("packing") if isinstance(spec, dict) else getattr(spec, "packing", None)
    return stage == "pt" if packing is None else bool(packing)


def _names(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def _check_fits_stage(entry: DatasetEntry, stage: str) -> None:
    if stage in ("rm", "dpo") and not entry.ranking:
        raise UserError(f"dataset '{entry.name}' is not ranking data; stage {stage} needs \"ranking\": true")
    if stage in ("pt", "sft", "ppo") and entry.ranking:
        raise UserError(f"dataset '{entry.name}' is ranking data; use it with stage rm or dpo")
    if stage == "kto" and entry.column("kto_tag") is None:
        raise UserError(f"dataset '{entry.name}' has no kto_tag column; stage kto needs one in its columns")


def _mix(parts: list[list[Example]], strategy: str, seed: int) -> list[Example]:
    """Combine several datasets: one after another, or interleaved round-robin."""
    if len(parts) == 1 or strategy == "concat":
        return [example for part in parts for example in part]
    if strategy == "interleave_under":
        rounds = min(len(part) for part in parts)
        return [part[i] for i in range(rounds) for part in parts]
    if strategy == "interleave_over":
        rounds = max(len(part) for part in parts)
        return [part[i % len(part)] for i in range(rounds) for part in parts]
    if strategy == "interleave_once":
        rounds = max(len(part) for part in parts)
        return [part[i] for i in range(rounds) for part in parts if i < len(part)]
    raise UserError(
        f"mix_strategy '{strategy}' is unknown; use concat, interleave_under, interleave_over or "
        "interleave_once"
    )


def load_examples(spec: TaskValues, names: str, stage: str) -> list[Example]:
    """Read, check and convert the comma-separated datasets ``names`` of a task, mixed as it asks."""
    dataset_dir = resolve_dataset_dir(_setting(spec, "dataset_dir"))
    info = read_dataset_info(dataset_dir)
    max_samples = _setting(spec, "max_samples")
    parts = []
    seed = int(_setting(spec, "seed", 42))
    for name in _names(names):
        entry = dataset_entry(name, dataset_dir, info)
        _check_fits_stage(entry, stage)
        rows = read_entry_rows(entry, dataset_dir, seed)  # num_samples drawn as LLaMA-Factory does
        if max_samples:
            rows = rows[:max_samples]
        parts.append(convert_rows(entry, rows, stage))
    if not parts:
        raise UserError("dataset is empty; name at least one dataset from dataset_info.json")
    return _mix(parts, _setting(spec, "mix_strategy", "concat"), int(_setting(spec, "seed", 42)))


def _split_eval(examples: list[Example], val_size: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out ``val_size`` (a fraction below 1 or a count) of the examples, chosen with ``seed``."""
    total = len(examples)
    count = round(total * val_size) if val_size < 1 else int(val_size)
    count = max(count, 1)
    if count >= total:
        raise UserError(
            f"val_size {val_size} leaves no training data out of {total} examples; use a smaller val_size"
        )
    order = list(range(total))
    random.Random(seed).shuffle(order)
    held_out = set(order[:count])
    train = [example for i, example in enumerate(examples) if i not in held_out]
    return train, [examples[i] for i in sorted(held_out)]


def _token_rows(
    examples: list[Example], spec: TaskValues, tokenizer: Any, template: Any, stage: str
) -> list[dict]:
    cutoff_len = int(_setting(spec, "cutoff_len", 2048))
    rows = []
    for example in examples:
        if stage == "pt":
            row = encode_pretrain(example, tokenizer, cutoff_len=cutoff_len)
        else:
            row = encode_supervised(
                example,
                tokenizer,
                template,
                cutoff_len=cutoff_len,
                train_on_prompt=bool(_setting(spec, "train_on_prompt", False)),
                mask_history=bool(_setting(spec, "mask_history", False)),
            )
        if row is not None:
            rows.append(row)
    if uses_packing(spec, stage):
        return pack_rows(rows, cutoff_len)
    return add_attention(rows)


def _preference_rows(
    examples: list[Example], spec: TaskValues, tokenizer: Any, template: Any, stage: str
) -> Any:
    """Token rows of every dpo / kto example, none dropped; logs how many were cut to cutoff_len."""
    from datasets import Dataset

    cutoff_len = int(_setting(spec, "cutoff_len", 2048))
    encode = encode_pairwise if stage == "dpo" else encode_feedback
    rows, cut = [], 0
    for example in examples:
        row, was_cut = encode(example, tokenizer, template, cutoff_len=cutoff_len)
        rows.append(row)
        cut += was_cut
    if cut:
        log.warning(
            "%d of %d %s examples were longer than cutoff_len %d and were truncated (none dropped)",
            cut,
            len(rows),
            stage,
            cutoff_len,
        )
    return Dataset.from_list(rows)


def _build(
    examples: list[Example], spec: TaskValues, tokenizer: Any, template: Any, stage: str
) -> tuple[Any, int]:
    """A datasets.Dataset for one split and the number of tokens that carry loss in it."""
    from datasets import Dataset

    if stage == "kto" or (stage == "dpo" and _setting(spec, "pref_loss", "sigmoid") in TOKENIZED_PAIR_LOSSES):
        return _preference_rows(examples, spec, tokenizer, template, stage), 0
    if stage in ("rm", "dpo"):
        return Dataset.from_list([preference_texts(e, tokenizer, template) for e in examples]), 0
    rows = _token_rows(examples, spec, tokenizer, template, stage)
    if not rows:
        raise UserError(
            "no example keeps a token to train on after cutoff_len truncation; "
            "raise cutoff_len or check the data"
        )
    return Dataset.from_list(rows), count_loss_tokens(rows)


def prepare_datasets(spec: TaskValues, tokenizer: Any, template: Any, *, stage: str) -> PreparedData:
    """Load, check, template and tokenize the task's training (and evaluation) data for ``stage``.

    ``spec`` is a TaskSpec (or a mapping of the same keys): dataset, dataset_dir, eval_dataset,
    val_size, max_samples, mix_strategy, cutoff_len, packing / neat_packing, train_on_prompt,
    mask_history and seed are used.
    """
    if stage not in STAGES:
        raise UserError(f"stage '{stage}' is unknown; use one of {', '.join(STAGES)}")
    # PPO rolls out from the same templated conversations as sft.
    stage_for_rows = "sft" if stage == "ppo" else stage
    examples = load_examples(spec, _setting(spec, "dataset"), stage)
    seed = int(_setting(spec, "seed", 42))
    eval_examples: list[Example] = []
    eval_names = _setting(spec, "eval_dataset")
    val_size = float(_setting(spec, "val_size", 0) or 0)
    if eval_names:
        eval_examples = load_examples(spec, eval_names, stage)
    elif val_size > 0:
        examples, eval_examples = _split_eval(examples, val_size, seed)
    train, num_tokens = _build(examples, spec, tokenizer, template, stage_for_rows)
    eval_set = _build(eval_examples, spec, tokenizer, template, stage_for_rows)[0] if eval_examples else None
    return PreparedData(train=train, eval=eval_set, num_train_tokens=num_tokens, num_examples=len(examples))
