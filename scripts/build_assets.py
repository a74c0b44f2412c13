"""Rebuild the bundled demo assets under tunequeue/data/: demo datasets, tokenizer and tiny Llama.

Usage: ``python scripts/build_assets.py`` (deterministic: the same seed gives the same files).

The datasets are small, bilingual (English and Chinese) and learnable by a tiny model in a few steps:
integer addition, capitals of a fixed list of countries, translation of a fixed vocabulary and word
reversal. The byte-level BPE tokenizer is trained on exactly this text, and the model is a randomly
initialised (seeded) two-layer Llama whose tokenizer carries a ChatML chat template so that
``template: auto`` works.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "tunequeue" / "data"
DATASET_DIR = DATA_DIR / "datasets"
MODEL_DIR = DATA_DIR / "tiny-llama"
SEED = 1234

SYSTEM_EN = "You are a helpful assistant."
SYSTEM_ZH = "你是一个乐于助人的助手。"

COUNTRIES = [
    ("France", "Paris", "法国", "巴黎"),
    ("Japan", "Tokyo", "日本", "东京"),
    ("China", "Beijing", "中国", "北京"),
    ("Germany", "Berlin", "德国", "柏林"),
    ("Italy", "Rome", "意大利", "罗马"),
    ("Spain", "Madrid", "西班牙", "马德里"),
    ("Egypt", "Cairo", "埃及", "开罗"),
    ("Russia", "Moscow", "俄罗斯", "莫斯科"),
    ("Canada", "Ottawa", "加拿大", "渥太华"),
    ("Brazil", "Brasilia", "巴西", "巴西利亚"),
    ("India", "New Delhi", "印度", "新德里"),
    ("Korea", "Seoul", "韩国", "首尔"),
    ("Kenya", "Nairobi", "肯尼亚", "内罗毕"),
    ("Peru", "Lima", "秘鲁", "利马"),
    ("Greece", "Athens", "希腊", "雅典"),
    ("Norway", "Oslo", "挪威", "奥斯陆"),
]

WORDS = [
    ("cat", "猫"), ("dog", "狗"), ("water", "水"), ("fire", "火"), ("tree", "树"), ("book", "书"),
    ("sun", "太阳"), ("moon", "月亮"), ("apple", "苹果"), ("bird", "鸟"), ("fish", "鱼"), ("rain", "雨"),
    ("snow", "雪"), ("mountain", "山"), ("river", "河"), ("flower", "花"), ("house", "房子"),
    ("car", "汽车"), ("red", "红色"), ("blue", "蓝色"),
]


def make_pair(rng: random.Random, lang: str | None = None) -> tuple[str, str, str]:
    """One (category, prompt, response) example from a random task, in ``lang`` ("en"/"zh") or random."""
    lang = lang or rng.choice(["en", "zh"])
    kind = rng.choice(["add", "capital", "translate", "reverse"])
    if kind == "add":
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        if lang == "en":
            return "math", f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."
        return "math", f"{a}加{b}等于多少？", f"{a}加{b}等于{a + b}。"
    if kind == "capital":
        country, capital, country_zh, capital_zh = rng.choice(COUNTRIES)
        if lang == "en":
            return "qa", f"What is the capital of {country}?", f"The capital of {country} is {capital}."
        return "qa", f"{country_zh}的首都是哪里？", f"{country_zh}的首都是{capital_zh}。"
    word, word_zh = rng.choice(WORDS)
    if kind == "translate":
        if lang == "en":
            return "translate", f"Translate to Chinese: {word}", word_zh
        return "translate", f"把“{word_zh}”翻译成英文。", word
    if lang == "en":
        return "reverse", f"Reverse the letters of: {word}", word[::-1]
    return "reverse", f"把这个单词倒过来写：{word}", word[::-1]


def wrong_answer(rng: random.Random, response: str) -> str:
    """A plausible but wrong response for preference and KTO data."""
    for _ in range(10):
        _, _, other = make_pair(rng)
        if other != response:
            return other
    return response[::-1] + "?"


def system_for(rng: random.Random, lang_text: str) -> str | None:
    """A system prompt for roughly a third of the samples, in the sample's language."""
    if rng.random() >= 0.33:
        return None
    return SYSTEM_ZH if any("\u4e00" <= ch <= "\u9fff" for ch in lang_text) else SYSTEM_EN


