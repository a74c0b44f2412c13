"""``python -m tunequeue.train.sidecar``: the child process that does the TUI's model work.

The TUI never imports torch or transformers; it starts this process and speaks JSON lines with it on
stdin/stdout, one request at a time. Every request carries an ``id`` and an ``op``; the answer to it
is one line ``{"id": N, "ok": true, ...}`` or ``{"id": N, "ok": false, "error": "one line"}``, and a
streamed reply sends ``{"id": N, "piece": "..."}`` lines before that.

- ``preview`` (``values``: the wizard's task values): the first example of the first dataset rendered
  with the template and the model's tokenizer → ``text``.
- ``chat.load`` (``model``, ``adapter``, ``template``, ``max_new_tokens``, ``temperature``, ``top_p``,
  ``do_sample``, ``device``: ``"cuda"`` or ``"cpu"``) → ``device`` (what the model is on: ``cpu`` when
  CUDA was asked for but this process sees no GPU).
- ``chat.send`` (``message``) → pieces, then ``reply`` and ``turns`` (exchanges in the history).
- ``chat.clear`` → ``turns`` (0); ``chat.history`` → ``history`` (the messages so far).

Whatever the libraries print goes to stderr; stdout carries only the protocol. The process ends at
the end of its input.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from tunequeue.core.errors import UserError, one_line


def render_first_example(values: dict[str, Any]) -> str:
    """Text of the first example of the task's first dataset, rendered with the chosen template."""
    from tunequeue.train.assets import resolve_model_path
    from tunequeue.train.data.converter import convert_rows
    from tunequeue.train.data.loader import (
        dataset_entry,
        read_dataset_info,
        read_entry_rows,
        resolve_dataset_dir,
    )
    from tunequeue.train.templates import get_template

    name = str(values["dataset"]).split(",")[0].strip()
    dataset_dir = resolve_dataset_dir(values.get("dataset_dir"))
    entry = dataset_entry(name, dataset_dir, read_dataset_info(dataset_dir))
    rows = read_entry_rows(entry, dataset_dir)[:1]
    if not rows:
        raise UserError(f"dataset '{name}' holds no examples")
    example = convert_rows(entry, rows, values.get("stage", "sft"))[0]

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(values["model_name_or_path"]))
    template = get_template(values.get("template"), tokenizer)
    text = template.render(example["messages"], example.get("system"))
    for key in ("chosen", "rejected"):
        if example.get(key) is not None:
            text += f"\n[{key}] {example[key]}"
    if example.get("label") is not None:
        text += f"\n[kto_tag] {example['label']}"
    return text


class Sidecar:
    """The request handlers and the chat session they share."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.session: Any | None = None

    def send(self, message: dict[str, Any]) -> None:
        """Write one protocol line."""
        self.out.write(json.dumps(message, ensure_ascii=False) + "\n")
        self.out.flush()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one request; the answer's fields (without ``id`` and ``ok``)."""
        op = request.get("op")
        if op == "preview":
            return {"text": render_first_example(dict(request.get("values") or {}))}
        if op == "chat.load":
            return self.load(request)
        if op in ("chat.send", "chat.clear", "chat.history") and self.session is None:
            raise UserError("no model is loaded; send chat.load first")
        if op == "chat.send":
            pieces = []
            for piece in self.session.stream_reply(str(request.get("message", ""))):
                if not piece:
                    continue
                pieces.append(piece)
                self.send({"id": request.get("id"), "piece": piece})
            return {"reply": "".join(pieces).strip(), "turns": len(self.session.history) // 2}
        if op == "chat.clear":
            self.session.clear()
            return {"turns": 0}
        if op == "chat.history":
            return {"history": list(self.session.history)}
        raise UserError(f"unknown request {op!r}")

    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        """Load the model (and adapter) for chat on the asked device, replacing any earlier one."""
        from tunequeue.train.chat import ChatSession

        self.session = None
        self.session = ChatSession(
            str(request["model"]),
            request.get("adapter") or None,
            template=request.get("template") or None,
            max_new_tokens=int(request.get("max_new_tokens", 128)),
            temperature=float(request.get("temperature", 0.95)),
            top_p=float(request.get("top_p", 0.7)),
            do_sample=bool(request.get("do_sample", True)),
            device="auto" if request.get("device") == "cuda" else "cpu",
        )
        return {"device": str(self.session.device)}

    def serve(self, lines: IO[str]) -> int:
        """Answer requests until the end of input."""
        for line in lines:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
            except ValueError as error:
                self.send({"id": None, "ok": False, "error": f"bad request: {one_line(error)}"})
                continue
            try:
                answer = self.handle(request)
            except Exception as error:  # noqa: BLE001 - every failure is answered, the process lives on
                self.send({"id": request.get("id"), "ok": False, "error": one_line(error)})
                continue
            self.send({"id": request.get("id"), "ok": True, **answer})
        return 0


def main() -> int:
    """Serve the protocol on stdin/stdout, with anything else printed sent to stderr."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    sys.stdin.reconfigure(encoding="utf-8")
    return Sidecar(protocol).serve(sys.stdin)


if __name__ == "__main__":
    sys.exit(main())
