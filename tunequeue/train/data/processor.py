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


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """How many prompt (source) and answer (target) tokens fit in ``cutoff_len``, LLaMA-Factory's rule.

    A short answer (under half the budget) is kept whole and the prompt is cut; else a short prompt is
    kept whole and the answer cut; else the budget is split in proportion to the two lengths
    (a 42-token prompt and a 982-token answer keep 3 + 61 tokens of a 64-token budget).
    """
    if target_len * 2 < cutoff_len:
        max_target = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target = cutoff_len - source_len
    else:
        max_target = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target = min(max_target, target_len)
    new_source = min(max(cutoff_len - new_target, 0), source_len)
    return new_source, new_target


def encode_supervised(
    example: Example,
    tokenizer: Any,
    template: Any,
    *,
    cutoff_len: int,
    train_on_prompt: bool,
    mask_history: bool,
) -> dict[str, list[int]] | None:
    """Input ids and labels of one conversation, cut to ``cutoff_len``; None when no token would train.

    Turns are cut one after another with `infer_seqlen` on the budget left; ``mask_history`` keeps the
    last turn first (it alone trains). Templates with ``efficient_eos`` end answers with no token: the
    next prompt's first label teaches EOS instead, and one EOS closes the sequence.
    """
    turns = template.encode_conversation(
        tokenizer,
        example["messages"],
        example.get("system"),
        example.get("tools") or None,
        discard_history_thoughts=mask_history and not getattr(template, "preserve_thinking", False),
    )
    efficient_eos = bool(getattr(template, "efficient_eos", False)) and tokenizer.eos_token_id is not None
    if turns and not turns[-1][1]:
        turns = turns[:-1]
    if mask_history:
        turns = turns[::-1]
    input_ids: list[int] = []
    labels: list[int] = []
    total = 1 if efficient_eos else 0
    for index, (prompt_ids, response_ids) in enumerate(turns):
        if total >= cutoff_len:
            break
        keep_prompt, keep_response = infer_seqlen(len(prompt_ids), len(response_ids), cutoff_len - total)
        prompt_ids, response_ids = prompt_ids[:keep_prompt], response_ids[:keep_response]
        total += keep_prompt + keep_response
        if train_on_prompt:
            prompt_labels = list(prompt_ids)
        elif efficient_eos and index != 0:
            prompt_labels = [tokenizer.eos_token_id] + [IGNORE_INDEX] * (keep_prompt - 1)
        else:
            prompt_labels = [IGNORE_INDEX] * keep_prompt
        response_labels = (
            [IGNORE_INDEX] * keep_response if mask_history and index != 0 else list(response_ids)
        )
        if mask_history:
            input_ids = prompt_ids + response_ids + input_ids
            labels = prompt_labels + response_labels + labels
        else:
            input_ids += prompt_ids + response_ids
            labels += prompt_labels + response_labels
    if efficient_eos:
        input_ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
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


def _answer_ids(tokenizer: Any, template: Any, messages: list[dict[str, str]], example: Example):
    """(prompt ids, answer ids) of a conversation whose last message is the answer, as LLaMA-Factory
    encodes a preference pair: EOS closes the answer only for ``efficient_eos`` templates."""
    prompt, answer = template.encode_oneturn(
        tokenizer, messages, example.get("system"), example.get("tools") or None
    )
    if getattr(template, "efficient_eos", False) and tokenizer.eos_token_id is not None:
        answer = answer + [tokenizer.eos_token_id]
    return prompt, answer


def encode_pairwise(example: Example, tokenizer: Any, template: Any, *, cutoff_len: int) -> tuple[dict, bool]:
    """``prompt_ids``, ``chosen_ids`` and ``rejected_ids`` of one ranking example, cut to ``cutoff_len``
    with `infer_seqlen` (the longer answer sets the answer budget); and whether anything was cut."""
    history = example["messages"]
    prompt, chosen = _answer_ids(
        tokenizer, template, [*history, {"role": "assistant", "content": example["chosen"]}], example
    )
    _, rejected = _answer_ids(
        tokenizer, template, [*history, {"role": "assistant", "content": example["rejected"]}], example
    )
    longest = max(len(chosen), len(rejected))
    keep_prompt, keep_answer = infer_seqlen(len(prompt), longest, cutoff_len)
    cut = keep_prompt < len(prompt) or keep_answer < longest
    row = {
        "prompt_ids": prompt[:keep_prompt],
        "chosen_ids": chosen[:keep_answer],
        "rejected_ids": rejected[:keep_answer],
    }
    return row, cut


def encode_feedback(example: Example, tokenizer: Any, template: Any, *, cutoff_len: int) -> tuple[dict, bool]:
    """``prompt_ids``, ``completion_ids`` and ``label`` of one KTO example, cut to ``cutoff_len`` with
    `infer_seqlen`; and whether anything was cut."""
    prompt, answer = _answer_ids(tokenizer, template, example["messages"], example)
    keep_prompt, keep_answer = infer_seqlen(len(prompt), len(answer), cutoff_len)
    cut = keep_prompt < len(prompt) or keep_answer < len(answer)
    row = {
        "prompt_ids": prompt[:keep_prompt],
        "completion_ids": answer[:keep_answer],
        "label": bool(example["label"]),
    }
    return row, cut


def preference_texts(example: Example, tokenizer: Any, template: Any) -> dict[str, str]:
    """Prompt, chosen and rejected text of one ranking example, templated, for trainers that tokenize
    text themselves (reward model, ORPO, SimPO)."""
    prompt, chosen = _prompt_and_answer(example, example["chosen"], tokenizer, template)
    _, rejected = _prompt_and_answer(example, example["rejected"], tokenizer, template)
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _prompt_and_answer(example: Example, answer: str, tokenizer: Any, template: Any) -> tuple[str, str]:
    messages = [*example["messages"], {"role": "assistant", "content": answer}]
    turns = template.text_turns(messages, example.get("system"), tokenizer)
    prompt = "".join(p + (r or "") for p, r in turns[:-1]) + turns[-1][0]
    completion = turns[-1][1] or ""
    if getattr(template, "efficient_eos", False) and tokenizer.eos_token:
        completion += tokenizer.eos_token
    return prompt, completion
