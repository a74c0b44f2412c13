"""Chat templates: how a conversation becomes the exact text (and token ids) a model was tuned on.

The named templates follow LLaMA-Factory's template registry (same names, layouts, default system
prompts, stop words and EOS rules), so a task written for LLaMA-Factory trains on identical token ids.
Each `Template` is a table row of *slots*: tuples whose items are plain text (``{content}`` is the
message, ``{idx}`` the turn number), `BOS` / `EOS` (the tokenizer's own begin/end token, left out when
the tokenizer has none) or `Tok` (one special token by name). Text items are tokenized one by one,
as LLaMA-Factory does, which is what makes SentencePiece tokenizers put their word-start space where
the model expects it.

- ``prefix``: once, at the very start; ``system``: the system prompt (with the tools description
  appended), right after the prefix; with ``system_in_user`` the system text is fused into the first
  user message instead (Llama 2, Mistral, Gemma).
- ``user`` / ``observation``: a user or tool-result message *and* the cue that makes the model answer.
- ``assistant`` / ``function``: an answer or a tool call and whatever closes it. Without
  ``efficient_eos`` the default answer slot ends with the tokenizer's EOS; with it, answers end with
  nothing and training teaches the EOS at the next prompt's first position instead (and once at the end).
- ``replace_eos``: the tokenizer's EOS becomes the first stop word (``<|im_end|>``, ``<|eot_id|>`` …).
- ``reasoning``: thinking models (Qwen3, DeepSeek-R1 …). An answer without a thought gets an empty one
  (``<think>\\n\\n</think>\\n\\n``), in the prompt (no loss) unless ``enable_thinking`` is true;
  ``enable_thinking: false`` strips the thoughts found in the data.

``template: auto`` (or no template) uses the tokenizer's own ``chat_template`` through
``apply_chat_template``; `AutoTemplate` derives which text is prompt and which is answer from it.

This module imports nothing heavy: `TEMPLATES` and `template_names` list the accepted names.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tunequeue.core.errors import UserError
from tunequeue.train.tool_formats import TOOL_FORMATS, format_function_call, format_tools

if TYPE_CHECKING:
    from tunequeue.core.spec import TaskSpec

log = logging.getLogger(__name__)

Message = dict[str, str]
Turn = tuple[list[int], list[int]]


class _Special:
    """The tokenizer's BOS or EOS token inside a slot."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return self.kind.upper()


BOS = _Special("bos")
EOS = _Special("eos")


@dataclass(frozen=True)
class Tok:
    """One special token, looked up by name in the vocabulary."""

    text: str


Slot = tuple[Any, ...]

USER_ROLES = ("user", "observation")
ASSISTANT_ROLES = ("assistant", "function")


def split_messages(messages: list[Message], system: str | None) -> tuple[str | None, list[Message]]:
    """Separate a leading system message from the turns; an explicit one wins over ``system``."""
    if messages and messages[0].get("role") == "system":
        return messages[0].get("content") or None, list(messages[1:])
    return system, list(messages)


def _check_roles(turns: list[Message]) -> None:
    """Turns alternate user (or observation) and assistant (or function), starting with the user."""
    for index, message in enumerate(turns):
        expected = USER_ROLES if index % 2 == 0 else ASSISTANT_ROLES
        if message.get("role") not in expected:
            raise UserError(
                f"message {index + 1} of a conversation has role '{message.get('role')}' where "
                f"'{expected[0]}' belongs; conversations must alternate user and assistant messages"
            )


def _fill(slot: Slot, **values: str) -> list[Any]:
    """The slot with its placeholders filled, by plain replacement (braces in messages stay as they are)."""
    items = []
    for item in slot:
        if isinstance(item, str):
            for name, value in values.items():
                item = item.replace("{" + name + "}", value or "", 1)
        items.append(item)
    return items


