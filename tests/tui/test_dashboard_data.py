"""Pieces behind the dashboard: following train.log by byte offset, durations, EMA, fixed-scale bars."""

from __future__ import annotations

from tunequeue.tui.data import LOG_TAIL_BYTES, read_log_tail
from tunequeue.tui.formatting import ema, format_duration, parse_clock


def test_log_tail_reads_complete_lines_and_follows(tmp_path):
    log = tmp_path / "train.log"
    assert read_log_tail(log, 0).missing
    log.write_text("one\ntwo\npart")
    chunk = read_log_tail(log, 0)
    assert chunk.lines == ["one", "two"] and chunk.offset == len("one\ntwo\n")
    with log.open("a") as handle:
        handle.write("ial\nthree\n")
    chunk = read_log_tail(log, chunk.offset)
    assert chunk.lines == ["partial", "three"] and not chunk.reset


def test_log_tail_starts_over_after_truncation_and_keeps_last_progress_state(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("a long first run\n" * 10)
    offset = read_log_tail(log, 0).offset
    log.write_text("loading 10%\rloading 100%\n")
    chunk = read_log_tail(log, offset)
    assert chunk.reset and chunk.lines == ["loading 100%"]


def test_log_tail_of_a_big_file_reads_only_the_end(tmp_path):
    log = tmp_path / "train.log"
    lines = [f"line {i:06d}" for i in range(20_000)]
    log.write_text("\n".join(lines) + "\n")
    chunk = read_log_tail(log, 0)
    assert chunk.lines[-1] == "line 019999"
    assert len(chunk.lines) < LOG_TAIL_BYTES // 10
    assert all(line.startswith("line ") and len(line) == 11 for line in chunk.lines)


def test_durations_and_smoothing():
    assert format_duration(59) == "0:59"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(3 * 86400 + 4 * 3600) == "3d04h"
    assert format_duration(None) == "-"
    assert parse_clock("0:01:05") == 65
    assert parse_clock("1 day, 2:00:00") == 93600
    assert parse_clock("soon") is None
    assert ema([4.0, 4.0, 4.0]) == [4.0, 4.0, 4.0]
    smoothed = ema([10.0, 0.0])
    assert smoothed[0] == 10.0 and 0.0 < smoothed[1] < 10.0
