"""Short, fixed-width renderings of numbers, durations and job fields for tables and panes."""

from __future__ import annotations

import os
from typing import Any

STATE_STYLES = {
    "queued": "",
    "held": "dim",
    "starting": "cyan",
    "running": "bold cyan",
    "cancelling": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "yellow",
}


def format_duration(seconds: float | None) -> str:
    """``2:03`` under an hour, ``1:02:03`` under a day, ``3d04h`` beyond; ``-`` when unknown."""
    if seconds is None or seconds < 0:
        return "-"
    total = int(round(seconds))
    if total >= 86400:
        days, rest = divmod(total, 86400)
        return f"{days}d{rest // 3600:02d}h"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def parse_clock(value: Any) -> float | None:
    """Seconds from an ``H:MM:SS`` string as LLaMA-Factory writes elapsed/remaining time, or a number."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    days = 0.0
    if "day" in text:  # str(timedelta) for long runs: "1 day, 2:03:04"
        head, _, text = text.partition(",")
        days = float(head.split()[0])
        text = text.strip()
    try:
        parts = [float(part) for part in text.split(":")]
    except ValueError:
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return days * 86400 + seconds


def format_number(value: Any, digits: int = 4) -> str:
    """A loss-like number with `digits` significant digits; ``-`` when missing."""
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.{digits}g}"


def format_lr(value: Any) -> str:
    """A learning rate like ``2.0e-04``; ``-`` when missing."""
    if value is None:
        return "-"
    try:
        return f"{float(value):.1e}"
    except (TypeError, ValueError):
        return str(value)


def format_gib(mib: Any) -> str:
    """MiB as GiB with one decimal; ``-`` when missing."""
    if mib is None:
        return "-"
    return f"{float(mib) / 1024:.1f}"


def job_times(job: Any, latest: dict | None, now: float) -> str:
    """``elapsed/ETA`` for the queue table; finished jobs show their run time only."""
    start = job.started_at
    if start is None:
        return "-"
    end = job.finished_at if job.finished_at else now
    elapsed = format_duration(end - start)
    if not job.is_active:
        return elapsed
    remaining = parse_clock((latest or {}).get("remaining_time"))
    return f"{elapsed}/{format_duration(remaining)}"


def progress_percent(job: Any, latest: dict | None) -> str:
    """Progress in percent from the latest metrics row (100 for a succeeded job)."""
    if state_of(job) == "succeeded":
        return "100%"
    if not latest:
        return "-"
    value = latest.get("percentage")
    if value is None and latest.get("total_steps"):
        value = (
            100.0
            * float(latest.get("current_steps") or latest.get("step") or 0)
            / float(latest["total_steps"])
        )
    if value is None:
        return "-"
    return f"{float(value):.0f}%"


def ema(values: list[float], alpha: float = 0.2) -> list[float]:
    """Exponential moving average (bias-corrected at the start, like TensorBoard's smoothing)."""
    smoothed: list[float] = []
    average = 0.0
    weight = 0.0
    for value in values:
        average = (1 - alpha) * average + alpha * value
        weight = (1 - alpha) * weight + alpha
        smoothed.append(average / weight)
    return smoothed


def state_of(job: Any) -> str:
    """The job's state as a plain string ("running"), whether stored as an enum or a string."""
    return str(getattr(job.state, "value", job.state))


def short_path(path: str | os.PathLike[str] | None) -> str:
    """A path with the user's home directory written as ``~`` (what a shell user expects to read)."""
    if not path:
        return ""
    text = os.path.normpath(os.fspath(path))
    home = os.path.expanduser("~")
    if home not in ("~", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text
