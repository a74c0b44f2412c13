"""pt on plain text: loss falls; packing on and off train on the same tokens; sft packing too."""

from __future__ import annotations

import json

import pytest
from tq_train_helpers import assert_learns, read_log, run_in_process, write_task

pytestmark = pytest.mark.slow

PT = {"stage": "pt", "dataset": "demo_pretrain", "max_samples": 16, "cutoff_len": 128}


def _results(run_dir):
    return json.loads((run_dir / "train_results.json").read_text())


def test_pt_learns_on_plain_text(tmp_path):
    run_dir = tmp_path / "pt"
    assert run_in_process(write_task(run_dir, **PT, num_train_epochs=8, per_device_train_batch_size=1)) == 0
    assert_learns(run_dir)
    assert (run_dir / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("stage_settings", [PT, {"stage": "sft", "max_samples": 8}], ids=["pt", "sft"])
def test_packing_on_and_off_train_the_same_tokens(tmp_path, stage_settings):
    totals = {}
    for packing in (True, False):
        run_dir = tmp_path / f"packing-{packing}"
        task = write_task(run_dir, **stage_settings, packing=packing, num_train_epochs=1)
        assert run_in_process(task) == 0
        results = _results(run_dir)
        totals[packing] = (results["num_train_tokens"], results["total_tokens"])
        assert all(r["loss"] == r["loss"] for r in read_log(run_dir) if "loss" in r)
    # Tokens that carry loss, and real (non-padding) input tokens seen in one epoch, are identical.
    assert totals[True] == totals[False], totals
    assert totals[True][0] > 0
