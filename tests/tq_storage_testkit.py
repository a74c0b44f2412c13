"""Helpers for the storage and safety tests (tests/storage): checking one-line CLI errors."""

from __future__ import annotations


def one_line_error(result, *needles: str) -> str:
    """Assert a CLI result is exit 2 with one `error:` line on stderr containing every needle; return it."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