@dataclass(frozen=True)
class Template:
    """One chat format; see the module docstring for what each field means."""

    name: str
    user: Slot = ("{content}",)
    assistant: Slot | None = None
    system: Slot | None = None
    function: Slot | None = None
    observation: Slot | None = None
    prefix: Slot = ()
    default_system: str = ""
    stop_words: tuple[str, ...] = ()
    efficient_eos: bool = False
    replace_eos: bool = False
    system_in_user: bool = False
    reasoning: bool = False
    enable_thinking: bool | None = True
    preserve_thinking: bool = False
    empty_thought: str | None = None
    thought_words: tuple[str, str] = ("<think>\n", "\n</think>\n\n")
    tool_format: str = "default"
    tools_wrap: tuple[str, str] | None = None
    render_bos: str = "<s>"
    render_eos: str = "</s>"
    notes: str = field(default="", compare=False)

    # ----- slots with LLaMA-Factory's defaults -------------------------------------------------
    @property
    def assistant_slot(self) -> Slot:
        """The answer slot; by default the content followed by EOS (nothing with efficient_eos)."""
        if self.assistant is not None:
            return self.assistant
        return ("{content}",) if self.efficient_eos else ("{content}", EOS)

    @property
    def system_slot(self) -> Slot:
        """The system slot; by default the system text alone."""
        return self.system if self.system is not None else ("{content}",)

    @property
    def function_slot(self) -> Slot:
        """The tool-call slot; by default the answer slot."""
        return self.function if self.function is not None else self.assistant_slot

    @property
    def observation_slot(self) -> Slot:
        """The tool-result slot; by default the user slot."""
        return self.observation if self.observation is not None else self.user

    def with_options(
        self,
        *,
        enable_thinking: bool | None = None,
        default_system: str | None = None,
        tool_format: str | None = None,
        preserve_thinking: bool | None = None,
    ) -> Template:
        """A copy with LLaMA-Factory's data options `enable_thinking`, `default_system`, `tool_format`."""
        changes: dict[str, Any] = {}
        if self.reasoning and enable_thinking is not None:
            changes["enable_thinking"] = enable_thinking
        if self.reasoning and preserve_thinking is not None:
            changes["preserve_thinking"] = preserve_thinking
        if default_system is not None:
            changes["default_system"] = default_system
        if tool_format is not None:
            if tool_format not in TOOL_FORMATS:
                raise UserError(
                    f"tool_format '{tool_format}' is unknown; use one of {', '.join(TOOL_FORMATS)}"
                )
            changes["tool_format"] = tool_format
            changes["function"] = ("{content}",) if self.efficient_eos else ("{content}", EOS)
        return replace(self, **changes) if changes else self

    # ----- messages → slot items -----------------------------------------------------------------
    def _message_items(
        self, messages: list[Message], system: str | None, tools: str | None
    ) -> list[list[Any]]:
        """Slot items of every message (prefix and system folded into the first one)."""
        system = system or self.default_system
        encoded = []
        for index, message in enumerate(messages):
            items: list[Any] = []
            system_text = ""
            if index == 0:
                items += list(self.prefix)
                if system or tools:
                    tool_text = ""
                    if tools and self.tools_wrap is not None:
                        tool_text = self.tools_wrap[0] + tools + self.tools_wrap[1]
                    elif tools:
                        tool_text = format_tools(self.tool_format, tools)
                    filled = _fill(self.system_slot, content=system + tool_text)
                    if self.system_in_user:
                        system_text = filled[0]
                    else:
                        items += filled
            role, content = message.get("role"), message.get("content") or ""
            if role == "user":
                items += _fill(self.user, content=system_text + content, idx=str(index // 2))
            elif role == "assistant":
                items += _fill(self.assistant_slot, content=content)
            elif role == "observation":
                items += _fill(self.observation_slot, content=content)
            elif role == "function":
                call = format_function_call(self.tool_format, content, self.thought_words)
                items += _fill(self.function_slot, content=call)
            else:
                raise UserError(f"a message has role '{role}'; use user, assistant, observation or function")
            encoded.append(items)
        return encoded

    @staticmethod
    def _items_to_ids(tokenizer: Any, items: list[Any]) -> list[int]:
        ids: list[int] = []
        for item in items:
            if isinstance(item, str):
                if item:
                    ids += tokenizer.encode(item, add_special_tokens=False)
            elif isinstance(item, Tok):
                ids.append(tokenizer.convert_tokens_to_ids(item.text))
            elif item is BOS and tokenizer.bos_token_id is not None:
                ids.append(tokenizer.bos_token_id)
            elif item is EOS and tokenizer.eos_token_id is not None:
                ids.append(tokenizer.eos_token_id)
        return ids

    def _items_to_text(self, items: list[Any], tokenizer: Any = None) -> str:
        text = ""
        for item in items:
            if isinstance(item, str):
                text += item
            elif isinstance(item, Tok):
                text += item.text
            elif item is BOS:
                text += (tokenizer.bos_token or "") if tokenizer is not None else self.render_bos
            elif item is EOS:
                text += (tokenizer.eos_token or "") if tokenizer is not None else self.render_eos
        return text

    # ----- thinking models -------------------------------------------------------------------------
    def add_thought(self, content: str = "") -> str:
        """``content`` after an empty thought (GLM-4.7 writes an empty thought as its closing tag alone)."""
        empty = (
            self.empty_thought
            if self.empty_thought is not None
            else self.thought_words[0] + self.thought_words[1]
        )
        return empty + content

    def remove_thought(self, content: str) -> str:
        """``content`` without its thought."""
        pattern = re.compile(
            f"{re.escape(self.thought_words[0])}(.*?){re.escape(self.thought_words[1])}", re.DOTALL
        )
        return re.sub(pattern, "", content).lstrip("\n")

    def _has_thought(self, content: str) -> bool:
        return self.thought_words[0].strip() in content or self.thought_words[1].strip() in content

    def _with_reasoning(self, message: Message) -> Message:
        """A copy of ``message``; an answer's ``reasoning_content`` (as chat APIs return it) becomes a
        thought in front of its content, as thinking models render it."""
        message = dict(message)
        reasoning = message.pop("reasoning_content", None)
        if reasoning and message.get("role") == "assistant":
            opening, closing = self.thought_words
            message["content"] = f"{opening}{reasoning.strip(chr(10))}{closing}{message.get('content') or ''}"
        return message

    def _prepared(self, messages: list[Message], system: str | None) -> tuple[str | None, list[Message]]:
        system, turns = split_messages(messages, system)
        _check_roles(turns)
        turns = [self._with_reasoning(message) for message in turns]
        if self.reasoning and self.enable_thinking is False:
            for message in turns[1::2]:
                message["content"] = self.remove_thought(message.get("content") or "")
        return system, turns

    # ----- public encoding ---------------------------------------------------------------------
    def encode_conversation(
        self,
        tokenizer: Any,
        messages: list[Message],
        system: str | None = None,
        tools: str | None = None,
        *,
        discard_history_thoughts: bool = False,
    ) -> list[Turn]:
        """Token ids of each turn as (prompt_ids, response_ids); the last response is empty when the
        user speaks last (the prompt then ends with the cue that makes the model answer).

        Thinking templates: ``discard_history_thoughts`` (training only the last turn, `mask_history`)
        removes the thoughts of earlier answers and gives only the last answer an empty thought.
        """
        system, turns = self._prepared(messages, system)
        if self.reasoning and discard_history_thoughts:
            for message in turns[1:-2:2]:
                message["content"] = self.remove_thought(message.get("content") or "")
        encoded = [
            self._items_to_ids(tokenizer, items) for items in self._message_items(turns, system, tools)
        ]
        last_answered = len(turns) - 2 if len(turns) % 2 == 0 else len(turns) - 1
        pairs: list[Turn] = []
        for index in range(0, len(encoded), 2):
            prompt = encoded[index]
            response = encoded[index + 1] if index + 1 < len(encoded) else []
            skip = discard_history_thoughts and index != last_answered
            if self.reasoning and not skip:
                answer = turns[index + 1]["content"] if index + 1 < len(turns) else ""
                if not self._has_thought(answer or ""):
                    thought = tokenizer.encode(self.add_thought(), add_special_tokens=False)
                    if index + 1 < len(turns) and self.enable_thinking:
                        response = thought + response
                    elif not self.enable_thinking:
                        prompt = prompt + thought
            pairs.append((prompt, response))
        return pairs

    def encode_oneturn(
        self, tokenizer: Any, messages: list[Message], system: str | None = None, tools: str | None = None
    ) -> tuple[list[int], list[int]]:
        """(prompt ids, answer ids) of a conversation ending with an answer: every earlier turn is prompt.

        Thinking models keep the thought of the final answer only (earlier ones are removed unless
        ``preserve_thinking``).
        """
        system, turns = split_messages(messages, system)
        _check_roles(turns)
        turns = [self._with_reasoning(message) for message in turns]
        if self.reasoning and not self.preserve_thinking:
            for message in turns[1:-1:2]:
                message["content"] = self.remove_thought(message.get("content") or "")
        if self.reasoning and self.enable_thinking is False:
            turns[-1]["content"] = self.remove_thought(turns[-1].get("content") or "")
        encoded = [
            self._items_to_ids(tokenizer, items) for items in self._message_items(turns, system, tools)
        ]
        prompt = [token for ids in encoded[:-1] for token in ids]
        response = encoded[-1]
        if self.reasoning and not self._has_thought(turns[-1].get("content") or ""):
            thought = tokenizer.encode(self.add_thought(), add_special_tokens=False)
            if self.enable_thinking:
                response = thought + response
            else:
                prompt = prompt + thought
        return prompt, response

    def text_turns(
        self,
        messages: list[Message],
        system: str | None = None,
        tokenizer: Any = None,
        tools: str | None = None,
    ) -> list[tuple[str, str | None]]:
        """Text of each (prompt, response) turn; the last response is None when the user speaks last.

        With a tokenizer, BOS/EOS are spelled as that tokenizer's tokens; without, as the publisher's.
        """
        system, turns = self._prepared(messages, system)
        texts = [self._items_to_text(items, tokenizer) for items in self._message_items(turns, system, tools)]
        pieces: list[tuple[str, str | None]] = []
        for index in range(0, len(texts), 2):
            prompt = texts[index]
            response = texts[index + 1] if index + 1 < len(texts) else None
            if self.reasoning:
                answer = turns[index + 1]["content"] if index + 1 < len(turns) else ""
                if not self._has_thought(answer or ""):
                    if response is not None and self.enable_thinking:
                        response = self.add_thought() + response
                    elif not self.enable_thinking:
                        prompt += self.add_thought()
            pieces.append((prompt, response))
        return pieces

    def render(self, messages: list[Message], system: str | None = None, tokenizer: Any = None) -> str:
        """The conversation as text in this format; ends with the generation cue when the user spoke last."""
        return "".join(p + (r or "") for p, r in self.text_turns(messages, system, tokenizer))

    # ----- tokenizer ---------------------------------------------------------------------------------
    def stop_token_ids(self, tokenizer: Any) -> list[int]:
        """EOS and the ids of this template's stop words that the vocabulary has."""
        ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        for word in self.stop_words:
            token_id = _vocab_id(tokenizer, word)
            if token_id is not None and token_id not in ids:
                ids.append(token_id)
        return ids

    def fix_tokenizer(self, tokenizer: Any) -> None:
        """Make the tokenizer's EOS the first stop word where the template says so (and the vocabulary
        has it), and give it a pad token; nothing is added to the vocabulary."""
        if self.replace_eos and self.stop_words:
            word = self.stop_words[0]
            if tokenizer.eos_token != word and _vocab_id(tokenizer, word) is not None:
                log.info("template %s: end-of-sequence token is now %s", self.name, word)
                tokenizer.eos_token = word
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token


def _vocab_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token`` when it is one entry of the vocabulary."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(token_id, int) or token_id < 0:
        return None
    if token_id == tokenizer.unk_token_id and token != tokenizer.unk_token:
        return None
    return token_id


class AutoTemplate(Template):
    """The tokenizer's own chat template, applied through ``apply_chat_template``.

    Each turn's prompt is the text the chat template adds up to its generation cue; the response is the
    rest up to the next user message. Chat templates whose output for a prefix of a conversation is not a
    prefix of the whole conversation's output cannot be split this way and are refused.
    """

    def __init__(self, tokenizer: Any, *, enable_thinking: bool | None = None) -> None:
        super().__init__(name="auto")
        object.__setattr__(self, "_tokenizer", tokenizer)
        object.__setattr__(self, "_thinking", enable_thinking)

    def _chat_text(self, messages: list[Message], *, generation_prompt: bool) -> str:
        extra = {} if self._thinking is None else {"enable_thinking": self._thinking}
        return self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt, **extra
        )

    def _auto_turn_texts(self, messages: list[Message], system: str | None) -> list[tuple[str, str | None]]:
        system, turns = split_messages(messages, system)
        _check_roles(turns)
        head = [{"role": "system", "content": system}] if system else []
        pieces: list[tuple[str, str | None]] = []
        done = ""
        refused = (
            "the tokenizer's chat template cannot be split into turns for training; "
            "set template to a named one such as qwen or llama3"
        )
        for index in range(0, len(turns), 2):
            with_cue = self._chat_text(head + turns[: index + 1], generation_prompt=True)
            if not with_cue.startswith(done):
                raise UserError(refused)
            prompt = with_cue[len(done) :]
            response = None
            if index + 1 < len(turns):
                full = self._chat_text(head + turns[: index + 2], generation_prompt=False)
                if not full.startswith(with_cue):
                    raise UserError(refused)
                response = full[len(with_cue) :]
                done = full
            pieces.append((prompt, response))
        return pieces

    def text_turns(
        self,
        messages: list[Message],
        system: str | None = None,
        tokenizer: Any = None,
        tools: str | None = None,
    ) -> list[tuple[str, str | None]]:
        """Text of each (prompt, response) turn as the tokenizer's chat template writes it."""
        return self._auto_turn_texts(messages, system)

    def render(self, messages: list[Message], system: str | None = None, tokenizer: Any = None) -> str:
        """The conversation as the tokenizer's chat template renders it."""
        return "".join(p + (r or "") for p, r in self._auto_turn_texts(messages, system))

    def encode_conversation(
        self,
        tokenizer: Any,
        messages: list[Message],
        system: str | None = None,
        tools: str | None = None,
        *,
        discard_history_thoughts: bool = False,
    ) -> list[Turn]:
        """Token ids of each turn as (prompt_ids, response_ids)."""
        turns: list[Turn] = []
        for prompt, response in self._auto_turn_texts(messages, system):
            prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
            response_ids = tokenizer.encode(response, add_special_tokens=False) if response else []
            turns.append((prompt_ids, response_ids))
        return turns

    def encode_oneturn(
        self, tokenizer: Any, messages: list[Message], system: str | None = None, tools: str | None = None
    ) -> tuple[list[int], list[int]]:
        """(prompt ids, answer ids): every turn before the final answer is prompt."""
        turns = self.encode_conversation(tokenizer, messages, system)
        prompt = [t for p, r in turns[:-1] for t in p + r] + turns[-1][0]
        return prompt, turns[-1][1]

    def stop_token_ids(self, tokenizer: Any) -> list[int]:
        """EOS plus the end-of-turn token that closes an answer in the chat template, when it has one."""
        ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        probe = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
        try:
            answer = self._auto_turn_texts(probe, None)[0][1] or ""
        except UserError:
            return ids
        closing = tokenizer.encode(answer.split("y", 1)[-1], add_special_tokens=False)
        if (
            closing
            and closing[0] not in ids
            and tokenizer.convert_ids_to_tokens(closing[0]) in tokenizer.all_special_tokens
        ):
            ids.append(closing[0])
        return ids

    def fix_tokenizer(self, tokenizer: Any) -> None:
        """Give the tokenizer a pad token; the chat template itself stays as it is."""
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token


# ----------------------------------------------------------------------------------------------------
# The registry. Layouts follow LLaMA-Factory 0.9.5's template table.


def _chatml(name: str, *, system: str = "", prefix: Slot = (), **kwargs: Any) -> Template:
    """A ChatML template (``<|im_start|>role\\n…<|im_end|>\\n``)."""
    kwargs.setdefault("stop_words", ("<|im_end|>",))
    return Template(
        name=name,
        user=("<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n",),
        assistant=("{content}<|im_end|>\n",),
        system=("<|im_start|>system\n{content}<|im_end|>\n",),
        observation=kwargs.pop(
            "observation", ("<|im_start|>tool\n{content}<|im_end|>\n<|im_start|>assistant\n",)
        ),
        prefix=prefix,
        default_system=system,
        **kwargs,
    )


def _qwen(name: str, *, system: str = "", **kwargs: Any) -> Template:
    """Qwen's ChatML: tool calls in <tool_call> tags, tool results as a user <tool_response>."""
    return _chatml(
        name,
        system=system,
        function=("{content}<|im_end|>\n",),
        observation=(
            "<|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
        ),
        tool_format=kwargs.pop("tool_format", "qwen"),
        replace_eos=True,
        **kwargs,
    )


def _llama3(name: str, *, system: str = "") -> Template:
    """Llama 3.x headers."""
    return Template(
        name=name,
        user=(
            "<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        assistant=("{content}<|eot_id|>",),
        system=("<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>",),
        function=("{content}<|eot_id|>",),
        observation=(
            "<|start_header_id|>ipython<|end_header_id|>\n\n{content}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        tool_format="llama3",
        prefix=(BOS,),
        default_system=system,
        stop_words=("<|eot_id|>", "<|eom_id|>"),
        replace_eos=True,
        render_bos="<|begin_of_text|>",
        render_eos="<|end_of_text|>",
    )


def _gemma(name: str, **kwargs: Any) -> Template:
    """Gemma turns; no system role, so the system text leads the first user message."""
    kwargs.setdefault("stop_words", ("<end_of_turn>",))
    return Template(
        name=name,
        user=("<start_of_turn>user\n{content}<end_of_turn>\n<start_of_turn>model\n",),
        assistant=("{content}<end_of_turn>\n",),
        system=("{content}\n\n",),
        observation=("<start_of_turn>tool\n{content}<end_of_turn>\n<start_of_turn>model\n",),
        prefix=(BOS,),
        system_in_user=True,
        render_bos="<bos>",
        render_eos="<eos>",
        **kwargs,
    )


def _glm4(name: str, **kwargs: Any) -> Template:
    """GLM-4: the next role token ends an answer."""
    return Template(
        name=name,
        user=("<|user|>\n{content}<|assistant|>",),
        assistant=("\n{content}",),
        system=("<|system|>\n{content}",),
        function=("{content}",),
        observation=("<|observation|>\n{content}<|assistant|>",),
        tool_format=kwargs.pop("tool_format", "glm4"),
        prefix=("[gMASK]<sop>",),
        stop_words=("<|user|>", "<|observation|>"),
        efficient_eos=True,
        render_eos="<|endoftext|>",
        **kwargs,
    )


def _mistral(name: str, *, space: bool) -> Template:
    """Mistral [INST] turns; ``space`` for the v3 SentencePiece layout, none for Tekken."""
    gap = " " if space else ""
    return Template(
        name=name,
        user=(f"[INST]{gap}{{content}}[/INST]",),
        assistant=(f"{gap}{{content}}", EOS) if space else None,
        system=("{content}\n\n",),
        function=(f"[TOOL_CALLS]{gap}{{content}}", EOS),
        observation=(f'[TOOL_RESULTS]{gap}{{"content": {{content}}}}[/TOOL_RESULTS]',),
        tool_format="mistral",
        prefix=(BOS,),
        system_in_user=True,
    )


_INTERN_SYSTEM = (
    "You are an AI assistant whose name is InternLM (书生·浦语).\n"
    "- InternLM (书生·浦语) is a conversational language model that is developed by Shanghai AI Laboratory "
    "(上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n"
    "- InternLM (书生·浦语) can understand and communicate fluently in the language "
    "chosen by the user such as English and 中文."
)
_VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
_DEEPSEEK_R1 = dict(
    user=("<｜User｜>{content}<｜Assistant｜>",),
    prefix=(BOS,),
    render_bos="<｜begin▁of▁sentence｜>",
    render_eos="<｜end▁of▁sentence｜>",
)
_GRANITE = dict(
    user=(
        "<|start_of_role|>user<|end_of_role|>{content}<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>",
    ),
    assistant=("{content}<|end_of_text|>\n",),
    system=("<|start_of_role|>system<|end_of_role|>{content}<|end_of_text|>\n",),
)

_REGISTRY: list[Template] = [
    # --- generic formats ---------------------------------------------------------------------------
    Template(
        name="default",
        user=("Human: {content}", EOS, "\nAssistant:"),
        assistant=("{content}", EOS, "\n"),
        system=("System: {content}", EOS, "\n"),
    ),
    Template(name="empty", assistant=("{content}",)),
    Template(
        name="alpaca",
        user=("### Instruction:\n{content}\n\n### Response:\n",),
        assistant=("{content}", EOS, "\n\n"),
        default_system=(
            "Below is an instruction that describes a task. "
            "Write a response that appropriately completes the request.\n\n"
        ),
    ),
    Template(name="vicuna", user=("USER: {content} ASSISTANT:",), default_system=_VICUNA_SYSTEM),
    Template(name="cpm", user=("<用户>{content}<AI>",), prefix=(BOS,)),
    Template(name="fewshot", assistant=("{content}\n\n",), efficient_eos=True),
    Template(
        name="firefly",
        user=(BOS, "{content}", EOS),
        system=("",),
        assistant=("{content}", EOS),
        notes="Firefly's own layout (not in LLaMA-Factory's table): <s>question</s>answer</s>.",
    ),
    Template(
        name="belle",
        user=("Human: {content}\n\nBelle: ",),
        assistant=("{content}", EOS, "\n\n"),
        prefix=(BOS,),
    ),
    Template(name="ziya", user=("<human>:{content}\n<bot>:",), assistant=("{content}\n",)),
    Template(name="xverse", user=("Human: {content}\n\nAssistant: ",)),
    Template(
        name="zephyr",
        user=("<|user|>\n{content}", EOS, "<|assistant|>\n"),
        system=("<|system|>\n{content}", EOS),
        default_system="You are Zephyr, a helpful assistant.",
    ),
    Template(
        name="solar",
        user=("### User:\n{content}\n\n### Assistant:\n",),
        system=("### System:\n{content}\n\n",),
        efficient_eos=True,
    ),
    Template(
        name="starchat",
        user=("<|user|>\n{content}<|end|>\n<|assistant|>",),
        assistant=("{content}<|end|>\n",),
        system=("<|system|>\n{content}<|end|>\n",),
        stop_words=("<|end|>",),
    ),
    Template(
        name="openchat", user=("GPT4 Correct User: {content}", EOS, "GPT4 Correct Assistant:"), prefix=(BOS,)
    ),
    Template(
        name="openchat-3.6",
        user=(
            "<|start_header_id|>GPT4 Correct User<|end_header_id|>\n\n{content}<|eot_id|>"
            "<|start_header_id|>GPT4 Correct Assistant<|end_header_id|>\n\n",
        ),
        prefix=(BOS,),
        stop_words=("<|eot_id|>",),
    ),
    Template(name="orion", user=("Human: {content}\n\nAssistant: ", EOS), prefix=(BOS,)),
    Template(
        name="aquila",
        user=("Human: {content}###Assistant:",),
        assistant=("{content}###",),
        system=("System: {content}###",),
        stop_words=("</s>",),
        default_system=(
            "A chat between a curious human and an artificial intelligence assistant. "
            "The assistant gives helpful, detailed, and polite answers to the human's questions."
        ),
    ),
    Template(
        name="atom", user=(BOS, "Human: {content}\n", EOS, BOS, "Assistant:"), assistant=("{content}\n", EOS)
    ),
    # --- ChatML families -------------------------------------------------------------------------------
    _chatml("chatml", stop_words=("<|im_end|>", "<|im_start|>"), replace_eos=True),
    _chatml("yi", observation=None),
    _chatml("smollm", observation=None),
    _chatml(
        "smollm2",
        system="You are a helpful AI assistant named SmolLM, trained by Hugging Face.",
        observation=None,
    ),
    _chatml("opencoder", system="You are OpenCoder, created by OpenCoder Team."),
    _chatml("cpm3", prefix=(BOS,)),
    _chatml("cpm4", prefix=(BOS,)),
    _chatml("falcon_h1", prefix=(BOS,), stop_words=("<|im_end|>", "<|end_of_text|>")),
    Template(**{**_chatml("intern2", system=_INTERN_SYSTEM, prefix=(BOS,)).__dict__, "observation": None}),
    Template(
        **{
            **_chatml("intern3", system=_INTERN_SYSTEM, prefix=(BOS,)).__dict__,
            "observation": None,
            "notes": "InternLM3 uses InternLM2's layout (LLaMA-Factory's intern2).",
        }
    ),
    Template(
        name="intern",
        user=("<|User|>:{content}\n<|Bot|>:",),
        assistant=("{content}<eoa>\n",),
        system=("<|System|>:{content}\n",),
        prefix=(BOS,),
        default_system=_INTERN_SYSTEM,
        stop_words=("<eoa>",),
    ),
    _qwen("qwen", system="You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
    _qwen("qwen3", reasoning=True),
    _qwen("qwen3_nothink"),
    _chatml("qwen2_audio", system="You are a helpful assistant.", observation=None, replace_eos=True),
    _qwen("mimo", system="You are a helpful assistant.", reasoning=True),
    Template(
        name="phi",
        user=("<|user|>\n{content}<|end|>\n<|assistant|>\n",),
        assistant=("{content}<|end|>\n",),
        system=("<|system|>\n{content}<|end|>\n",),
        stop_words=("<|end|>",),
        replace_eos=True,
    ),
    Template(
        name="phi_small",
        user=("<|user|>\n{content}<|end|>\n<|assistant|>\n",),
        assistant=("{content}<|end|>\n",),
        system=("<|system|>\n{content}<|end|>\n",),
        notes="LLaMA-Factory 0.9.5 declares an <|endoftext|> prefix that encodes to nothing; so does this.",
        stop_words=("<|end|>",),
        replace_eos=True,
    ),
    Template(
        name="phi4",
        user=("<|im_start|>user<|im_sep|>{content}<|im_end|><|im_start|>assistant<|im_sep|>",),
        assistant=("{content}<|im_end|>",),
        system=("<|im_start|>system<|im_sep|>{content}<|im_end|>",),
        stop_words=("<|im_end|>",),
        replace_eos=True,
        render_eos="<|endoftext|>",
    ),
    # --- Llama, Mistral, Gemma ---------------------------------------------------------------------------
    Template(
        name="llama2",
        user=(BOS, "[INST] {content} [/INST]"),
        system=("<<SYS>>\n{content}\n<</SYS>>\n\n",),
        system_in_user=True,
    ),
    Template(
        name="llama2_zh",
        user=(BOS, "[INST] {content} [/INST]"),
        system=("<<SYS>>\n{content}\n<</SYS>>\n\n",),
        system_in_user=True,
        default_system="You are a helpful assistant. 你是一个乐于助人的助手。",
    ),
    _llama3("llama3"),
    Template(
        name="llama4",
        user=(
            "<|header_start|>user<|header_end|>\n\n{content}<|eot|><|header_start|>assistant<|header_end|>\n\n",
        ),
        assistant=("{content}<|eot|>",),
        system=("<|header_start|>system<|header_end|>\n\n{content}<|eot|>",),
        function=("{content}<|eot|>",),
        observation=(
            "<|header_start|>ipython<|header_end|>\n\n{content}<|eot|>"
            "<|header_start|>assistant<|header_end|>\n\n",
        ),
        tool_format="llama3",
        prefix=(BOS,),
        stop_words=("<|eot|>", "<|eom|>"),
        replace_eos=True,
        render_bos="<|begin_of_text|>",
        render_eos="<|end_of_text|>",
    ),
    _mistral("mistral", space=True),
    _mistral("ministral", space=False),
    Template(
        name="mistral_small",
        user=("[INST]{content}[/INST]",),
        system=("[SYSTEM_PROMPT]{content}[/SYSTEM_PROMPT]",),
        function=("[TOOL_CALLS]{content}", EOS),
        observation=('[TOOL_RESULTS]{"content": {content}}[/TOOL_RESULTS]',),
        tool_format="mistral",
        prefix=(BOS,),
    ),
    Template(name="breeze", user=("[INST] {content} [/INST] ",), prefix=(BOS,), efficient_eos=True),
    _gemma("gemma", replace_eos=True),
    _gemma("gemma2", stop_words=("<eos>", "<end_of_turn>"), efficient_eos=True),
    _gemma("gemma3", replace_eos=True),
    # --- DeepSeek --------------------------------------------------------------------------------------
    Template(
        name="deepseek",
        user=("User: {content}\n\nAssistant:",),
        system=("{content}\n\n",),
        prefix=(BOS,),
        render_bos="<｜begin▁of▁sentence｜>",
        render_eos="<｜end▁of▁sentence｜>",
    ),
    Template(name="deepseek3", **_DEEPSEEK_R1),
    Template(name="deepseekr1", reasoning=True, **_DEEPSEEK_R1),
    Template(
        name="deepseekcoder",
        user=("### Instruction:\n{content}\n### Response:",),
        assistant=("\n{content}\n<|EOT|>\n",),
        prefix=(BOS,),
        default_system=(
            "You are an AI programming assistant, utilizing the DeepSeek Coder model, "
            "developed by DeepSeek Company, and you only answer questions related to computer "
            "science. For politically sensitive questions, security and privacy issues, "
            "and other non-computer science questions, you will refuse to answer.\n"
        ),
    ),
    # --- GLM -------------------------------------------------------------------------------------------
    _glm4("glm4"),
    _glm4("glm4_moe", tool_format="glm4_moe", reasoning=True),
    _glm4("glmz1", reasoning=True),
    Template(
        name="chatglm2",
        user=("[Round {idx}]\n\n问：{content}\n\n答：",),
        prefix=(Tok("[gMASK]"), Tok("sop")),
        efficient_eos=True,
    ),
    Template(
        name="chatglm3",
        user=(Tok("<|user|>"), "\n", "{content}", Tok("<|assistant|>")),
        assistant=("\n", "{content}"),
        system=(Tok("<|system|>"), "\n", "{content}"),
        function=("{content}",),
        observation=(Tok("<|observation|>"), "\n", "{content}", Tok("<|assistant|>")),
        tool_format="glm4",
        prefix=(Tok("[gMASK]"), Tok("sop")),
        stop_words=("<|user|>", "<|observation|>"),
        efficient_eos=True,
    ),
    Template(
        name="codegeex4",
        user=("<|user|>\n{content}<|assistant|>\n",),
        system=("<|system|>\n{content}",),
        function=("{content}",),
        observation=("<|observation|>\n{content}<|assistant|>\n",),
        tool_format="glm4",
        prefix=("[gMASK]<sop>",),
        stop_words=("<|user|>", "<|observation|>"),
        efficient_eos=True,
        default_system=(
            "你是一位智能编程助手，你叫CodeGeeX。你会为用户回答关于编程、代码、计算机方面的任何问题，"
            "并提供格式规范、可以执行、准确安全的代码，并在必要时提供详细的解释。"
        ),
    ),
    # --- other families --------------------------------------------------------------------------------
    Template(
        name="baichuan", user=(Tok("<reserved_102>"), "{content}", Tok("<reserved_103>")), efficient_eos=True
    ),
    Template(name="baichuan2", user=("<reserved_106>{content}<reserved_107>",), efficient_eos=True),
    Template(
        name="cohere",
        user=(
            "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{content}<|END_OF_TURN_TOKEN|>"
            "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
        ),
        system=("<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{content}<|END_OF_TURN_TOKEN|>",),
        prefix=(BOS,),
        render_bos="<BOS_TOKEN>",
        render_eos="<|END_OF_TURN_TOKEN|>",
    ),
    Template(
        name="olmo", user=("<|user|>\n{content}<|assistant|>\n",), prefix=(EOS,), render_eos="<|endoftext|>"
    ),
    Template(name="granite3", **_GRANITE),
    Template(
        name="granite4",
        **_GRANITE,
        function=("{content}<|end_of_text|>\n",),
        observation=(
            "<|start_of_role|>tool<|end_of_role|>{content}<|end_of_text|>\n<|start_of_role|>assistant\n",
        ),
        stop_words=("<|end_of_text|>",),
        default_system="You are Granite, developed by IBM. You are a helpful AI assistant.",
    ),
    Template(
        name="falcon", user=("User: {content}\nFalcon:",), assistant=("{content}\n",), efficient_eos=True
    ),
    Template(
        name="exaone",
        user=("[|user|]{content}\n[|assistant|]",),
        assistant=("{content}", EOS, "\n"),
        system=("[|system|]{content}[|endofturn|]\n",),
    ),
    Template(
        name="hunyuan",
        user=("{content}<|extra_0|>",),
        assistant=("{content}<|eos|>",),
        system=("{content}<|extra_4|>",),
        prefix=("<|startoftext|>",),
        stop_words=("<|eos|>",),
    ),
    Template(name="telechat", user=("<_user>{content}<_bot>",), system=("<_system>{content}<_end>",)),
    Template(
        name="yuan", user=("{content}", Tok("<sep>")), assistant=("{content}<eod>\n",), stop_words=("<eod>",)
    ),
    Template(
        name="seed_coder",
        user=(BOS, "user\n{content}", EOS, BOS, "assistant\n"),
        system=(BOS, "system\n{content}", EOS),
        default_system=(
            "You are an AI programming assistant, utilizing the Seed-Coder model, developed by "
            "ByteDance Seed, and you only answer questions related to computer science. For "
            "politically sensitive questions, security and privacy issues, and other non-computer "
            "science questions, you will refuse to answer.\n\n"
        ),
    ),
    Template(
        name="moonlight",
        user=("<|im_user|>user<|im_middle|>{content}<|im_end|><|im_assistant|>assistant<|im_middle|>",),
        assistant=("{content}<|im_end|>",),
        system=("<|im_system|>system<|im_middle|>{content}<|im_end|>",),
        default_system="You are a helpful assistant provided by Moonshot-AI.",
        stop_words=("<|im_end|>",),
        replace_eos=True,
    ),
    _qwen("qwen3_5", reasoning=True, tool_format="qwen3_5"),
    _qwen("qwen3_5_nothink", tool_format="qwen3_5"),
    _qwen("qwen3_6", reasoning=True, tool_format="qwen3_5"),
    _glm4(
        "glm4_7",
        tool_format="glm4_moe",
        reasoning=True,
        thought_words=("<think>", "</think>"),
        empty_thought="</think>",
    ),
    Template(
        name="phi4_mini",
        user=("<|user|>{content}<|end|><|assistant|>",),
        assistant=("{content}<|end|>",),
        system=("<|system|>{content}<|end|>",),
        tools_wrap=("<|tool|>", "<|/tool|>"),
        stop_words=("<|end|>",),
        replace_eos=True,
        render_eos="<|endoftext|>",
    ),
    Template(
        name="ministral3",
        user=("[INST]{content}[/INST]",),
        system=("{content}\n\n",),
        function=("[TOOL_CALLS]{content}", EOS),
        observation=('[TOOL_RESULTS]{"content": {content}}[/TOOL_RESULTS]',),
        tool_format="mistral",
        prefix=(BOS,),
        system_in_user=True,
    ),
    Template(
        name="hy3",
        user=("<｜hy_User｜>{content}<｜hy_Assistant｜>",),
        assistant=("{content}<｜hy_eos｜>",),
        prefix=(BOS,),
        stop_words=("<｜hy_eos｜>",),
        replace_eos=True,
        thought_words=("<think>", "</think>"),
        reasoning=True,
    ),
    Template(
        name="hunyuan_small",
        user=("<｜hy_User｜>{content}<｜hy_place▁holder▁no▁8｜>",),
        assistant=("{content}<｜hy_place▁holder▁no▁2｜>",),
        system=("{content}<｜hy_place▁holder▁no▁3｜>",),
        prefix=("<｜hy_begin▁of▁sentence｜>",),
        stop_words=("<｜hy_place▁holder▁no▁2｜>",),
    ),
    Template(
        name="gpt_oss",
        user=("<|start|>user<|message|>{content}<|end|><|start|>assistant",),
        assistant=("{content}",),
        system=("<|start|>system<|message|>{content}<|end|>",),
        default_system="You are ChatGPT, a large language model trained by OpenAI.",
        thought_words=(
            "<|channel|>analysis<|message|>",
            "<|end|><|start|>assistant<|channel|>final<|message|>",
        ),
        efficient_eos=True,
        reasoning=True,
    ),
]

TEMPLATES: dict[str, Template] = {template.name: template for template in _REGISTRY}


def template_names() -> list[str]:
    """Every name ``template`` accepts, ``auto`` included."""
    return ["auto", *TEMPLATES]


def _matching_name(template: AutoTemplate, tokenizer: Any) -> str | None:
    """The named template that renders a probe conversation exactly as the tokenizer's chat template does."""
    probe = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    try:
        wanted = template.render(probe, "Be brief.")
    except Exception:  # noqa: BLE001 - a chat template may raise anything from Jinja
        return None
    for name, candidate in TEMPLATES.items():
        if candidate.render(probe, "Be brief.", tokenizer) == wanted:
            return name
    return None


def get_template(
    name: str | None,
    tokenizer: Any,
    *,
    enable_thinking: bool | None = None,
    default_system: str | None = None,
    tool_format: str | None = None,
    preserve_thinking: bool | None = None,
    fix_tokenizer: bool = False,
) -> Template:
    """The template called ``name``; ``None`` or ``"auto"`` means the tokenizer's own chat template.

    With ``fix_tokenizer`` the tokenizer is set up as the template wants (EOS replaced by the first stop
    word where the template says so, a pad token), as training and generation need.
    """
    if name is None or name == "auto":
        if not getattr(tokenizer, "chat_template", None):
            raise UserError(
                "the tokenizer has no chat template; set template to one of: " + ", ".join(TEMPLATES)
            )
        template: Template = AutoTemplate(tokenizer, enable_thinking=enable_thinking)
        match = _matching_name(template, tokenizer)
        log.info(
            "template auto: using the tokenizer's chat template%s",
            f" (renders like '{match}')" if match else "",
        )
    elif name in TEMPLATES:
        template = TEMPLATES[name].with_options(
            enable_thinking=enable_thinking,
            default_system=default_system,
            tool_format=tool_format,
            preserve_thinking=preserve_thinking,
        )
        if template.reasoning:
            log.info(
                "template %s is a thinking template (enable_thinking: %s)", name, template.enable_thinking
            )
    else:
        closest = difflib.get_close_matches(name, template_names(), n=1, cutoff=0.0)[0]
        raise UserError(
            f"template '{name}' is unknown — use '{closest}' or one of: {', '.join(template_names())}"
        )
    if fix_tokenizer and tokenizer is not None:
        template.fix_tokenizer(tokenizer)
    return template


def template_for_spec(spec: TaskSpec, tokenizer: Any) -> Template:
    """The task's template with its data options (`enable_thinking`, `preserve_thinking`,
    `default_system`, `tool_format`), the tokenizer set up for it; train_on_prompt with a template that
    ends answers with no token is refused, as LLaMA-Factory refuses it."""
    extra = getattr(spec, "extra", None) or {}

    def option(key: str) -> Any:
        value = getattr(spec, key, None)
        return extra.get(key) if value is None else value

    thinking, preserve = option("enable_thinking"), option("preserve_thinking")
    template = get_template(
        getattr(spec, "template", None),
        tokenizer,
        enable_thinking=None if thinking is None else bool(thinking),
        default_system=option("default_system"),
        tool_format=option("tool_format"),
        preserve_thinking=None if preserve is None else bool(preserve),
        fix_tokenizer=True,
    )
    if template.efficient_eos and getattr(spec, "train_on_prompt", False):
        raise UserError(
            f"template {template.name} ends answers with no token, so train_on_prompt cannot be used "
            "with it; set train_on_prompt to false"
        )
    return template
