"""Each chat template renders a 2-turn conversation with a system prompt in its publisher's format."""

from __future__ import annotations

import json

import pytest

from tunequeue.core.errors import UserError
from tunequeue.train.data.processor import IGNORE_INDEX, encode_supervised, infer_seqlen
from tunequeue.train.templates import TEMPLATES, get_template, template_names

SYSTEM = "Be brief."
MESSAGES = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]

EXPECTED = {
    # LLaMA-Factory 0.9.5's layouts (src/llamafactory/data/template.py), rendered with the publisher's
    # spelling of BOS/EOS. SentencePiece tokenizers add the word-start space that llama2, mistral,
    # vicuna and deepseek show in their papers; these layouts leave it to the tokenizer.
    "default": (
        "System: Be brief.</s>\nHuman: Hi</s>\nAssistant:Hello!</s>\nHuman: 2+2?</s>\nAssistant:4</s>\n"
    ),
    "empty": "Be brief.HiHello!2+2?4",
    # The answer's EOS is followed by a trained blank line.
    "alpaca": (
        "Be brief.### Instruction:\nHi\n\n### Response:\nHello!</s>\n\n"
        "### Instruction:\n2+2?\n\n### Response:\n4</s>\n\n"
    ),
    "vicuna": "Be brief.USER: Hi ASSISTANT:Hello!</s>USER: 2+2? ASSISTANT:4</s>",
    "llama2": "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello!</s><s>[INST] 2+2? [/INST]4</s>",
    "llama3": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>"
    ),
    "qwen": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
    ),
    # Thinking template: answers without a thought get an empty one.
    "qwen3": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>\n"
    ),
    # No EOS between turns: the next role token ends an answer.
    "chatglm3": (
        "[gMASK]sop<|system|>\nBe brief.<|user|>\nHi<|assistant|>\nHello!<|user|>\n2+2?<|assistant|>\n4"
    ),
    "glm4": (
        "[gMASK]<sop><|system|>\nBe brief.<|user|>\nHi<|assistant|>\nHello!<|user|>\n2+2?<|assistant|>\n4"
    ),
    "mistral": "<s>[INST] Be brief.\n\nHi[/INST] Hello!</s>[INST] 2+2?[/INST] 4</s>",
    "ministral": "<s>[INST]Be brief.\n\nHi[/INST]Hello!</s>[INST]2+2?[/INST]4</s>",
    "gemma3": (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n"
    ),
    "phi4": (
        "<|im_start|>system<|im_sep|>Be brief.<|im_end|><|im_start|>user<|im_sep|>Hi<|im_end|>"
        "<|im_start|>assistant<|im_sep|>Hello!<|im_end|><|im_start|>user<|im_sep|>2+2?<|im_end|>"
        "<|im_start|>assistant<|im_sep|>4<|im_end|>"
    ),
    "deepseek": (
        "<｜begin▁of▁sentence｜>Be brief.\n\nUser: Hi\n\nAssistant:Hello!<｜end▁of▁sentence｜>"
        "User: 2+2?\n\nAssistant:4<｜end▁of▁sentence｜>"
    ),
    "deepseek3": (
        "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜>"
        "<｜User｜>2+2?<｜Assistant｜>4<｜end▁of▁sentence｜>"
    ),
    "baichuan2": "Be brief.<reserved_106>Hi<reserved_107>Hello!<reserved_106>2+2?<reserved_107>4",
    "cpm": "<s>Be brief.<用户>Hi<AI>Hello!</s><用户>2+2?<AI>4</s>",
    "falcon": "Be brief.User: Hi\nFalcon:Hello!\nUser: 2+2?\nFalcon:4\n",
    "olmo": (
        "<|endoftext|>Be brief.<|user|>\nHi<|assistant|>\nHello!<|endoftext|>"
        "<|user|>\n2+2?<|assistant|>\n4<|endoftext|>"
    ),
    # Firefly's own format has no system prompt.
    "firefly": "<s>Hi</s>Hello!</s><s>2+2?</s>4</s>",
}

