"""Templates whose layouts leave word-start spaces to the tokenizer, checked on a real SentencePiece one.

LLaMA-Factory's llama2, mistral, vicuna and deepseek layouts write no space where the publishers' prompt
formats show one (``ASSISTANT:`` then the answer); each slot is tokenized on its own, and a SentencePiece
tokenizer (Llama's, legacy mode) starts every piece with its word-start mark. A tiny SentencePiece BPE
model is trained here, loaded as a Llama tokenizer, and the token ids of our encoding are compared with
the ids of the publishers' text tokenized in one piece.
"""

from __future__ import annotations

import pytest

MESSAGES = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
]
SYSTEM = "Be brief."

PUBLISHED = {
    # FastChat vicuna_v1.1: system, " USER: … ASSISTANT: …</s>".
    "vicuna": f"{SYSTEM} USER: Hi ASSISTANT: Hello!</s>USER: What is 2+2? ASSISTANT: 4</s>",
    # Mistral instruct (tokenizer v3 layout).
    "mistral": f"<s>[INST] {SYSTEM}\n\nHi[/INST] Hello!</s>[INST] What is 2+2?[/INST] 4</s>",
    # Meta's Llama 2 chat_completion puts a space before every </s>.
    "llama2": (
        f"<s>[INST] <<SYS>>\n{SYSTEM}\n<</SYS>>\n\nHi [/INST] Hello! </s>"
        "<s>[INST] What is 2+2? [/INST] 4 </s>"
    ),
}


@pytest.fixture(scope="module")
def sp_tokenizer(tmp_path_factory):
    """A Llama tokenizer (legacy SentencePiece behaviour) over a freshly trained 400-piece BPE model."""
    import sentencepiece
    from transformers import LlamaTokenizer

    folder = tmp_path_factory.mktemp("sp")
    corpus = [
        "Hello! How can I help?",
        "What is 2+2? The answer is 4.",
        "Be brief. Hi there",
        "USER: ASSISTANT: User: Assistant: [INST] [/INST] <<SYS>> <</SYS>>",
    ] * 50
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=400,
        model_type="bpe",
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        character_coverage=1.0,
        minloglevel=2,
    )
    return LlamaTokenizer.from_pretrained(str(folder), legacy=True)


def _ours(tokenizer, name: str) -> list[int]:
    from tunequeue.train.templates import TEMPLATES

    turns = TEMPLATES[name].encode_conversation(tokenizer, MESSAGES, SYSTEM)
    return [token for prompt, response in turns for token in prompt + response]


def test_the_tokenizer_marks_word_starts(sp_tokenizer):
    assert (
        sp_tokenizer.convert_ids_to_tokens(sp_tokenizer.encode("Hello!", add_special_tokens=False))[0]
        == "▁Hello"
    )


@pytest.mark.parametrize("name", ["vicuna", "mistral"])
def test_piecewise_encoding_equals_the_published_format(sp_tokenizer, name):
    assert _ours(sp_tokenizer, name) == sp_tokenizer.encode(PUBLISHED[name], add_special_tokens=False)


def test_llama2_differs_only_by_the_space_meta_puts_before_eos(sp_tokenizer):
    published = sp_tokenizer.encode(PUBLISHED["llama2"], add_special_tokens=False)
    space = sp_tokenizer.convert_tokens_to_ids("▁")
    eos = sp_tokenizer.eos_token_id
    without = [t for i, t in enumerate(published) if not (t == space and published[i + 1 : i + 2] == [eos])]
    assert len(without) == len(published) - 2
    assert _ours(sp_tokenizer, "llama2") == without
