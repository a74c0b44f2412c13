"""prepare_datasets and the collator on the bundled demo data and on hand-written files."""

from __future__ import annotations

import json

import pytest

from tunequeue.core.errors import UserError
from tunequeue.train.data import IGNORE_INDEX, make_collator, prepare_datasets
from tunequeue.train.templates import TEMPLATES, get_template


@pytest.fixture(scope="module")
def chatml(tiny_tokenizer):
    return get_template("auto", tiny_tokenizer)


def _decode_trained(tokenizer, row):
    return tokenizer.decode([label for label in row["labels"] if label != IGNORE_INDEX])


@pytest.mark.parametrize(
    "dataset", ["demo_alpaca", "demo_sharegpt", "demo_messages", "demo_firefly", "demo_firefly_jsonl"]
)
def test_each_sft_format_masks_prompts(dataset, tiny_tokenizer, chatml):
    data = prepare_datasets({"dataset": dataset, "cutoff_len": 256}, tiny_tokenizer, chatml, stage="sft")
    assert data.num_examples == len(data.train) > 30
    assert data.eval is None
    row = data.train[0]
    assert set(row) == {"input_ids", "labels", "attention_mask"}
    assert len(row["input_ids"]) == len(row["labels"]) == len(row["attention_mask"])
    assert "<|im_start|>user" in tiny_tokenizer.decode(row["input_ids"])
    trained = _decode_trained(tiny_tokenizer, row)
    assert "<|im_start|>" not in trained and trained.endswith("<|im_end|>\n")
    assert data.num_train_tokens == sum(
        sum(1 for x in r["labels"][1:] if x != IGNORE_INDEX) for r in data.train
    )


def test_pretrain_trains_every_token_and_ends_with_eos(tiny_tokenizer, chatml):
    data = prepare_datasets(
        {"dataset": "demo_pretrain", "cutoff_len": 512, "packing": False}, tiny_tokenizer, chatml, stage="pt"
    )
    row = data.train[0]
    assert row["labels"] == row["input_ids"]
    assert row["input_ids"][-1] == tiny_tokenizer.eos_token_id
    assert data.num_train_tokens == sum(len(r["input_ids"]) - 1 for r in data.train)


@pytest.mark.parametrize(("dataset", "stage"), [("demo_alpaca", "sft"), ("demo_pretrain", "pt")])
def test_packing_trains_the_same_tokens(dataset, stage, tiny_tokenizer, chatml):
    spec = {"dataset": dataset, "cutoff_len": 96}
    plain = prepare_datasets({**spec, "packing": False}, tiny_tokenizer, chatml, stage=stage)
    packed = prepare_datasets({**spec, "packing": True}, tiny_tokenizer, chatml, stage=stage)
    assert plain.num_train_tokens == packed.num_train_tokens > 0
    assert plain.num_examples == packed.num_examples
    assert len(packed.train) < len(plain.train)
    assert sum(len(r["input_ids"]) for r in packed.train) == sum(len(r["input_ids"]) for r in plain.train)
    for row in packed.train:
        assert len(row["input_ids"]) <= 96
        starts = [i for i, p in enumerate(row["position_ids"]) if p == 0]
        assert starts[0] == 0
        assert all(row["labels"][i] == IGNORE_INDEX for i in starts)
        assert "attention_mask" not in row


def test_pt_packing_is_default_for_pt_only(tiny_tokenizer, chatml):
    pt = prepare_datasets({"dataset": "demo_pretrain", "cutoff_len": 128}, tiny_tokenizer, chatml, stage="pt")
    sft = prepare_datasets({"dataset": "demo_alpaca", "cutoff_len": 128}, tiny_tokenizer, chatml, stage="sft")
    assert "position_ids" in pt.train.column_names
    assert "position_ids" not in sft.train.column_names


