"""Helpers for the storage and safety tests: checking one-line CLI errors, and a small disk to fill.

`mounted_small_disk` mounts a 20 MB tmpfs (root only; skipped, saying why, elsewhere) and `fill_disk`
fills it, so the tests of a full disk (tests/storage, the wizard's in tests/tui) meet a real ENOSPC.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def one_line_error(result, *needles: str) -> str:
    """Assert a CLI result is exit 2 with one `error:` line on stderr containing every needle; return it."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@contextmanager
def mounted_small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs mounted under ``tmp_path`` while the block runs (skips the test where it cannot)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 20 MB tmpfs needs root; the /dev/full tests cover the non-root case")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m,mode=700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_disk(directory: Path, leave: int = 0) -> Path:
    """Fill the filesystem of ``directory`` until only about ``leave`` bytes are free (appending to the
    filler, so a second call tops it up after something else freed space)."""
    filler = directory / "filler"
    free = shutil.disk_usage(directory).free
    with open(filler, "ab") as handle:
        remaining = max(free - leave, 0)
        block = b"\0" * (1024 * 1024)
        try:
            while remaining > 0:
                remaining -= handle.write(block[: min(len(block), remaining)])
        except OSError:
            pass
    return filler
