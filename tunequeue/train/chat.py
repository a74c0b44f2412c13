"""Terminal chat with a local model (+ LoRA adapter): streamed replies, history and a system prompt.

`ChatSession` keeps the conversation, renders it with the chosen template (``auto`` = the tokenizer's
own chat template) and streams the reply through transformers' `TextIteratorStreamer` while
`generate` runs in a thread. `chat_loop` reads user lines from any text stream (a terminal or a pipe):
``/clear`` forgets the history, ``/exit`` (or end of input) ends the chat.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

from tunequeue.core.errors import UserError

CLEAR_COMMAND = "/clear"
EXIT_COMMAND = "/exit"


class ChatSession:
    """One conversation with a loaded model."""

    def __init__(
        self,
        model_path: str,
        adapter: str | None = None,
        *,
        template: str | None = None,
        system: str | None = None,
        max_new_tokens: int = 512,
        temperature: float = 0.95,
        top_p: float = 0.7,
        do_sample: bool = True,
        device: str = "auto",
    ) -> None:
        from tunequeue.train.assets import resolve_model_path
        from tunequeue.train.inference import (
            inference_device,
            load_inference_model,
            load_tokenizer_for,
            split_adapters,
        )
        from tunequeue.train.templates import get_template

        self.tokenizer = load_tokenizer_for(resolve_model_path(model_path), split_adapters(adapter))
        self.template = get_template(template, self.tokenizer, fix_tokenizer=True)
        self.device = inference_device(device)
        self.model = load_inference_model(model_path, adapter, device=self.device)
        self.system = system
        self.history: list[dict[str, str]] = []
        sample = do_sample and temperature > 0
        from tunequeue.train.evaluate import _stop_ids

        self.generation: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": sample,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": list(
                dict.fromkeys(_stop_ids(self.tokenizer) + self.template.stop_token_ids(self.tokenizer))
            ),
        }
        if sample:
            self.generation.update(temperature=temperature, top_p=top_p)
        else:
            self.generation.update(temperature=None, top_p=None, top_k=None)

    def clear(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        self.history.clear()

    def prompt_ids(self, message: str) -> list[int]:
        """Token ids of the conversation so far plus `message`, ending at the assistant's cue."""
        messages = [*self.history, {"role": "user", "content": message}]
        turns = self.template.encode_conversation(self.tokenizer, messages, self.system)
        return [token for prompt, response in turns for token in prompt + response]

    def stream_reply(self, message: str) -> Iterator[str]:
        """Yield the reply to `message` piece by piece; the full reply joins the history at the end."""
        import torch
        from transformers import TextIteratorStreamer

        ids = torch.tensor([self.prompt_ids(message)], device=self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "streamer": streamer,
            **self.generation,
        }
        errors: list[BaseException] = []

        def generate() -> None:
            try:
                with torch.no_grad():
                    self.model.generate(**kwargs)
            except BaseException as err:  # re-raised in the caller's thread
                errors.append(err)
                streamer.end()

        worker = threading.Thread(target=generate, name="chat-generate", daemon=True)
        worker.start()
        pieces = []
        for piece in streamer:
            pieces.append(piece)
            yield piece
        worker.join()
        if errors:
            raise errors[0]
        self.history += [
            {"role": "user", "content": message},
            {"role": "assistant", "content": "".join(pieces).strip()},
        ]


def chat_loop(session: ChatSession, lines: IO[str] | None = None, out: IO[str] | None = None) -> int:
    """Read user lines from `lines` and stream the replies to `out` until /exit or end of input."""
    lines = sys.stdin if lines is None else lines
    out = sys.stdout if out is None else out
    interactive = hasattr(lines, "isatty") and lines.isatty()
    out.write(f"chat started; {CLEAR_COMMAND} clears the history, {EXIT_COMMAND} quits\n")
    while True:
        if interactive:
            out.write("User: ")
            out.flush()
        line = lines.readline()
        if not line:
            break
        message = line.strip()
        if not message:
            continue
        if message == EXIT_COMMAND:
            break
        if message == CLEAR_COMMAND:
            session.clear()
            out.write("history cleared\n")
            out.flush()
            continue
        out.write("Assistant: ")
        out.flush()
        for piece in session.stream_reply(message):
            out.write(piece)
            out.flush()
        out.write("\n")
        out.flush()
    out.write("bye\n")
    out.flush()
    return 0


def check_chat_options(max_new_tokens: int, temperature: float, top_p: float) -> None:
    """Refuse generation settings outside their ranges with one sentence."""
    if max_new_tokens < 1:
        raise UserError("--max-new-tokens must be at least 1")
    if temperature < 0:
        raise UserError("--temperature must be 0 (greedy) or more")
    if not 0 < top_p <= 1:
        raise UserError("--top-p must be in (0, 1]")
