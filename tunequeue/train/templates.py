"""Chat templates: how a conversation becomes the exact text (and token ids) a model was tuned on.

Each `Template` is a handful of format strings in the publisher's documented layout. ``{content}`` is the
message text, ``{bos}`` / ``{eos}`` are the tokenizer's begin/end-of-sequence tokens (when rendering text
without a tokenizer, the template's own spelling of them is used). Formats:

- ``prefix``: once, at the very start.
- ``system_format``: the system prompt, right after the prefix; ``None`` when the model has no system
  role, in which case ``system_merge`` (with ``{system}`` and ``{content}``) folds the system prompt into
  the first user message, or the system prompt is dropped when that is ``None`` too.
- ``user_format``: a user message *and* the cue that makes the model answer (the generation prompt).
- ``assistant_format``: the answer and whatever closes it.
- ``separator``: between one turn's answer and the next turn.

Training splits every turn into (prompt ids, response ids): the prompt carries no loss, the response does.
Templates whose publisher format ends an answer with no token at all (``train_eos``) get the tokenizer's
EOS appended to each response in training so that the model learns to stop.

``template: auto`` (or no template) uses the tokenizer's own ``chat_template`` through
``apply_chat_template``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from tunequeue.core.errors import UserError

Message = dict[str, str]
Turn = tuple[list[int], list[int]]


def _fill(fmt: str, *, content: str = "", bos: str = "", eos: str = "", system: str = "") -> str:
    """Fill a format string by plain replacement, so braces inside messages stay untouched."""
    head, sep, tail = fmt.partition("{content}")
    parts = [head, tail] if sep else [head]
    parts = [p.replace("{bos}", bos).replace("{eos}", eos).replace("{system}", system) for p in parts]
    return content.join(parts) if sep else parts[0]


def split_messages(messages: list[Message], system: str | None) -> tuple[str | None, list[Message]]:
    """Separate a leading system message from the turns; an explicit one wins over ``system``."""
    if messages and messages[0].get("role") == "system":
        return messages[0].get("content") or None, list(messages[1:])
    return system, list(messages)


def _check_roles(turns: list[Message]) -> None:
    """Turns must alternate user, assistant, user, … starting with a user message."""
    for index, message in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.get("role") != expected:
            raise UserError(
                f"message {index + 1} of a conversation has role '{message.get('role')}' where '{expected}' "
                "belongs; conversations must alternate user and assistant messages"
            )


@dataclass(frozen=True)
class Template:
    """One chat format; see the module docstring for what each format string means."""

    name: str
    user_format: str
    assistant_format: str
    system_format: str | None = "{content}"
    system_merge: str | None = None
    prefix: str = ""
    separator: str = ""
    default_system: str | None = None
    train_eos: bool = False
    render_bos: str = "<s>"
    render_eos: str = "</s>"
    stop_words: list[str] = field(default_factory=list)

    def _turn_texts(self, messages: list[Message], system: str | None, *, bos: str, eos: str):
        """Text of each (prompt, response) turn; the last response is None when the user speaks last."""
        system, turns = split_messages(messages, system)
        _check_roles(turns)
        if system is None:
            system = self.default_system
        pieces: list[tuple[str, str | None]] = []
        for index in range(0, len(turns), 2):
            user = turns[index]["content"]
            prompt = ""
            if index == 0:
                prompt += _fill(self.prefix, bos=bos, eos=eos)
                if system and self.system_format is not None:
                    prompt += _fill(self.system_format, content=system, bos=bos, eos=eos)
                elif system and self.system_merge is not None:
                    user = _fill(self.system_merge, content=user, system=system, bos=bos, eos=eos)
            else:
                prompt += _fill(self.separator, bos=bos, eos=eos)
            prompt += _fill(self.user_format, content=user, bos=bos, eos=eos)
            response = None
            if index + 1 < len(turns):
                response = _fill(self.assistant_format, content=turns[index + 1]["content"], bos=bos, eos=eos)
            pieces.append((prompt, response))
        return pieces

    def text_turns(
        self, messages: list[Message], system: str | None = None, tokenizer=None
    ) -> list[tuple[str, str | None]]:
        """Text of each (prompt, response) turn; the last response is None when the user speaks last.

        With a tokenizer, BOS/EOS are spelled as that tokenizer's tokens; without, as the publisher's.
        """
        if tokenizer is None:
            return self._turn_texts(messages, system, bos=self.render_bos, eos=self.render_eos)
        bos, eos = tokenizer.bos_token or "", tokenizer.eos_token or ""
        return self._turn_texts(messages, system, bos=bos, eos=eos)

    def render(self, messages: list[Message], system: str | None = None) -> str:
        """The conversation as text in this format; ends with the generation cue when the user spoke last."""
        return "".join(prompt + (response or "") for prompt, response in self.text_turns(messages, system))

    def encode_conversation(
        self, tokenizer, messages: list[Message], system: str | None = None
    ) -> list[Turn]:
        """Token ids of each turn as (prompt_ids, response_ids), using the tokenizer's own BOS/EOS."""
        bos = tokenizer.bos_token or ""
        eos = tokenizer.eos_token or ""
        turns: list[Turn] = []
        for prompt, response in self._turn_texts(messages, system, bos=bos, eos=eos):
            prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
            response_ids = []
            if response is not None:
                response_ids = tokenizer.encode(response, add_special_tokens=False)
            if response is not None and self.train_eos and tokenizer.eos_token_id is not None:
                response_ids.append(tokenizer.eos_token_id)
            turns.append((prompt_ids, response_ids))
        return turns


