"""`one_line`: any error as the one line a status bar or a reply has room for."""

from __future__ import annotations

from tunequeue.core.errors import UserError, one_line


def test_first_line_of_a_long_error():
    error = OSError("No space left on device\n  while writing /home/x/task.yaml\n")
    assert one_line(error) == "No space left on device"


def test_an_error_without_text_is_named_by_its_type():
    assert one_line(KeyError()) == "KeyError"
    assert one_line(RuntimeError("  \n ")) == "RuntimeError"


def test_a_user_error_keeps_its_sentence():
    assert one_line(UserError("use --lang en or --lang zh")) == "use --lang en or --lang zh"