def build_alpaca(rng: random.Random, n: int) -> list[dict]:
    """Alpaca rows: instruction/input/output, some with system and history."""
    rows = []
    for i in range(n):
        _, prompt, response = make_pair(rng)
        row: dict = {"instruction": prompt, "input": "", "output": response}
        if i % 5 == 1 and prompt.startswith("Translate to Chinese: "):
            row["instruction"] = "Translate to Chinese."
            row["input"] = prompt.removeprefix("Translate to Chinese: ")
        system = system_for(rng, prompt)
        if system:
            row["system"] = system
        if i % 4 == 0:
            _, hist_prompt, hist_response = make_pair(rng)
            row["history"] = [[hist_prompt, hist_response]]
        rows.append(row)
    return rows


def build_conversations(rng: random.Random, n: int) -> list[list[tuple[str, str]]]:
    """Conversations of 1–3 (prompt, response) turns."""
    return [[make_pair(rng)[1:] for _ in range(rng.randint(1, 3))] for _ in range(n)]


def build_sharegpt(rng: random.Random, n: int) -> list[dict]:
    """ShareGPT rows: conversations with from/value (human/gpt), optional system."""
    rows = []
    for conversation in build_conversations(rng, n):
        turns = []
        for prompt, response in conversation:
            turns += [{"from": "human", "value": prompt}, {"from": "gpt", "value": response}]
        row: dict = {"conversations": turns}
        system = system_for(rng, conversation[0][0])
        if system:
            row["system"] = system
        rows.append(row)
    return rows


def build_messages(rng: random.Random, n: int) -> list[dict]:
    """OpenAI-style rows: messages with role/content, a system message in some."""
    rows = []
    for conversation in build_conversations(rng, n):
        messages = []
        system = system_for(rng, conversation[0][0])
        if system:
            messages.append({"role": "system", "content": system})
        for prompt, response in conversation:
            messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        rows.append({"messages": messages})
    return rows


def build_firefly_jsonl(rng: random.Random, n: int) -> list[dict]:
    """Firefly JSONL rows: category plus a conversation list of human/assistant turns."""
    rows = []
    for _ in range(n):
        turns = [make_pair(rng) for _ in range(rng.randint(1, 2))]
        rows.append(
            {
                "category": turns[0][0],
                "conversation": [{"human": prompt, "assistant": response} for _, prompt, response in turns],
            }
        )
    return rows


def build_pairwise(rng: random.Random, n: int) -> list[dict]:
    """Alpaca ranking rows: instruction/input/chosen/rejected."""
    rows = []
    for _ in range(n):
        _, prompt, response = make_pair(rng)
        rejected = wrong_answer(rng, response)
        rows.append({"instruction": prompt, "input": "", "chosen": response, "rejected": rejected})
    return rows


def build_kto(rng: random.Random, n: int) -> list[dict]:
    """ShareGPT rows with a kto_tag: true for a correct answer, false for a wrong one."""
    rows = []
    for i in range(n):
        _, prompt, response = make_pair(rng)
        good = i % 2 == 0
        answer = response if good else wrong_answer(rng, response)
        rows.append(
            {
                "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}],
                "kto_tag": good,
            }
        )
    return rows


def build_pretrain(rng: random.Random, n: int) -> list[dict]:
    """Plain-text rows: short paragraphs of facts in English or Chinese."""
    rows = []
    for _ in range(n):
        lang = rng.choice(["en", "zh"])
        sentences = [make_pair(rng, lang)[2] for _ in range(rng.randint(2, 4))]
        country, capital, country_zh, capital_zh = rng.choice(COUNTRIES)
        if lang == "en":
            sentences.append(f"{capital} is a city in {country}.")
            rows.append({"text": " ".join(sentences)})
        else:
            sentences.append(f"{capital_zh}是{country_zh}的城市。")
            rows.append({"text": "".join(sentences)})
    return rows


