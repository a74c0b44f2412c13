"""Padding batches to a multiple of 8 (the engine's GPU setting) changes shapes only, never the loss."""

from __future__ import annotations

import pytest

from tunequeue.train.data import make_collator, prepare_datasets
from tunequeue.train.templates import get_template


@pytest.mark.parametrize("packing", [False, True])
def test_multiple_of_8_keeps_loss_and_token_count(tiny_model_dir, tiny_tokenizer, packing):
    import torch
    from transformers import AutoModelForCausalLM

    template = get_template("auto", tiny_tokenizer)
    task = {"dataset": "demo_alpaca", "cutoff_len": 61, "packing": packing}
    data = prepare_datasets(task, tiny_tokenizer, template, stage="sft")
    rows = [data.train[i] for i in range(3)]
    exact = make_collator(tiny_tokenizer, packing=packing)(rows)
    rounded = make_collator(tiny_tokenizer, packing=packing, pad_to_multiple_of=8)(rows)
    longest = max(len(row["input_ids"]) for row in rows)
    assert exact["input_ids"].shape[1] == longest
    assert rounded["input_ids"].shape[1] % 8 == 0
    assert rounded["input_ids"].shape[1] - longest < 8
    assert set(rounded) == set(exact)
    assert (rounded["labels"] != -100).sum() == (exact["labels"] != -100).sum()
    pad = tiny_tokenizer.pad_token_id
    if "attention_mask" in exact:
        assert rounded["attention_mask"].sum() == exact["attention_mask"].sum()
    else:
        assert (rounded["input_ids"] != pad).sum() == (exact["input_ids"] != pad).sum()

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa").eval()
    with torch.no_grad():
        loss_exact = model(**exact, use_cache=False).loss
        loss_rounded = model(**rounded, use_cache=False).loss
    assert torch.allclose(loss_exact, loss_rounded, atol=1e-5)