FAMILIES = [
    "qwen3",
    "qwen3_nothink",
    "qwen",
    "llama3",
    "llama4",
    "gemma",
    "gemma2",
    "gemma3",
    "mistral",
    "ministral",
    "phi",
    "phi4",
    "deepseek",
    "deepseek3",
    "deepseekr1",
    "glm4",
    "chatglm3",
    "yi",
    "baichuan2",
    "intern2",
    "intern3",
    "cohere",
    "olmo",
    "granite3",
    "granite4",
    "falcon",
    "default",
    "alpaca",
    "vicuna",
    "empty",
    "cpm",
    "firefly",
    "qwen3_5",
    "qwen3_5_nothink",
    "qwen3_6",
    "glm4_7",
    "phi4_mini",
    "ministral3",
]


def test_the_families_people_train_are_registered():
    assert set(FAMILIES) <= set(TEMPLATES)
    assert template_names()[0] == "auto" and set(template_names()[1:]) == set(TEMPLATES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_render_matches_publisher_format(name):
    assert TEMPLATES[name].render(MESSAGES, SYSTEM) == EXPECTED[name]


def test_system_message_in_list_equals_system_argument():
    with_message = [{"role": "system", "content": SYSTEM}, *MESSAGES]
    for template in TEMPLATES.values():
        assert template.render(with_message) == template.render(MESSAGES, SYSTEM)


def test_default_system_prompts():
    qwen_system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    assert TEMPLATES["qwen"].render(MESSAGES[:2]).startswith(f"<|im_start|>system\n{qwen_system}<|im_end|>\n")
    assert TEMPLATES["qwen3"].render(MESSAGES[:2]).startswith("<|im_start|>user\n")
    assert TEMPLATES["vicuna"].render(MESSAGES[:2]).startswith("A chat between a curious user")
    assert TEMPLATES["yi"].render(MESSAGES[:2]).startswith("<|im_start|>user\n")


def test_generation_cue_when_user_speaks_last():
    assert TEMPLATES["qwen"].render(MESSAGES[:1], SYSTEM).endswith("<|im_start|>assistant\n")
    cue = "<|start_header_id|>assistant<|end_header_id|>\n\n"
    assert TEMPLATES["llama3"].render(MESSAGES[:3]).endswith(cue)


@pytest.mark.parametrize("name", ["qwen", "default", "alpaca", "llama2", "mistral"])
def test_encode_concatenation_decodes_to_rendering(name, tiny_tokenizer):
    template = TEMPLATES[name]
    turns = template.encode_conversation(tiny_tokenizer, MESSAGES, SYSTEM)
    assert len(turns) == 2
    ids = [i for prompt, response in turns for i in prompt + response]
    assert tiny_tokenizer.decode(ids) == template.render(MESSAGES, SYSTEM)


@pytest.mark.parametrize("name", ["chatglm3", "baichuan2", "glm4"])
def test_efficient_eos_trains_eos_without_putting_it_between_turns(tiny_tokenizer, name):
    template = TEMPLATES[name]
    eos = tiny_tokenizer.eos_token_id
    turns = template.encode_conversation(tiny_tokenizer, MESSAGES, SYSTEM)
    assert all(eos not in prompt + response for prompt, response in turns)
    row = encode_supervised(
        {"messages": MESSAGES, "system": SYSTEM},
        tiny_tokenizer,
        template,
        cutoff_len=1024,
        train_on_prompt=False,
        mask_history=False,
    )
    second_prompt_at = len(turns[0][0]) + len(turns[0][1])
    assert row["input_ids"].count(eos) == 1 and row["input_ids"][-1] == eos
    # The first token of the next prompt is labelled EOS: the model learns to stop after the answer.
    assert row["labels"][second_prompt_at] == eos and row["input_ids"][second_prompt_at] != eos
    assert row["labels"][-1] == eos


def test_responses_end_with_real_eos_token(tiny_tokenizer):
    turns = TEMPLATES["default"].encode_conversation(tiny_tokenizer, MESSAGES, None)
    newline = tiny_tokenizer.encode("\n", add_special_tokens=False)
    assert all(response[-1 - len(newline)] == tiny_tokenizer.eos_token_id for _, response in turns)
    assert tiny_tokenizer.decode(turns[0][0]) == "Human: Hi</s>\nAssistant:"


def test_auto_uses_tokenizer_chat_template(tiny_tokenizer):
    template = get_template(None, tiny_tokenizer)
    assert get_template("auto", tiny_tokenizer).render(MESSAGES, SYSTEM) == template.render(MESSAGES, SYSTEM)
    assert template.render(MESSAGES, SYSTEM) == EXPECTED["qwen"]
    assert template.render(MESSAGES, SYSTEM) == tiny_tokenizer.apply_chat_template(
        [{"role": "system", "content": SYSTEM}, *MESSAGES], tokenize=False
    )
    turns = template.encode_conversation(tiny_tokenizer, MESSAGES, SYSTEM)
    assert tiny_tokenizer.decode(turns[1][0]) == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert tiny_tokenizer.decode(turns[1][1]) == "4<|im_end|>\n"


def test_auto_without_chat_template_is_a_user_error(tiny_tokenizer):
    class NoTemplate:
        chat_template = None

    with pytest.raises(UserError, match="no chat template"):
        get_template("auto", NoTemplate())


def test_unknown_template_names_the_closest():
    with pytest.raises(UserError, match="use 'qwen'"):
        get_template("qwne", None)


def test_roles_must_alternate():
    with pytest.raises(UserError, match="alternate"):
        TEMPLATES["qwen"].render([{"role": "assistant", "content": "x"}])


THOUGHT = "<think>\nAdd them.\n</think>\n\n4"


def test_qwen3_thinking_trains_the_empty_thought_and_nothink_leaves_it_out(tiny_tokenizer):
    one = MESSAGES[:2]
    thinking = TEMPLATES["qwen3"].encode_conversation(tiny_tokenizer, one)
    empty = tiny_tokenizer.encode("<think>\n\n</think>\n\n", add_special_tokens=False)
    assert thinking[0][1][: len(empty)] == empty
    off = TEMPLATES["qwen3"].with_options(enable_thinking=False).encode_conversation(tiny_tokenizer, one)
    # enable_thinking: false puts the empty thought in the prompt, where it carries no loss.
    assert off[0][0][-len(empty) :] == empty and off[0][1][: len(empty)] != empty
    plain = TEMPLATES["qwen3_nothink"].encode_conversation(tiny_tokenizer, one)
    assert empty[0] not in plain[0][1] or plain[0][1][: len(empty)] != empty
    assert tiny_tokenizer.decode(plain[0][1]) == "Hello!<|im_end|>\n"


def test_reasoning_in_the_data_is_kept_or_stripped():
    with_thought = [MESSAGES[2], {"role": "assistant", "content": THOUGHT}]
    assert TEMPLATES["qwen3"].render(with_thought).endswith(THOUGHT + "<|im_end|>\n")
    stripped = TEMPLATES["qwen3"].with_options(enable_thinking=False).render(with_thought)
    assert "Add them." not in stripped
    assert stripped.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>\n")


def test_reasoning_content_field_becomes_the_thought():
    message = {"role": "assistant", "content": "4", "reasoning_content": "Add them."}
    assert TEMPLATES["qwen3"].render([MESSAGES[2], message]) == TEMPLATES["qwen3"].render(
        [MESSAGES[2], {"role": "assistant", "content": THOUGHT}]
    )


def test_oneturn_keeps_only_the_final_thought(tiny_tokenizer):
    history = [MESSAGES[0], {"role": "assistant", "content": "<think>\nold\n</think>\n\nHello!"}]
    prompt, answer = TEMPLATES["qwen3"].encode_oneturn(
        tiny_tokenizer, [*history, MESSAGES[2], {"role": "assistant", "content": THOUGHT}]
    )
    assert "old" not in tiny_tokenizer.decode(prompt)
    assert tiny_tokenizer.decode(answer) == THOUGHT + "<|im_end|>\n"


@pytest.mark.parametrize(
    ("source", "target", "cutoff", "kept"),
    [(42, 982, 64, (3, 61)), (10, 20, 100, (10, 20)), (100, 10, 64, (54, 10)), (20, 100, 64, (20, 44))],
)
def test_infer_seqlen_follows_llamafactory(source, target, cutoff, kept):
    assert infer_seqlen(source, target, cutoff) == kept


def test_long_answer_is_cut_in_proportion(tiny_tokenizer):
    """A 42-token prompt with a 982-token answer at cutoff 64 keeps 3 prompt and 61 answer tokens."""
    empty = TEMPLATES["empty"]
    prompt = " ".join(["a"] * 42)
    answer = " ".join(["a"] * 982)
    turns = empty.encode_conversation(
        tiny_tokenizer, [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    )
    assert (len(turns[0][0]), len(turns[0][1])) == (42, 982)
    row = encode_supervised(
        {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]},
        tiny_tokenizer,
        empty,
        cutoff_len=64,
        train_on_prompt=False,
        mask_history=False,
    )
    assert len(row["input_ids"]) == 64
    assert row["labels"][:3] == [IGNORE_INDEX] * 3 and IGNORE_INDEX not in row["labels"][3:]


def test_tool_calls_and_results_use_the_family_format(tiny_tokenizer):
    tools = json.dumps(
        [
            {
                "name": "add",
                "description": "Add numbers",
                "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            }
        ]
    )
    messages = [
        {"role": "user", "content": "1+1?"},
        {"role": "function", "content": '{"name": "add", "arguments": {"a": 1}}'},
        {"role": "observation", "content": "2"},
        {"role": "assistant", "content": "2"},
    ]
    text = "".join(p + (r or "") for p, r in TEMPLATES["qwen"].text_turns(messages, None, None, tools))
    assert '<tools>\n{"type": "function", "function": {"name": "add"' in text
    assert '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call><|im_end|>\n' in text
    assert (
        "<|im_start|>user\n<tool_response>\n2\n</tool_response><|im_end|>\n<|im_start|>assistant\n2" in text
    )
    default = "".join(p + (r or "") for p, r in TEMPLATES["default"].text_turns(messages, None, None, tools))
    assert "> Tool Name: add" in default and 'Action: add\nAction Input: {"a": 1}' in default
    for name, shown in (
        ("mistral", '[TOOL_RESULTS] {"content": 2}[/TOOL_RESULTS]'),
        ("ministral3", '[TOOL_RESULTS]{"content": 2}[/TOOL_RESULTS]'),
    ):
        assert shown in TEMPLATES[name].render(messages)
    # Families without a tool role of their own send tool results as a user turn.
    assert "<|im_start|>user\n2<|im_end|>" in TEMPLATES["yi"].render(messages)
    with pytest.raises(UserError, match="not valid JSON"):
        TEMPLATES["qwen"].render([messages[0], {"role": "function", "content": "add(1)"}])


def test_mask_history_keeps_only_the_last_thought(tiny_tokenizer):
    history = [MESSAGES[0], {"role": "assistant", "content": "<think>\nold\n</think>\n\nHello!"}]
    messages = [*history, MESSAGES[2], {"role": "assistant", "content": "4"}]
    turns = TEMPLATES["qwen3"].encode_conversation(tiny_tokenizer, messages, discard_history_thoughts=True)
    assert "old" not in tiny_tokenizer.decode(turns[0][1])
    assert "<think>" not in tiny_tokenizer.decode(turns[0][1])
    assert tiny_tokenizer.decode(turns[1][1]) == "<think>\n\n</think>\n\n4<|im_end|>\n"
    kept = TEMPLATES["qwen3"].with_options(preserve_thinking=True)
    row = encode_supervised(
        {"messages": messages},
        tiny_tokenizer,
        kept,
        cutoff_len=1024,
        train_on_prompt=False,
        mask_history=True,
    )
    assert "old" in tiny_tokenizer.decode(row["input_ids"])


def test_glm47_writes_an_empty_thought_as_its_closing_tag():
    text = TEMPLATES["glm4_7"].render(MESSAGES[:2])
    assert text.endswith("<|assistant|></think>\nHello!")


def test_train_on_prompt_is_refused_with_efficient_eos_templates(tiny_tokenizer):
    from types import SimpleNamespace

    from tunequeue.train.templates import template_for_spec

    spec = SimpleNamespace(template="chatglm3", train_on_prompt=True, extra={})
    with pytest.raises(UserError, match="train_on_prompt"):
        template_for_spec(spec, tiny_tokenizer)