DATASET_INFO = {
    "demo_alpaca": {"file_name": "demo_alpaca.json"},
    "demo_sharegpt": {
        "file_name": "demo_sharegpt.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system"},
    },
    "demo_messages": {
        "file_name": "demo_messages.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    },
    "demo_firefly": {
        "file_name": "demo_firefly.csv",
        "columns": {"prompt": "human", "response": "assistant"},
    },
    "demo_firefly_jsonl": {
        "file_name": "demo_firefly.jsonl",
        "formatting": "sharegpt",
        "columns": {"messages": "conversation"},
    },
    "demo_pairwise": {
        "file_name": "demo_pairwise.json",
        "ranking": True,
        "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
    },
    "demo_kto": {
        "file_name": "demo_kto.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "kto_tag": "kto_tag"},
    },
    "demo_pretrain": {"file_name": "demo_pretrain.json", "columns": {"prompt": "text"}},
}


def write_json(path: Path, rows: list[dict]) -> None:
    """Write rows as an indented UTF-8 JSON list."""
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def build_datasets() -> list[str]:
    """Write every demo dataset and dataset_info.json; return all their text for tokenizer training."""
    rng = random.Random(SEED)
    DATASET_DIR.mkdir(parents=True, exist_ok=True)
    datasets = {
        "demo_alpaca.json": build_alpaca(rng, 120),
        "demo_sharegpt.json": build_sharegpt(rng, 60),
        "demo_messages.json": build_messages(rng, 60),
        "demo_pairwise.json": build_pairwise(rng, 60),
        "demo_kto.json": build_kto(rng, 60),
        "demo_pretrain.json": build_pretrain(rng, 100),
    }
    for name, rows in datasets.items():
        write_json(DATASET_DIR / name, rows)

    firefly_rows = [make_pair(rng) for _ in range(60)]
    with open(DATASET_DIR / "demo_firefly.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["category", "human", "assistant"])
        writer.writerows(firefly_rows)
    firefly_jsonl = build_firefly_jsonl(rng, 40)
    with open(DATASET_DIR / "demo_firefly.jsonl", "w", encoding="utf-8") as handle:
        for row in firefly_jsonl:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    info_text = json.dumps(DATASET_INFO, indent=2) + "\n"
    (DATASET_DIR / "dataset_info.json").write_text(info_text, encoding="utf-8")

    corpus = []
    for rows in [*datasets.values(), firefly_jsonl]:
        corpus += [json.dumps(row, ensure_ascii=False) for row in rows]
    corpus += [",".join(row) for row in firefly_rows]
    # Also cover the words the chat templates put around messages, so rendered prompts stay short.
    corpus += [SYSTEM_EN, SYSTEM_ZH, "user assistant system Human Assistant USER ASSISTANT"]
    corpus += ["### Instruction:", "### Response:"]
    return corpus


CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer(corpus: list[str]):
    """Train a byte-level BPE tokenizer on the demo text and save it with a ChatML chat template."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=3000, min_frequency=1, special_tokens=SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=2048,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(MODEL_DIR)
    return tokenizer


def build_model(tokenizer) -> int:
    """Save a seeded, randomly initialised two-layer Llama matching the tokenizer; return its size."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(MODEL_DIR, safe_serialization=True)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.eos_token_id, im_end],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=32,
    ).save_pretrained(MODEL_DIR)
    return sum(p.numel() for p in model.parameters())


def main() -> int:
    """Rebuild everything and print a summary."""
    if MODEL_DIR.exists():
        shutil.rmtree(MODEL_DIR)
    MODEL_DIR.mkdir(parents=True)
    corpus = build_datasets()
    tokenizer = build_tokenizer(corpus)
    params = build_model(tokenizer)
    size = sum(p.stat().st_size for p in DATA_DIR.rglob("*") if p.is_file())
    print(f"vocab {len(tokenizer)}, params {params:,}, tunequeue/data {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