def test_packed_rows_do_not_attend_across_samples(tiny_model_dir, tiny_tokenizer, chatml):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa").eval()
    a = tiny_tokenizer.encode("What is 3 plus 4?")
    b = tiny_tokenizer.encode("The capital of France is Paris.")
    packed = torch.tensor([a + b])
    positions = torch.tensor([list(range(len(a))) + list(range(len(b)))])
    # Training runs without a KV cache; with one, transformers skips the packed-sequence mask.
    with torch.no_grad():
        together = model(input_ids=packed, position_ids=positions, use_cache=False).logits[0, len(a) :]
        alone = model(input_ids=torch.tensor([b]), use_cache=False).logits[0]
    assert torch.allclose(together, alone, atol=1e-5)


def test_collator_pads_to_longest(tiny_tokenizer, chatml):
    data = prepare_datasets(
        {"dataset": "demo_alpaca", "cutoff_len": 128}, tiny_tokenizer, chatml, stage="sft"
    )
    rows = [data.train[i] for i in range(4)]
    batch = make_collator(tiny_tokenizer, packing=False)(rows)
    longest = max(len(r["input_ids"]) for r in rows)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (4, longest)
    short = min(range(4), key=lambda i: len(rows[i]["input_ids"]))
    n = len(rows[short]["input_ids"])
    if n < longest:
        assert batch["input_ids"][short, n:].eq(tiny_tokenizer.pad_token_id).all()
        assert batch["labels"][short, n:].eq(IGNORE_INDEX).all()
        assert batch["attention_mask"][short, n:].eq(0).all()

    packed = prepare_datasets(
        {"dataset": "demo_alpaca", "cutoff_len": 128, "packing": True}, tiny_tokenizer, chatml, stage="sft"
    )
    rows = [packed.train[i] for i in range(2)]
    batch = make_collator(tiny_tokenizer, packing=True)(rows)
    assert set(batch) == {"input_ids", "labels", "position_ids"}
    assert batch["position_ids"].shape == batch["input_ids"].shape
    assert set(make_collator(tiny_tokenizer, packing=False)(rows)) == set(batch)


def test_val_size_fraction_count_and_eval_dataset(tiny_tokenizer, chatml):
    spec = {"dataset": "demo_alpaca", "cutoff_len": 128, "seed": 7}
    frac = prepare_datasets({**spec, "val_size": 0.25}, tiny_tokenizer, chatml, stage="sft")
    assert len(frac.eval) == 30 and frac.num_examples == 90
    again = prepare_datasets({**spec, "val_size": 0.25}, tiny_tokenizer, chatml, stage="sft")
    assert again.eval["input_ids"] == frac.eval["input_ids"]
    count = prepare_datasets({**spec, "val_size": 10}, tiny_tokenizer, chatml, stage="sft")
    assert len(count.eval) == 10 and count.num_examples == 110
    separate = prepare_datasets({**spec, "eval_dataset": "demo_firefly"}, tiny_tokenizer, chatml, stage="sft")
    assert separate.num_examples == 120 and len(separate.eval) == 60
    with pytest.raises(UserError, match="val_size"):
        prepare_datasets({**spec, "val_size": 500}, tiny_tokenizer, chatml, stage="sft")


def test_mixing_and_max_samples(tiny_tokenizer, chatml):
    spec = {"dataset": "demo_alpaca, demo_sharegpt", "cutoff_len": 128, "max_samples": 5}
    data = prepare_datasets(spec, tiny_tokenizer, chatml, stage="sft")
    assert data.num_examples == 10
    over = prepare_datasets(
        {"dataset": "demo_alpaca,demo_firefly_jsonl", "mix_strategy": "interleave_under", "cutoff_len": 128},
        tiny_tokenizer,
        chatml,
        stage="sft",
    )
    assert over.num_examples == 80


def test_cutoff_len_truncates_and_keeps_some_response(tiny_tokenizer, chatml):
    data = prepare_datasets(
        {"dataset": "demo_sharegpt", "cutoff_len": 16}, tiny_tokenizer, chatml, stage="sft"
    )
    assert all(len(r["input_ids"]) <= 16 for r in data.train)
    assert all(any(x != IGNORE_INDEX for x in r["labels"][1:]) for r in data.train)


