"""Ingest: byte-offset tailing of trainer_log.jsonl (complete lines only, truncation, bad lines)."""

from __future__ import annotations

import json

from tunequeue.runner.ingest import read_new_rows


def test_reads_only_complete_lines_and_resumes(tmp_path):
    path = tmp_path / "trainer_log.jsonl"
    assert read_new_rows(path, 0) == ([], 0)
    first = json.dumps({"current_steps": 1, "loss": 2.5}) + "\n"
    partial = '{"current_steps": 2, "lo'
    path.write_text(first + partial)
    rows, offset = read_new_rows(path, 0)
    assert rows == [{"current_steps": 1, "loss": 2.5}] and offset == len(first)
    assert read_new_rows(path, offset) == ([], offset)
    with open(path, "a") as handle:
        handle.write('ss": 2.0}\nnot json\n[1, 2]\n\n' + json.dumps({"current_steps": 3}) + "\n")
    rows, offset2 = read_new_rows(path, offset)
    assert [row["current_steps"] for row in rows] == [2, 3]
    assert offset2 == path.stat().st_size


def test_truncated_file_is_read_from_start(tmp_path):
    path = tmp_path / "trainer_log.jsonl"
    path.write_text("".join(json.dumps({"current_steps": i}) + "\n" for i in range(1, 6)))
    _, offset = read_new_rows(path, 0)
    path.write_text(json.dumps({"current_steps": 1, "loss": 9.0}) + "\n")
    rows, new_offset = read_new_rows(path, offset)
    assert rows == [{"current_steps": 1, "loss": 9.0}]
    assert new_offset == path.stat().st_size
