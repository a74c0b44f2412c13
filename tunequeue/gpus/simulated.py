"""Simulated GPUs for tests, demos and machines without an NVIDIA driver.

``TUNEQUEUE_SIMULATED_GPUS`` lists groups of ``COUNTxGIB`` separated by commas: ``4x80`` is four
80 GiB GPUs, ``2x24,1x80`` two 24 GiB and one 80 GiB GPU, ``0`` no GPU at all. Simulated GPUs are
idle and empty (deterministic: nothing the runner starts changes them) unless the home's
``simulated-gpus.json`` says otherwise for an index, for example::

    {"1": {"memory_used_mib": 30000, "utilization_pct": 97, "power_limit_w": 450,
           "processes": [{"pid": 4242, "used_memory_mib": 30000, "name": "python",
                          "user": "alice", "command": "python train.py"}]},
     "2": {"exclusive_process": true,
           "graphics_processes": [{"pid": 1201, "used_memory_mib": 40, "name": "Xorg"}]}}

A simulated process needs ``pid``; ``used_memory_mib``, ``name``, ``kind``, ``user`` and ``command`` are
optional. Where ``user`` or ``command`` is missing and the pid exists on this machine, they are read
from its process table like for a real GPU (so a simulated GPU can show one of our running jobs).

Every simulated GPU is labelled ``simulated`` wherever it is shown.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tunequeue.core import paths
from tunequeue.core.errors import UserError
from tunequeue.gpus.devices import COMPUTE, COMPUTE_GRAPHICS, GRAPHICS, Gpu, GpuProcess, GpuSnapshot

ENV_VAR = "TUNEQUEUE_SIMULATED_GPUS"
STATE_FILE_NAME = "simulated-gpus.json"
_GROUP = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+(?:\.\d+)?)\s*(?:g|gb|gib)?\s*$", re.IGNORECASE)
_OVERRIDABLE = {
    "memory_used_mib",
    "utilization_pct",
    "temperature_c",
    "power_w",
    "power_limit_w",
    "exclusive_process",
    "mig",
    "processes",
    "graphics_processes",
}
_PROCESS_FIELDS = {"pid", "used_memory_mib", "name", "kind", "user", "command"}
_KINDS = {COMPUTE, GRAPHICS, COMPUTE_GRAPHICS}
SIMULATED_POWER_LIMIT_W = 300.0


def parse_spec(spec: str) -> list[float]:
    """Turn ``"2x24,1x80"`` into the memory of each GPU in GiB (``[24, 24, 80]``); ``"0"`` is none."""
    text = spec.strip()
    if text.lower() in ("0", "none"):
        return []
    sizes: list[float] = []
    for group in text.split(","):
        match = _GROUP.match(group)
        if not match or float(match.group(2)) <= 0:
            raise UserError(
                f"{ENV_VAR}={spec!r} is not understood; write COUNTxGIB groups such as 4x80 or 2x24,1x80 "
                "(or 0 for no GPU)"
            )
        sizes.extend([float(match.group(2))] * int(match.group(1)))
    if len(sizes) > 64:
        raise UserError(f"{ENV_VAR}={spec!r} asks for {len(sizes)} GPUs; simulate at most 64")
    return sizes


def state_file() -> Path:
    """Where per-GPU overrides for simulated GPUs are read from."""
    return paths.home() / STATE_FILE_NAME


def _load_overrides(path: Path) -> dict[int, dict[str, Any]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return {int(index): dict(values) for index, values in data.items()}
    except (ValueError, TypeError) as error:
        raise UserError(
            f"{path} is not valid ({error}); write a JSON object of GPU index → fields, or delete the file"
        ) from error


def _process(entry: Any, index: int, default_kind: str) -> GpuProcess:
    """One simulated process from the state file."""
    problem = None
    if not isinstance(entry, dict) or "pid" not in entry:
        problem = "needs at least a pid"
    elif set(entry) - _PROCESS_FIELDS:
        problem = f"has unknown field {sorted(set(entry) - _PROCESS_FIELDS)[0]!r}"
    elif entry.get("kind", default_kind) not in _KINDS:
        problem = f"has kind {entry['kind']!r}"
    else:
        try:
            int(entry["pid"])
            float(entry.get("used_memory_mib") or 0)
        except (TypeError, ValueError):
            problem = "has a pid or used_memory_mib that is not a number"
    if problem is not None:
        raise UserError(
            f"{STATE_FILE_NAME}: a process of GPU {index} {problem}; "
            f'write {{"pid": N}} with optional {", ".join(sorted(_PROCESS_FIELDS - {"pid"}))} '
            f"(kind: {', '.join(sorted(_KINDS))})"
        )
    memory = entry.get("used_memory_mib")
    return GpuProcess(
        pid=int(entry["pid"]),
        used_memory_mib=float(memory) if memory is not None else None,
        name=str(entry.get("name", "")),
        kind=str(entry.get("kind", default_kind)),
        user=str(entry.get("user", "")),
        command=str(entry.get("command", "")),
    )


def simulated_gpus(spec: str, overrides_path: Path | None = None) -> list[Gpu]:
    """Build the simulated GPUs for ``spec`` with the overrides of the state file applied."""
    overrides = _load_overrides(overrides_path if overrides_path is not None else state_file())
    gpus = []
    for index, size_gib in enumerate(parse_spec(spec)):
        gib = int(size_gib) if size_gib.is_integer() else size_gib
        gpu = Gpu(
            index=index,
            uuid=f"GPU-00000000-0000-4000-8000-sim{index:09d}",
            name=f"Simulated GPU {gib} GB",
            pci_bus_id=f"00000000:{index + 1:02X}:00.0",
            memory_total_mib=size_gib * 1024,
            memory_used_mib=0.0,
            utilization_pct=0.0,
            temperature_c=35.0,
            power_w=60.0,
            power_limit_w=SIMULATED_POWER_LIMIT_W,
            compute_capability=(9, 0),
            processes=[],
            simulated=True,
        )
        for key, value in overrides.get(index, {}).items():
            if key not in _OVERRIDABLE:
                raise UserError(
                    f"{STATE_FILE_NAME} sets unknown field {key!r} for GPU {index}; "
                    f"use {', '.join(sorted(_OVERRIDABLE))}"
                )
            if key in ("processes", "graphics_processes"):
                default_kind = COMPUTE if key == "processes" else GRAPHICS
                value = [_process(entry, index, default_kind) for entry in value]
            setattr(gpu, key, value)
        gpus.append(gpu)
    return gpus


def read_simulated() -> GpuSnapshot | None:
    """The simulated snapshot when ``TUNEQUEUE_SIMULATED_GPUS`` is set, else None."""
    spec = os.environ.get(ENV_VAR)
    if spec is None or not spec.strip():
        return None
    return GpuSnapshot(gpus=simulated_gpus(spec), simulated=True, error=None)
