"""Named templates render exactly what the model families' own chat templates render.

Each family's published Jinja chat template (tests/fixtures/chat_templates) is set on a copy of the
bundled tokenizer carrying that family's special tokens; `apply_chat_template` and the named template
then render the same conversations, and the texts must be equal.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tunequeue.train.templates import TEMPLATES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "chat_templates"

SYSTEM = {"role": "system", "content": "Be brief."}
ONE = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! How can I help?"}]
TWO = [*ONE, {"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]

# template name -> (fixture, special tokens, bos, eos, whether the family has a system role)
FAMILIES = {
    "llama3": (
        "llama3.jinja",
        ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        "<|begin_of_text|>",
        "<|end_of_text|>",
        True,
    ),
    "gemma": ("gemma.jinja", ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"], "<bos>", "<eos>", False),
    "gemma2": (
        "gemma.jinja",
        ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"],
        "<bos>",
        "<eos>",
        False,
    ),
    "gemma3": (
        "gemma3.jinja",
        ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"],
        "<bos>",
        "<eos>",
        True,
    ),
    "phi4": (
        "phi4.jinja",
        ["<|im_start|>", "<|im_sep|>", "<|im_end|>", "<|endoftext|>"],
        None,
        "<|endoftext|>",
        True,
    ),
    "qwen": ("qwen2.5.jinja", ["<|im_start|>", "<|im_end|>", "<|endoftext|>"], None, "<|im_end|>", True),
    "qwen3": ("qwen3.jinja", ["<|im_start|>", "<|im_end|>", "<|endoftext|>"], None, "<|im_end|>", True),
}


def _family_tokenizer(tiny_tokenizer, name: str):
    fixture, tokens, bos, eos, _ = FAMILIES[name]
    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": tokens}, replace_extra_special_tokens=False)
    tokenizer.bos_token = bos
    tokenizer.eos_token = eos
    tokenizer.chat_template = (FIXTURES / fixture).read_text(encoding="utf-8")
    return tokenizer


def _conversations(name: str) -> list[list[dict]]:
    has_system = FAMILIES[name][4]
    cases = [ONE, TWO, TWO[:3]]
    if has_system:
        cases += [[SYSTEM, *ONE], [SYSTEM, *TWO], [SYSTEM, *TWO[:3]]]
    return cases


@pytest.mark.parametrize("name", sorted(set(FAMILIES) - {"qwen3"}))
def test_named_template_equals_family_chat_template(tiny_tokenizer, name):
    tokenizer = _family_tokenizer(tiny_tokenizer, name)
    template = TEMPLATES[name]
    for messages in _conversations(name):
        cue = messages[-1]["role"] == "user"
        expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=cue)
        assert template.render(messages, tokenizer=tokenizer) == expected, messages


def test_qwen3_thinking_matches_its_chat_template_on_the_answered_turn(tiny_tokenizer):
    """Qwen3 renders a thought (empty or not) before the answer that follows the last question;
    LLaMA-Factory's qwen3 template does the same for that answer (and also adds an empty one to
    earlier answers, which Qwen3's template leaves bare — a deliberate LLaMA-Factory choice)."""
    tokenizer = _family_tokenizer(tiny_tokenizer, "qwen3")
    thought = [
        ONE[0],
        {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\nHello! How can I help?"},
    ]
    field = [ONE[0], {"role": "assistant", "content": ONE[1]["content"], "reasoning_content": "Add them."}]
    for messages in ([*ONE], [SYSTEM, *ONE], thought, [SYSTEM, *thought], field):
        expected = tokenizer.apply_chat_template(messages, tokenize=False)
        assert TEMPLATES["qwen3"].render(messages, tokenizer=tokenizer) == expected
    cue = tokenizer.apply_chat_template([SYSTEM, ONE[0]], tokenize=False, add_generation_prompt=True)
    assert TEMPLATES["qwen3"].render([SYSTEM, ONE[0]], tokenizer=tokenizer) == cue
    no_thinking = tokenizer.apply_chat_template(
        [SYSTEM, ONE[0]], tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    off = TEMPLATES["qwen3"].with_options(enable_thinking=False)
    assert off.render([SYSTEM, ONE[0]], tokenizer=tokenizer) == no_thinking
    assert no_thinking.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_auto_names_the_matching_template(tiny_tokenizer, caplog):
    from tunequeue.train.templates import get_template

    tokenizer = _family_tokenizer(tiny_tokenizer, "llama3")
    with caplog.at_level("INFO", logger="tunequeue.train.templates"):
        template = get_template(None, tokenizer)
    assert "renders like 'llama3'" in caplog.text
    assert template.render(TWO) == TEMPLATES["llama3"].render(TWO, tokenizer=tokenizer)