def test_train_on_prompt_and_mask_history(tiny_tokenizer, chatml, tmp_path):
    rows = [
        {
            "conversations": [
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hello"},
                {"from": "human", "value": "2+2?"},
                {"from": "gpt", "value": "4"},
            ]
        }
    ]
    (tmp_path / "chat.json").write_text(json.dumps(rows))
    (tmp_path / "dataset_info.json").write_text(
        json.dumps({"chat": {"file_name": "chat.json", "formatting": "sharegpt"}})
    )
    spec = {"dataset": "chat", "dataset_dir": str(tmp_path), "cutoff_len": 256}
    plain = prepare_datasets(spec, tiny_tokenizer, chatml, stage="sft").train[0]
    assert _decode_trained(tiny_tokenizer, plain) == "Hello<|im_end|>\n4<|im_end|>\n"
    last = prepare_datasets({**spec, "mask_history": True}, tiny_tokenizer, chatml, stage="sft").train[0]
    assert _decode_trained(tiny_tokenizer, last) == "4<|im_end|>\n"
    everything = prepare_datasets(
        {**spec, "train_on_prompt": True}, tiny_tokenizer, chatml, stage="sft"
    ).train[0]
    assert everything["labels"] == everything["input_ids"]


def test_named_template_is_used(tiny_tokenizer):
    data = prepare_datasets(
        {"dataset": "demo_firefly", "cutoff_len": 128}, tiny_tokenizer, TEMPLATES["alpaca"], stage="sft"
    )
    text = tiny_tokenizer.decode(data.train[0]["input_ids"])
    # LLaMA-Factory's alpaca layout: the answer ends with EOS and a trained blank line.
    assert text.startswith("Below is an instruction") and "### Response:\n" in text
    assert text.endswith("</s>\n\n")


def test_preference_and_kto_rows(tiny_tokenizer, chatml):
    pairs = prepare_datasets({"dataset": "demo_pairwise"}, tiny_tokenizer, chatml, stage="dpo")
    row = pairs.train[0]
    assert set(row) == {"prompt_ids", "chosen_ids", "rejected_ids"}
    assert tiny_tokenizer.decode(row["prompt_ids"]).endswith("<|im_start|>assistant\n")
    chosen = tiny_tokenizer.decode(row["chosen_ids"])
    assert chosen.endswith("<|im_end|>\n") and row["chosen_ids"] != row["rejected_ids"]
    orpo = {"dataset": "demo_pairwise", "pref_loss": "orpo"}
    texts = prepare_datasets(orpo, tiny_tokenizer, chatml, stage="dpo")
    assert set(texts.train[0]) == {"prompt", "chosen", "rejected"} and texts.train[0]["chosen"] == chosen
    kto = prepare_datasets({"dataset": "demo_kto"}, tiny_tokenizer, chatml, stage="kto")
    assert set(kto.train.column_names) == {"prompt_ids", "completion_ids", "label"}
    assert set(kto.train["label"]) == {True, False}
    with pytest.raises(UserError, match="ranking"):
        prepare_datasets({"dataset": "demo_alpaca"}, tiny_tokenizer, chatml, stage="dpo")
    with pytest.raises(UserError, match="kto_tag"):
        prepare_datasets({"dataset": "demo_alpaca"}, tiny_tokenizer, chatml, stage="kto")
    with pytest.raises(UserError, match="ranking data"):
        prepare_datasets({"dataset": "demo_pairwise"}, tiny_tokenizer, chatml, stage="sft")


def test_works_with_a_task_spec(tiny_tokenizer, chatml):
    from tunequeue.core.spec import TaskSpec

    spec = TaskSpec(
        task_name="data-check",
        model_name_or_path="tunequeue/tiny-llama",
        dataset="demo_alpaca",
        cutoff_len=64,
        val_size=0.1,
    )
    data = prepare_datasets(spec, tiny_tokenizer, chatml, stage="sft")
    assert data.eval is not None and data.num_train_tokens > 0
