"""Each chat template renders a 2-turn conversation with a system prompt in its publisher's format."""

from __future__ import annotations

import pytest

from tunequeue.core.errors import UserError
from tunequeue.train.templates import TEMPLATES, get_template

SYSTEM = "Be brief."
MESSAGES = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]

EXPECTED = {
    # LLaMA-Factory's generic default format.
    "default": "System: Be brief.\nHuman: Hi\nAssistant: Hello!</s>\nHuman: 2+2?\nAssistant: 4</s>",
    "empty": "Be brief.Hi" "Hello!2+2?4",
    # Stanford Alpaca prompt (github.com/tatsu-lab/stanford_alpaca, PROMPT_DICT "prompt_no_input").
    "alpaca": (
        "Be brief.\n\n### Instruction:\nHi\n\n### Response:\nHello!</s>"
        "\n\n### Instruction:\n2+2?\n\n### Response:\n4</s>"
    ),
    # FastChat conversation template vicuna_v1.1 (sep " ", sep2 "</s>").
    "vicuna": "Be brief. USER: Hi ASSISTANT: Hello!</s>USER: 2+2? ASSISTANT: 4</s>",
    # Meta llama/generation.py chat_completion: B_INST/E_INST, B_SYS/E_SYS inside the first turn.
    "llama2": "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] 2+2? [/INST] 4 </s>",
    # Meta Llama 3 model card prompt format.
    "llama3": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>"
    ),
    # Qwen ChatML.
    "qwen": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
    ),
    # Yi chat uses ChatML as well.
    "yi": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
    ),
    # THUDM chatglm3-6b tokenizer chat template.
    "chatglm3": (
        "[gMASK]sop<|system|>\n Be brief.<|user|>\n Hi<|assistant|>\n Hello!"
        "<|user|>\n 2+2?<|assistant|>\n 4"
    ),
    # Mistral instruct format: <s>[INST] Instruction [/INST] Model answer</s>[INST] Follow-up [/INST].
    "mistral": "<s>[INST] Be brief.\n\nHi [/INST] Hello!</s>[INST] 2+2? [/INST] 4</s>",
    # Gemma formatting: <start_of_turn>user / model, <end_of_turn>; system text leads the first user turn.
    "gemma": (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n"
    ),
    # DeepSeek LLM chat README.
    "deepseek": (
        "<｜begin▁of▁sentence｜>Be brief.\n\nUser: Hi\n\nAssistant: Hello!<｜end▁of▁sentence｜>"
        "User: 2+2?\n\nAssistant: 4<｜end▁of▁sentence｜>"
    ),
    # Baichuan2 generation_utils.build_chat_input: system, then <reserved_106>/<reserved_107> per message.
    "baichuan2": "Be brief.<reserved_106>Hi<reserved_107>Hello!<reserved_106>2+2?<reserved_107>4",
    # Firefly template: user '<s>{content}</s>', assistant '{content}</s>', no system prompt.
    "firefly": "<s>Hi</s>Hello!</s><s>2+2?</s>4</s>",
}


def test_every_template_is_pinned():
    assert set(EXPECTED) == set(TEMPLATES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_render_matches_publisher_format(name):
    assert TEMPLATES[name].render(MESSAGES, SYSTEM) == EXPECTED[name]


def test_system_message_in_list_equals_system_argument():
    with_message = [{"role": "system", "content": SYSTEM}, *MESSAGES]
    for template in TEMPLATES.values():
        assert template.render(with_message) == template.render(MESSAGES, SYSTEM)


def test_default_system_prompts():
    assert TEMPLATES["qwen"].render(MESSAGES[:2]).startswith(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    )
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


def test_train_eos_is_appended_to_responses(tiny_tokenizer):
    turns = TEMPLATES["baichuan2"].encode_conversation(tiny_tokenizer, MESSAGES, SYSTEM)
    for _, response in turns:
        assert response[-1] == tiny_tokenizer.eos_token_id


def test_responses_end_with_real_eos_token(tiny_tokenizer):
    turns = TEMPLATES["default"].encode_conversation(tiny_tokenizer, MESSAGES, None)
    assert all(response[-1] == tiny_tokenizer.eos_token_id for _, response in turns)
    assert tiny_tokenizer.decode(turns[0][0]) == "Human: Hi\nAssistant:"


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
