"""The dependency direction of DESIGN.md, checked on the source: cli/tui → core/jobqueue/runner → gpus;
train depends on core only; nothing imports tui or cli; core imports no heavy library at module level."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tunequeue"

# package → tunequeue subpackages it must never import (at any depth, lazily or not)
FORBIDDEN = {
    "core": {"jobqueue", "runner", "gpus", "train", "tui", "cli"},
    "gpus": {"jobqueue", "runner", "train", "tui", "cli"},
    "jobqueue": {"runner", "train", "tui", "cli"},
    "runner": {"tui", "cli"},
    "train": {"jobqueue", "runner", "gpus", "tui", "cli"},
    "tui": {"cli"},
}


def _imported_tunequeue_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            bits = name.split(".")
            if bits[0] == "tunequeue" and len(bits) > 1:
                parts.add(bits[1])
    return parts


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_dependency_direction(package: str) -> None:
    offenders = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        bad = _imported_tunequeue_parts(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_cli_and_core_import_no_heavy_library() -> None:
    code = (
        "import sys, tunequeue.cli, tunequeue.core.spec, tunequeue.core.rules, tunequeue.core.presets, "
        "tunequeue.core.compat, tunequeue.core.estimate, tunequeue.jobqueue.jobs, tunequeue.runner.scheduler;"
        "heavy = ('torch', 'transformers', 'textual', 'peft', 'datasets');"
        "print(' '.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
