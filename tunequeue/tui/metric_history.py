"""A job's metric history as the dashboard keeps it: read incrementally, stored compactly, charted small.

`MetricHistory.update(db)` reads only the metric rows stored since the last call (``seq`` greater
than the last one seen, through the index ``metrics_job_seq``) and only their typed columns; the JSON
payload is never parsed. It keeps the semantics of `tunequeue.jobqueue.metrics.get_metrics`: one entry
per step, ordered by step; when several attempts logged a step (a resumed run repeats the steps after
its checkpoint) the newest attempt wins; rows of the same attempt and step (a train and an eval line)
are merged, a later non-null value replacing an earlier one. The entries live in parallel arrays
(step, attempt, loss, eval_loss, lr, throughput; NaN stands for "not logged"), not in dicts: about
44 bytes a step, some 45 MB for a million. The newest step's other columns (total_steps, epoch,
remaining_time, ...) are read from its own rows when it changes.

When the row seen last is gone (the job was deleted, its rows removed), the history starts over.

The chart gets at most `CHART_POINTS` points per series. While the job has at most that many entries
the series are the raw ones: every logged loss, its EMA (`tunequeue.tui.formatting.ema`) and every
eval loss, exactly as logged. Beyond that the steps are grouped into buckets of ``width`` consecutive
steps (a power of two, doubled whenever the steps span more than `CHART_POINTS` buckets), and each
bucket gives one point: the mean step and the mean loss (and, separately, the mean eval loss) of the
points in it. The smoothed line is the same EMA computed over the bucket means, so at this size it
smooths over a few chart columns rather than a few steps. The bucket sums are kept up to date as rows
arrive (a replaced step subtracts its old value), so a poll costs time in proportion to the new rows,
not to the whole run. Plain Python, no Textual: the dashboard calls `update` from its read worker
(reads never overlap) and hands the returned `MetricSummary`, an immutable snapshot, to the UI thread.
"""

from __future__ import annotations

import math
import operator
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

from tunequeue.jobqueue.metrics import METRIC_COLUMNS
from tunequeue.tui.formatting import ema

CHART_POINTS = 800
PROGRESS_SECONDS = 0.5  # how often a long first read shows what it has so far
FETCH_ROWS = 20_000  # rows fetched from SQLite at a time: a first read of 1M rows never holds them all

_NAN = float("nan")
# The value columns kept for every step, in the order of the SELECT after seq, step, attempt.
_FIELDS = ("loss", "eval_loss", "lr", "throughput")
# Non-numbers (a string that slipped into a REAL column) count as "not logged".
_NUMERIC = "CASE WHEN typeof({0}) IN ('integer', 'real') THEN {0} END"
_NEW_ROWS_SQL = (
    "SELECT seq, step, attempt, "
    + ", ".join(_NUMERIC.format(name) for name in _FIELDS)
    + " FROM metrics WHERE job_id = ? AND seq > ? ORDER BY seq"
)
# The newest step's own columns (progress, epoch, remaining time) come from its rows alone.
_LATEST_SQL = (
    f"SELECT {', '.join(METRIC_COLUMNS)} FROM metrics WHERE job_id = ? AND step = ? AND attempt = ? "
    "ORDER BY seq"
)


@dataclass(frozen=True)
class ChartSeries:
    """What the loss chart plots: raw (or bucket-mean) loss, its EMA, and eval loss, against steps.

    ``width`` is how many steps one point stands for: 1 while the points are the raw ones.
    """

    steps: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    eval_steps: list[float] = field(default_factory=list)
    eval_losses: list[float] = field(default_factory=list)
    width: int = 1


@dataclass(frozen=True)
class MetricSummary:
    """What the dashboard shows of a job's metrics at one moment.

    ``latest`` is the newest step's merged entry (keys step, attempt and the metric columns, None
    where not logged) or None without metrics; ``last`` maps loss, eval_loss, lr and throughput to
    the value of the newest step that logged it (or None).
    """

    count: int = 0
    latest: dict[str, Any] | None = None
    last: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(_FIELDS))
    chart: ChartSeries = field(default_factory=ChartSeries)