class AutoTemplate(Template):
    """The tokenizer's own chat template, applied through ``apply_chat_template``.

    Each turn's prompt is the text the chat template adds up to its generation cue; the response is the
    rest up to the next user message. Chat templates whose output for a prefix of a conversation is not a
    prefix of the whole conversation's output cannot be split this way and are refused.
    """

    def __init__(self, tokenizer) -> None:
        super().__init__(name="auto", user_format="{content}", assistant_format="{content}")
        object.__setattr__(self, "_tokenizer", tokenizer)

    def _chat_text(self, messages: list[Message], *, generation_prompt: bool) -> str:
        return self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )

    def _auto_turn_texts(self, messages: list[Message], system: str | None) -> list[tuple[str, str | None]]:
        system, turns = split_messages(messages, system)
        _check_roles(turns)
        head = [{"role": "system", "content": system}] if system else []
        pieces: list[tuple[str, str | None]] = []
        done = ""
        for index in range(0, len(turns), 2):
            with_cue = self._chat_text(head + turns[: index + 1], generation_prompt=True)
            if not with_cue.startswith(done):
                raise UserError(
                    "the tokenizer's chat template cannot be split into turns for training; "
                    "set template to a named one such as qwen or llama3"
                )
            prompt = with_cue[len(done) :]
            response = None
            if index + 1 < len(turns):
                full = self._chat_text(head + turns[: index + 2], generation_prompt=False)
                if not full.startswith(with_cue):
                    raise UserError(
                        "the tokenizer's chat template cannot be split into turns for training; "
                        "set template to a named one such as qwen or llama3"
                    )
                response = full[len(with_cue) :]
                done = full
            pieces.append((prompt, response))
        return pieces

    def text_turns(
        self, messages: list[Message], system: str | None = None, tokenizer=None
    ) -> list[tuple[str, str | None]]:
        """Text of each (prompt, response) turn as the tokenizer's chat template writes it."""
        return self._auto_turn_texts(messages, system)

    def render(self, messages: list[Message], system: str | None = None) -> str:
        """The conversation as the tokenizer's chat template renders it."""
        return "".join(p + (r or "") for p, r in self._auto_turn_texts(messages, system))

    def encode_conversation(
        self, tokenizer, messages: list[Message], system: str | None = None
    ) -> list[Turn]:
        """Token ids of each turn as (prompt_ids, response_ids)."""
        turns: list[Turn] = []
        for prompt, response in self._auto_turn_texts(messages, system):
            prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
            response_ids = tokenizer.encode(response, add_special_tokens=False) if response else []
            turns.append((prompt_ids, response_ids))
        return turns


CHATML_USER = "<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"
CHATML_ASSISTANT = "{content}<|im_end|>\n"
CHATML_SYSTEM = "<|im_start|>system\n{content}<|im_end|>\n"

TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in [
        # LLaMA-Factory's generic format for base models.
        Template(
            name="default",
            system_format="System: {content}\n",
            user_format="Human: {content}\nAssistant:",
            assistant_format=" {content}{eos}",
            separator="\n",
        ),
        Template(name="empty", user_format="{content}", assistant_format="{content}"),
        # Stanford Alpaca's prompt; later turns repeat the instruction/response block.
        Template(
            name="alpaca",
            system_format="{content}\n\n",
            user_format="### Instruction:\n{content}\n\n### Response:\n",
            assistant_format="{content}{eos}",
            separator="\n\n",
            default_system=(
                "Below is an instruction that describes a task. "
                "Write a response that appropriately completes the request."
            ),
        ),
        # FastChat vicuna_v1.1: system, then "USER: … ASSISTANT: …</s>" per turn.
        Template(
            name="vicuna",
            system_format="{content} ",
            user_format="USER: {content} ASSISTANT:",
            assistant_format=" {content}{eos}",
            default_system=(
                "A chat between a curious user and an artificial intelligence assistant. "
                "The assistant gives helpful, detailed, and polite answers to the user's questions."
            ),
        ),
        # Meta Llama 2 chat: every turn is <s>[INST] … [/INST] … </s>; <<SYS>> inside the first user turn.
        Template(
            name="llama2",
            system_format=None,
            system_merge="<<SYS>>\n{system}\n<</SYS>>\n\n{content}",
            user_format="{bos}[INST] {content} [/INST]",
            assistant_format=" {content} {eos}",
        ),
        # Meta Llama 3 header ids.
        Template(
            name="llama3",
            prefix="<|begin_of_text|>",
            system_format="<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>",
            user_format=(
                "<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
            assistant_format="{content}<|eot_id|>",
            stop_words=["<|eot_id|>"],
        ),
        # Qwen: ChatML with Qwen's default system prompt.
        Template(
            name="qwen",
            system_format=CHATML_SYSTEM,
            user_format=CHATML_USER,
            assistant_format=CHATML_ASSISTANT,
            default_system="You are a helpful assistant.",
            stop_words=["<|im_end|>"],
        ),
        # Yi chat: ChatML without a default system prompt.
        Template(
            name="yi",
            system_format=CHATML_SYSTEM,
            user_format=CHATML_USER,
            assistant_format=CHATML_ASSISTANT,
            stop_words=["<|im_end|>"],
        ),
        # ChatGLM3: [gMASK]sop, then <|role|>\n and the message; the next role token ends an answer.
        Template(
            name="chatglm3",
            prefix="[gMASK]sop",
            system_format="<|system|>\n {content}",
            user_format="<|user|>\n {content}<|assistant|>",
            assistant_format="\n {content}",
            train_eos=True,
            stop_words=["<|user|>", "<|observation|>"],
        ),
        # Mistral instruct: <s>[INST] … [/INST] answer</s>; a system prompt leads the first instruction.
        Template(
            name="mistral",
            prefix="{bos}",
            system_format=None,
            system_merge="{system}\n\n{content}",
            user_format="[INST] {content} [/INST]",
            assistant_format=" {content}{eos}",
        ),
        # Gemma: <start_of_turn>user/model; no system role, so it leads the first user turn.
        Template(
            name="gemma",
            prefix="<bos>",
            system_format=None,
            system_merge="{system}\n\n{content}",
            user_format="<start_of_turn>user\n{content}<end_of_turn>\n<start_of_turn>model\n",
            assistant_format="{content}<end_of_turn>\n",
            stop_words=["<end_of_turn>"],
        ),
        # DeepSeek LLM chat: "User: …\n\nAssistant: …<｜end▁of▁sentence｜>".
        Template(
            name="deepseek",
            prefix="{bos}",
            system_format="{content}\n\n",
            user_format="User: {content}\n\nAssistant:",
            assistant_format=" {content}{eos}",
            render_bos="<｜begin▁of▁sentence｜>",
            render_eos="<｜end▁of▁sentence｜>",
        ),
        # Baichuan2 chat: user token <reserved_106>, assistant token <reserved_107>.
        Template(
            name="baichuan2",
            user_format="<reserved_106>{content}<reserved_107>",
            assistant_format="{content}",
            train_eos=True,
        ),
        # Firefly: <s>question</s>answer</s>; Firefly's format has no system prompt.
        Template(
            name="firefly",
            system_format=None,
            user_format="{bos}{content}{eos}",
            assistant_format="{content}{eos}",
        ),
    ]
}


def template_names() -> list[str]:
    """Every name ``template`` accepts, ``auto`` included."""
    return ["auto", *TEMPLATES]


def get_template(name: str | None, tokenizer) -> Template:
    """The template called ``name``; ``None`` or ``"auto"`` means the tokenizer's own chat template."""
    if name is None or name == "auto":
        if not getattr(tokenizer, "chat_template", None):
            raise UserError(
                "the tokenizer has no chat template; set template to one of: " + ", ".join(TEMPLATES)
            )
        return AutoTemplate(tokenizer)
    if name in TEMPLATES:
        return TEMPLATES[name]
    closest = difflib.get_close_matches(name, template_names(), n=1, cutoff=0.0)[0]
    raise UserError(
        f"template '{name}' is unknown — use '{closest}' or one of: {', '.join(template_names())}"
    )
