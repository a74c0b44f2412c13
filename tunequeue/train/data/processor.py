"""Examples → token rows: templating, loss masks, truncation to cutoff_len and packing.

Label convention: ``-100`` marks a position without loss. The model shifts labels by one, so a row's
first label never carries loss; in packed rows the first label of every packed sample is set to
``-100`` as well, so that no sample learns from its predecessor's last token and packing on or off
trains exactly the same tokens (`count_loss_tokens`).
"""

from __future__ import annotations

import bisect
from typing import Any

from tunequeue.train.data.converter import Example, pretrain_text

IGNORE_INDEX = -100


def _split_budget(prompt_len: int, response_len: int, budget: int) -> tuple[int, int]:
    """How many prompt and response tokens fit in ``budget``; a long pair keeps half for the response."""
    if prompt_len + response_len <= budget:
        return prompt_len, response_len
    keep_response = min(response_len, max(budget - prompt_len, budget // 2))
    return budget - keep_response, keep_response


def encode_supervised(
    example: Example,
    tokenizer: Any,
    template: Any,
    *,
    cutoff_len: int,
    train_on_prompt: bool,
    mask_history: bool,
) -> dict[str, list[int]] | None:
    """Input ids and labels of one conversation, cut to ``cutoff_len``; None when no token would train."""
    turns = template.encode_conversation(tokenizer, example["messages"], example.get("system"))
    input_ids: list[int] = []
    labels: list[int] = []
    last = len(turns) - 1
    for index, (prompt_ids, response_ids) in enumerate(turns):
        budget = cutoff_len - len(input_ids)
        if budget <= 0:
            break
        keep_prompt, keep_response = _split_budget(len(prompt_ids), len(response_ids), budget)
        prompt_ids, response_ids = prompt_ids[:keep_prompt], response_ids[:keep_response]
        input_ids += prompt_ids + response_ids
        labels += prompt_ids if train_on_prompt else [IGNORE_INDEX] * len(prompt_ids)
        if mask_history and index != last:
            labels += [IGNORE_INDEX] * len(response_ids)
        else:
            labels += response_ids
    if not any(label != IGNORE_INDEX for label in labels[1:]):
        return None
    return {"input_ids": input_ids, "labels": labels}


def encode_pretrain(example: Example, tokenizer: Any, *, cutoff_len: int) -> dict[str, list[int]] | None:
    """Input ids (with the tokenizer's BOS when it adds one, and EOS) of one text, cut to ``cutoff_len``."""
    ids = tokenizer.encode(pretrain_text(example), add_special_tokens=True)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    ids = ids[:cutoff_len]
    if len(ids) < 2:
        return None
    return {"input_ids": ids, "labels": list(ids)}


def count_loss_tokens(rows: list[dict[str, list[int]]]) -> int:
    """Tokens that carry loss after the model's one-position shift."""
    return sum(sum(1 for label in row["labels"][1:] if label != IGNORE_INDEX) for row in rows)


def add_attention(rows: list[dict[str, list[int]]]) -> list[dict[str, list[int]]]:
    """Unpacked rows: an all-ones attention mask (padding is added per batch by the collator)."""
    return [{**row, "attention_mask": [1] * len(row["input_ids"])} for row in rows]


def pack_rows(rows: list[dict[str, list[int]]], cutoff_len: int) -> list[dict[str, list[int]]]:
    """Pack rows into sequences of at most ``cutoff_len`` tokens (best fit, longest first).

    Each packed sequence has ``position_ids`` restarting at 0 for every sample. Passed without an
    attention mask, transformers derives a block-diagonal causal mask from them (sdpa, eager) or uses
    variable-length kernels (flash attention), so packed samples never attend to each other.
    """
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]), reverse=True)
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (free space, bin index), sorted
    for index in order:
        length = len(rows[index]["input_ids"])
        slot = bisect.bisect_left(free, (length, -1))
        if slot < len(free):
            space, bin_index = free.pop(slot)
            bins[bin_index].append(index)
            bisect.insort(free, (space - length, bin_index))
        else:
            bins.append([index])
            bisect.insort(free, (cutoff_len - length, len(bins) - 1))
    packed = []
    for members in bins:
        input_ids: list[int] = []
        labels: list[int] = []
        position_ids: list[int] = []
        for index in members:
            row = rows[index]
            input_ids += row["input_ids"]
            labels += [IGNORE_INDEX] + row["labels"][1:]
            position_ids += list(range(len(row["input_ids"])))
        packed.append({"input_ids": input_ids, "labels": labels, "position_ids": position_ids})
    return packed


def preference_texts(example: Example, tokenizer: Any, template: Any) -> dict[str, str]:
    """Prompt, chosen and rejected text of one ranking example, templated, for TRL's trainers."""
    prompt, chosen = _prompt_and_answer(example, example["chosen"], tokenizer, template)
    _, rejected = _prompt_and_answer(example, example["rejected"], tokenizer, template)
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def kto_texts(example: Example, tokenizer: Any, template: Any) -> dict[str, Any]:
    """Prompt, completion and desirability label of one KTO example, templated, for TRL's KTOTrainer."""
    messages = example["messages"]
    prompt, completion = _prompt_and_answer(
        {**example, "messages": messages[:-1]}, messages[-1]["content"], tokenizer, template
    )
    return {"prompt": prompt, "completion": completion, "label": bool(example["label"])}


def _prompt_and_answer(example: Example, answer: str, tokenizer: Any, template: Any) -> tuple[str, str]:
    messages = [*example["messages"], {"role": "assistant", "content": answer}]
    turns = template.text_turns(messages, example.get("system"), tokenizer)
    prompt = "".join(p + (r or "") for p, r in turns[:-1]) + turns[-1][0]
    completion = turns[-1][1] or ""
    if getattr(template, "train_eos", False) and tokenizer.eos_token:
        completion += tokenizer.eos_token
    return prompt, completion
