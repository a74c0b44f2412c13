"""The Slurm command-line client: ``sbatch``, ``squeue --json``, ``scontrol -o show job``, ``scancel``.

Each call runs the tool with a timeout and no shell; a failure is a `SlurmError` carrying one line of
Slurm's own message, fit for a job's reason. ``squeue --json`` and ``scontrol`` output of Slurm 22.05
and newer parse into the same `SlurmJob` (newer Slurm wraps numbers as ``{"set": .., "number": ..}``).
``sacct`` needs slurmdbd and is not used.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunequeue.core.errors import UserError

PENDING_STATES = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
)
RUNNING_STATES = frozenset(
    {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"}
)


class SlurmError(Exception):
    """A Slurm command failed; the message is one line fit for a job's reason and the CLI."""


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise SlurmError(
            f"{command[0]} is not on PATH; install the Slurm client tools (slurm-client) on this machine "
            "or switch the runner back with `tunequeue runner start --backend local`"
        ) from None
    except subprocess.TimeoutExpired:
        raise SlurmError(
            f"the Slurm controller did not answer within {timeout:.0f} s ({command[0]}); check slurmctld "
            "and SLURM_CONF"
        ) from None


def _error_line(result: subprocess.CompletedProcess) -> str:
    """Slurm's own message from stderr, without the ``sbatch: error:`` prefixes."""
    lines = [line.strip() for line in (result.stderr or result.stdout or "").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    line = (errors or lines or [f"exit code {result.returncode}"])[-1]
    return re.sub(r"^\w+: (error|fatal): ", "", line)


def check_available(timeout: float = 15.0) -> None:
    """Raise `UserError` when sbatch is missing or the controller does not answer (`scontrol ping`)."""
    if shutil.which("sbatch") is None:
        raise UserError(
            "sbatch is not on PATH; install the Slurm client tools (slurm-client) or use --backend local"
        )
    try:
        result = _run(["scontrol", "ping"], timeout)
    except SlurmError as err:
        raise UserError(str(err)) from None
    if result.returncode != 0 or "is UP" not in result.stdout:
        detail = result.stdout.strip().splitlines()[0] if result.stdout.strip() else _error_line(result)
        raise UserError(f"the Slurm controller does not answer ({detail}); check slurmctld and SLURM_CONF")


def sbatch(script_path: Path, timeout: float) -> str:
    """Submit a batch script; return the Slurm job id. Refusals raise `SlurmError` with Slurm's message."""
    result = _run(["sbatch", "--parsable", str(script_path)], timeout)
    if result.returncode != 0:
        raise SlurmError(f"Slurm refused the job: {_error_line(result)}")
    job_id = result.stdout.strip().splitlines()[-1].split(";")[0] if result.stdout.strip() else ""
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed no job id (output: {result.stdout.strip()[:200]!r})")
    return job_id


def scancel(job_id: str, timeout: float) -> None:
    """Cancel a Slurm job (Slurm sends SIGTERM, then SIGKILL after its KillWait)."""
    result = _run(["scancel", str(job_id)], timeout)
    if result.returncode != 0:
        raise SlurmError(f"scancel {job_id} failed: {_error_line(result)}")


@dataclass
class SlurmJob:
    """What Slurm says about one job."""

    job_id: str
    state: str
    reason: str = ""
    nodes: str = ""
    exit_code: int | None = None
    signal: int | None = None
    comment: str = ""
    gres: str = ""

    @property
    def is_final(self) -> bool:
        """True once Slurm has finished with the job."""
        return self.state not in PENDING_STATES and self.state not in RUNNING_STATES


def _number(value: Any) -> int | None:
    """An integer from Slurm's JSON, which wraps numbers as {"set": .., "number": ..} in newer versions."""
    if isinstance(value, dict):
        if value.get("set") is False or value.get("infinite"):
            return None
        value = value.get("number")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_squeue_entry(entry: dict[str, Any]) -> SlurmJob:
    """One job of ``squeue --json`` (any supported Slurm version) as a `SlurmJob`."""
    state = entry.get("job_state")
    if isinstance(state, list):
        state = state[0] if state else "UNKNOWN"
    raw = entry.get("exit_code")
    exit_code = signal = None
    if isinstance(raw, dict) and ("return_code" in raw or "signal" in raw):
        exit_code = _number(raw.get("return_code"))
        sig = raw.get("signal")
        signal = _number(sig.get("id")) if isinstance(sig, dict) else _number(sig)
    else:
        status = _number(raw)
        if status is not None:
            # squeue 22.05 gives the raw wait status: exit code in the high byte, signal in the low bits.
            exit_code, signal = (status >> 8) & 0xFF, status & 0x7F
    gres = entry.get("gres_detail") or []
    return SlurmJob(
        job_id=str(_number(entry.get("job_id"))),
        state=str(state or "UNKNOWN").upper(),
        reason=str(entry.get("state_reason") or ""),
        nodes=str(entry.get("nodes") or ""),
        exit_code=exit_code,
        signal=signal or None,
        comment=str(entry.get("comment") or ""),
        gres=",".join(map(str, gres)) if isinstance(gres, list) else str(gres),
    )


def squeue_all(timeout: float) -> dict[str, SlurmJob]:
    """Every job the controller still holds (``squeue --json``), by Slurm job id."""
    result = _run(["squeue", "--json", "--all"], timeout)
    if result.returncode != 0:
        raise SlurmError(f"squeue failed: {_error_line(result)}")
    try:
        data = json.loads(result.stdout)
    except ValueError:
        raise SlurmError("squeue --json printed no JSON; is this Slurm older than 21.08?") from None
    jobs = [parse_squeue_entry(entry) for entry in data.get("jobs") or [] if isinstance(entry, dict)]
    return {job.job_id: job for job in jobs}


def scontrol_show(job_id: str, timeout: float) -> SlurmJob | None:
    """``scontrol -o show job ID`` parsed, or None when Slurm no longer knows the job."""
    result = _run(["scontrol", "-o", "show", "job", str(job_id)], timeout)
    if result.returncode != 0:
        message = _error_line(result)
        if "invalid job id" in message.lower():
            return None
        raise SlurmError(f"scontrol show job {job_id} failed: {message}")
    fields = dict(re.findall(r"(\S+?)=(\S*)", result.stdout))
    code, _, sig = fields.get("ExitCode", "").partition(":")
    nodes = fields.get("NodeList", "")
    return SlurmJob(
        job_id=str(job_id),
        state=fields.get("JobState", "UNKNOWN").upper(),
        reason=fields.get("Reason", ""),
        nodes="" if nodes == "(null)" else nodes,
        exit_code=int(code) if code.isdigit() else None,
        signal=int(sig) if sig.isdigit() and int(sig) else None,
        comment=fields.get("Comment", ""),
    )