class _Buckets:
    """Sums per bucket of steps: bucket -> [sum of values, number of values, sum of their steps]."""

    def __init__(self) -> None:
        self.sums: dict[int, list[float]] = {}

    def add(self, bucket: int, total: float, count: int, step_sum: float) -> None:
        """Add `count` values summing to `total`, logged at steps summing to `step_sum`; a negative
        `count` (with negated sums) removes values again."""
        entry = self.sums.get(bucket)
        if entry is None:
            if count > 0:
                self.sums[bucket] = [total, count, step_sum]
            return
        entry[1] += count
        if entry[1] <= 0:
            del self.sums[bucket]
            return
        entry[0] += total
        entry[2] += step_sum

    def widen(self, factor: int) -> None:
        """Merge every `factor` neighbouring buckets into one."""
        old, self.sums = self.sums, {}
        for bucket, (total, count, step_sum) in old.items():
            self.add(bucket // factor, total, int(count), step_sum)

    def points(self) -> tuple[list[float], list[float]]:
        """Mean step and mean value of each bucket, in step order."""
        steps, values = [], []
        for bucket in sorted(self.sums):
            total, count, step_sum = self.sums[bucket]
            steps.append(step_sum / count)
            values.append(total / count)
        return steps, values


class MetricHistory:
    """The metric entries of one job, one per step, brought up to date by `update(db)`."""

    def __init__(self, job_id: int, max_points: int = CHART_POINTS) -> None:
        self.job_id = int(job_id)
        self.max_points = max(2, int(max_points))
        self.reset()

    def reset(self) -> None:
        """Forget everything read so far: the next `update` reads the job's rows from the start."""
        self.last_seq = 0
        self.steps = array("q")
        self.attempts = array("i")
        self.values: dict[str, array] = {name: array("d") for name in _FIELDS}
        self._last_index = dict.fromkeys(_FIELDS, -1)
        self._width = 1
        self._buckets_of = {"loss": _Buckets(), "eval_loss": _Buckets()}  # the charted series
        self._latest: dict[str, Any] | None = None
        self._latest_key: tuple[int, int] | None = None
        self._latest_dirty = True
        self._chart: ChartSeries | None = ChartSeries()

    def __len__(self) -> int:
        return len(self.steps)

    # ---- reading ---------------------------------------------------------------------------

    def update(
        self,
        db: Any,
        progress: Callable[[MetricSummary], None] | None = None,
    ) -> MetricSummary:
        """Read the rows stored since the last call and return the summary of the whole history.

        If the row seen last has vanished (job deleted, rows removed), start over first. A long read
        (the first one of a long run) hands `progress` the summary so far every `PROGRESS_SECONDS`.
        """
        conn = db.conn
        shown = time.monotonic()
        if self.last_seq and conn.execute(
            "SELECT 1 FROM metrics WHERE seq = ? AND job_id = ?", (self.last_seq, self.job_id)
        ).fetchone() is None:
            self.reset()
        # A database error between chunks leaves a consistent history (last_seq is the last row
        # added): the next call goes on from there.
        cursor = conn.execute(_NEW_ROWS_SQL, (self.job_id, self.last_seq))
        while rows := cursor.fetchmany(FETCH_ROWS):
            try:
                self.add_rows(rows)
            except BaseException:
                self.reset()  # a half-added chunk: start over rather than show a wrong history
                raise
            more = len(rows) == FETCH_ROWS
            if progress is not None and more and time.monotonic() - shown >= PROGRESS_SECONDS:
                self._refresh_latest(conn)
                progress(self.summary())
                shown = time.monotonic()
        self._refresh_latest(conn)
        return self.summary()

    def _refresh_latest(self, conn: Any) -> None:
        if not self.steps:
            self._latest, self._latest_key = None, None
            return
        key = (self.steps[-1], self.attempts[-1])
        if key == self._latest_key and self._latest is not None and not self._latest_dirty:
            return
        entry: dict[str, Any] = {"step": key[0], "attempt": key[1]}
        for row in conn.execute(_LATEST_SQL, (self.job_id, key[0], key[1])):
            for name, value in zip(METRIC_COLUMNS, row, strict=True):
                if value is not None or name not in entry:
                    entry[name] = value
        self._latest, self._latest_key, self._latest_dirty = entry, key, False

    # ---- adding rows -----------------------------------------------------------------------

    def add_rows(self, rows: list[tuple]) -> None:
        """Add rows ``(seq, step, attempt, loss, eval_loss, lr, throughput)`` in seq order.

        A run of rows with rising steps beyond the newest one (how a training run logs) is appended
        column by column at once; any other row is merged, replaces a step or is inserted on its own.
        """
        if not rows:
            return
        seqs, steps, attempts, *values = zip(*rows, strict=True)
        self._chart = None
        self._latest_dirty = True
        self._fit_buckets(min(steps), max(steps))
        count, start = len(rows), 0
        rising = list(map(operator.lt, steps, steps[1:]))  # rising[i]: row i + 1 is beyond row i
        while start < count:
            while start < count and self.steps and steps[start] <= self.steps[-1]:
                self._place(steps[start], attempts[start], tuple(column[start] for column in values))
                start += 1
            try:
                end = rising.index(False, start) + 1
            except ValueError:
                end = count
            if start < count:
                self._append(steps[start:end], attempts[start:end], [column[start:end] for column in values])
            start = end
        self.last_seq = seqs[-1]

    def _append(self, steps: tuple, attempts: tuple, values: list[tuple]) -> None:
        """Append entries with rising steps, all beyond the newest one."""
        base = len(self.steps)
        self.steps.extend(steps)
        self.attempts.extend(attempts)
        for name, column in zip(_FIELDS, values, strict=True):
            self.values[name].extend([_NAN if value is None else value for value in column])
            for offset in range(len(column) - 1, -1, -1):
                if column[offset] is not None:
                    self._last_index[name] = base + offset
                    break
            buckets = self._buckets_of.get(name)
            if buckets is not None:
                self._bucket_extend(buckets, steps, column)

    def _bucket_extend(self, buckets: _Buckets, steps: tuple, values: tuple) -> None:
        """Add rising `steps` and their `values` (None: not logged) to `buckets`, a bucket at a time."""
        width, count, start = self._width, len(steps), 0
        while start < count:
            bucket = steps[start] // width
            end = bisect_left(steps, (bucket + 1) * width, start, count)
            present = [value is not None for value in values[start:end]]
            number = sum(present)
            if number:
                total = sum(compress(values[start:end], present))
                buckets.add(bucket, total, number, sum(compress(steps[start:end], present)))
            start = end

    def _place(self, step: int, attempt: int, new: tuple) -> None:
        """A row for a step at or before the newest one: merge, replace or insert it."""
        index = bisect_left(self.steps, step)
        if index < len(self.steps) and self.steps[index] == step:
            current = self.attempts[index]
            if attempt < current:
                return  # an older attempt's line: the newer attempt already owns this step
            replace = attempt > current
            self.attempts[index] = attempt
        else:
            replace = True
            self.steps.insert(index, step)
            self.attempts.insert(index, attempt)
            for name in _FIELDS:
                self.values[name].insert(index, _NAN)
                if self._last_index[name] >= index:
                    self._last_index[name] += 1
        for name, value in zip(_FIELDS, new, strict=True):
            if value is None and not replace:
                continue  # a merged line without this value keeps the one logged before
            self._set(name, index, step, _NAN if value is None else value)

    def _set(self, name: str, index: int, step: int, value: float) -> None:
        column = self.values[name]
        old = column[index]
        column[index] = value
        buckets = self._buckets_of.get(name)
        if buckets is not None:
            bucket = step // self._width
            if not math.isnan(old):
                buckets.add(bucket, -old, -1, -step)
            if not math.isnan(value):
                buckets.add(bucket, value, 1, step)
        last = self._last_index[name]
        if not math.isnan(value):
            self._last_index[name] = max(last, index)
        elif index == last:
            position = index - 1
            while position >= 0 and math.isnan(column[position]):
                position -= 1
            self._last_index[name] = position

    def _fit_buckets(self, low: int, high: int) -> None:
        """Widen the buckets until the steps, with `low`..`high` added, span at most `max_points`."""
        first = min(self.steps[0], low) if self.steps else low
        last = max(self.steps[-1], high) if self.steps else high
        factor = 1
        while last // (self._width * factor) - first // (self._width * factor) >= self.max_points:
            factor *= 2
        if factor > 1:
            self._width *= factor
            for buckets in self._buckets_of.values():
                buckets.widen(factor)

    # ---- what the dashboard shows ------------------------------------------------------------

    def summary(self) -> MetricSummary:
        """An immutable snapshot: entry count, newest entry, last logged values, chart series."""
        last = {}
        for name in _FIELDS:
            index = self._last_index[name]
            last[name] = None if index < 0 else self.values[name][index]
        latest = dict(self._latest) if self._latest is not None else None
        return MetricSummary(len(self.steps), latest, last, self.chart())

    def chart(self) -> ChartSeries:
        """The chart's series (raw up to `max_points` entries, bucket means beyond); cached until a row
        changes them."""
        if self._chart is None:
            self._chart = self._raw_series() if len(self.steps) <= self.max_points else self._bucket_series()
        return self._chart

    def _raw_series(self) -> ChartSeries:
        steps: list[float] = []
        eval_steps: list[float] = []
        losses: list[float] = []
        eval_losses: list[float] = []
        loss_values, eval_values = self.values["loss"], self.values["eval_loss"]
        for index, step in enumerate(self.steps):
            if not math.isnan(loss_values[index]):
                steps.append(step)
                losses.append(loss_values[index])
            if not math.isnan(eval_values[index]):
                eval_steps.append(step)
                eval_losses.append(eval_values[index])
        return ChartSeries(steps, losses, ema(losses), eval_steps, eval_losses, 1)

    def _bucket_series(self) -> ChartSeries:
        steps, losses = self._buckets_of["loss"].points()
        eval_steps, eval_losses = self._buckets_of["eval_loss"].points()
        return ChartSeries(steps, losses, ema(losses), eval_steps, eval_losses, self._width)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry as a dict (step, attempt and the kept values, None where not logged); for tests
        and exports, not for polling."""
        result = []
        for index, step in enumerate(self.steps):
            entry: dict[str, Any] = {"step": step, "attempt": self.attempts[index]}
            for name in _FIELDS:
                value = self.values[name][index]
                entry[name] = None if math.isnan(value) else value
            result.append(entry)
        return result
