"""`tunequeue chat` with piped stdin: streamed replies, history, /clear and /exit."""

from __future__ import annotations

import io
import subprocess
import sys


def test_session_streams_greedy_replies_and_keeps_history():
    import torch

    from tunequeue.train.chat import ChatSession, chat_loop

    session = ChatSession(
        "tunequeue/tiny-llama", system="Be brief.", max_new_tokens=5, do_sample=False, device="cpu"
    )
    pieces = list(session.stream_reply("What is 2 plus 2?"))
    assert pieces
    assert len(session.history) == 2 and session.history[1]["content"] == "".join(pieces).strip()
    # The streamed text is what plain greedy generation produces for the same prompt.
    first = session.history[1]["content"]
    ids = torch.tensor([_first_prompt(session)])
    with torch.no_grad():
        out = session.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **session.generation)
    assert session.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip() == first
    # The second prompt carries the first exchange.
    second = session.prompt_ids("And 3 plus 3?")
    assert len(second) > len(_first_prompt(session))
    session.clear()
    assert session.history == []

    out = io.StringIO()
    assert chat_loop(session, io.StringIO("hello\n\n/clear\nhi\n/exit\nignored\n"), out) == 0
    text = out.getvalue()
    assert text.count("Assistant: ") == 2 and "history cleared" in text and text.endswith("bye\n")
    assert len(session.history) == 2  # only the exchange after /clear


def _first_prompt(session):
    saved = session.history
    session.history = []
    try:
        return session.prompt_ids("What is 2 plus 2?")
    finally:
        session.history = saved


def test_chat_command_with_piped_stdin():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunequeue",
            "chat",
            "--model",
            "tunequeue/tiny-llama",
            "--max-new-tokens",
            "4",
            "--greedy",
            "--system",
            "You are terse.",
            "--template",
            "qwen",
        ],
        input="hello\n/clear\n你好\n/exit\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Assistant: ") == 2
    assert "history cleared" in result.stdout and result.stdout.rstrip().endswith("bye")


def test_chat_command_bad_options_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "tunequeue", "chat", "--model", "tunequeue/tiny-llama", "--top-p", "0"],
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--top-p" in result.stderr
