"""Shared output helpers for CLI commands: JSON for --json, rich tables otherwise."""

from __future__ import annotations

import json
from typing import Any


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (non-JSON values are stringified)."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def console():
    """A rich Console for stdout (imported lazily; respects NO_COLOR)."""
    from rich.console import Console

    return Console(highlight=False)
