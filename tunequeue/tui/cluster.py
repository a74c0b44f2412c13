"""What the queue and dashboard screens show about a job that runs on a Slurm cluster.

A job the Slurm runner backend submitted has ``backend_job_id`` set (the Slurm job id). The backend
keeps RUN_DIR/slurm.json with Slurm's latest view of it (``slurm_job_id``, ``state``, ``reason``,
``nodes``, ``exit_code``, ``signal``, ``gres``; see `tunequeue.runner.backends.slurm`) and puts a
summary in the job's reason (``Slurm PENDING (Resources)``, ``Slurm job N RUNNING on NODES``).
`read_cluster_info` reads the file and falls back to the reason when the file is missing or belongs
to an earlier Slurm job of the same queue job. NVML only sees this machine's GPUs, so the dashboard
shows `gpu_note` instead of GPU panes for such a job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunequeue.runner.backends.slurm import PENDING_STATES, STATE_FILE
from tunequeue.tui.text import tr

_PENDING_REASON = re.compile(r"^Slurm (?P<state>[A-Z_]+)(?: \((?P<reason>.*)\))?$")
_RUNNING_REASON = re.compile(r"^Slurm job (?P<id>\S+) (?P<state>[A-Z_]+) on (?P<nodes>\S+)")


@dataclass
class ClusterInfo:
    """Slurm's view of one cluster job: id, state, pending reason, node list and exit status."""

    job_id: str
    state: str = ""
    reason: str = ""
    nodes: str = ""
    exit_code: int | None = None
    signal: int | None = None

    @property
    def pending(self) -> bool:
        """True while the job waits in Slurm's queue."""
        return self.state in PENDING_STATES

    @property
    def exit_status(self) -> str | None:
        """Slurm's ``EXIT:SIGNAL`` once the job has an exit code, else None."""
        if self.exit_code is None:
            return None
        return f"{self.exit_code}:{self.signal or 0}"


def text(key: str, lang: str, **fmt: Any) -> str:
    """The `lang` text of one of this module's keys (``cluster.*`` in the catalog)."""
    return tr(key, lang, **fmt)


def read_cluster_info(job: Any) -> ClusterInfo | None:
    """Slurm's view of `job`, or None for a job that runs on this machine (no ``backend_job_id``)."""
    slurm_id = getattr(job, "backend_job_id", None)
    if not slurm_id:
        return None
    info = ClusterInfo(job_id=str(slurm_id))
    record = _read_state_file(job)
    if record is not None and str(record.get("slurm_job_id")) == info.job_id:
        info.state = str(record.get("state") or "")
        reason = str(record.get("reason") or "")
        info.reason = "" if reason == "None" else reason
        info.nodes = str(record.get("nodes") or "")
        info.exit_code = _int_or_none(record.get("exit_code"))
        info.signal = _int_or_none(record.get("signal"))
        return info
    reason = getattr(job, "reason", None) or ""
    if match := _RUNNING_REASON.match(reason):
        info.state, info.nodes = match["state"], match["nodes"]
    elif match := _PENDING_REASON.match(reason):
        info.state, info.reason = match["state"], match["reason"] or ""
    return info


def _read_state_file(job: Any) -> dict | None:
    run_dir = getattr(job, "run_dir", None)
    if not run_dir:
        return None
    try:
        record = json.loads((Path(run_dir) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def cluster_line(info: ClusterInfo, lang: str) -> str:
    """One line: Slurm job id, state or pending reason, node list and exit status."""
    parts = [text("cluster.job", lang, id=info.job_id)]
    if info.pending:
        parts.append(text("cluster.pending", lang, reason=info.reason or info.state))
    elif info.state:
        parts.append(info.state)
    if info.nodes:
        parts.append(text("cluster.nodes", lang, nodes=info.nodes))
    if info.exit_status is not None and not info.pending:
        parts.append(text("cluster.exit", lang, status=info.exit_status))
    return " · ".join(parts)


def gpu_note(info: ClusterInfo, lang: str) -> str:
    """Why a cluster job has no GPU panes: NVML data covers this machine's GPUs only."""
    where = text("cluster.gpu_note_where", lang, nodes=info.nodes) if info.nodes else ""
    return text("cluster.gpu_note", lang, where=where)
