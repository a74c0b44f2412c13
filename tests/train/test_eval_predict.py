"""Evaluate and predict jobs on the tiny model, and the BLEU/ROUGE code pinned on hand-checked strings."""

from __future__ import annotations

import json
import math

import pytest
from tq_train_helpers import read_log, run_in_process, write_task

from tunequeue.train.metrics_text import bleu4, rouge, similarity_scores, words


def test_words_split_english_and_chinese():
    assert words("The cat sat on the mat.") == ["the", "cat", "sat", "on", "the", "mat", "."]
    assert words("我爱北京天安门") == ["我", "爱", "北京", "天安门"]


def test_english_scores_match_hand_counts():
    # hyp "the cat is on the mat" vs ref "the cat sat on the mat":
    # unigrams 5/6 both ways; bigrams 3 of 5 (the-cat, on-the, the-mat); LCS 5 words.
    scores = rouge("the cat is on the mat", "the cat sat on the mat")
    assert scores["rouge-1"] == pytest.approx(5 / 6)
    assert scores["rouge-2"] == pytest.approx(3 / 5)
    assert scores["rouge-l"] == pytest.approx(5 / 6)
    # BLEU-4: p1 5/6, p2 3/5, p3 1/4 (on-the-mat), p4 0/3 → smoothed to 1/(2·3); no brevity penalty.
    expected = (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    assert bleu4("the cat is on the mat", "the cat sat on the mat") == pytest.approx(expected)


def test_chinese_scores_match_hand_counts():
    # jieba: hyp 我/爱/北京/天安门, ref 我/爱/北京.
    scores = rouge("我爱北京天安门", "我爱北京")
    assert scores["rouge-1"] == pytest.approx(2 * (3 / 4) * 1 / (3 / 4 + 1))
    assert scores["rouge-2"] == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert scores["rouge-l"] == pytest.approx(2 * (3 / 4) * 1 / (3 / 4 + 1))
    # p1 3/4, p2 2/3, p3 1/2, p4 0/1 → 1/2; hypothesis longer than reference: no brevity penalty.
    assert bleu4("我爱北京天安门", "我爱北京") == pytest.approx((3 / 4 * 2 / 3 * 1 / 2 * 1 / 2) ** 0.25)


def test_similarity_scores_are_percent_means():
    scores = similarity_scores(["the cat sat on the mat", "完全不同"], ["the cat sat on the mat", "我爱北京"])
    assert scores == {"bleu-4": 50.0, "rouge-1": 50.0, "rouge-2": 50.0, "rouge-l": 50.0}
    assert similarity_scores(["", "x"], ["a", ""])["rouge-1"] == 0.0


PREDICT = {
    "do_train": False,
    "max_samples": 4,
    "per_device_eval_batch_size": 2,
    "max_new_tokens": 6,
    "extra": {"do_sample": False},
}


@pytest.mark.slow
def test_predict_writes_predictions_and_scores(tmp_path):
    run_dir = tmp_path / "predict"
    task = write_task(run_dir, do_predict=True, predict_with_generate=True, **PREDICT)
    assert run_in_process(task) == 0
    lines = (run_dir / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 4
    assert all(set(row) == {"prompt", "predict", "label"} and row["label"] for row in rows)
    results = json.loads((run_dir / "predict_results.json").read_text())
    for key in ("predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l"):
        assert 0.0 <= results[key] <= 100.0
    assert results["predict_samples"] == 4
    progress = read_log(run_dir)
    assert progress[-1]["current_steps"] == progress[-1]["total_steps"] == 2
    # Greedy decoding is deterministic: a second run predicts the same answers.
    again = tmp_path / "again"
    assert run_in_process(write_task(again, do_predict=True, predict_with_generate=True, **PREDICT)) == 0
    assert (again / "generated_predictions.jsonl").read_text(encoding="utf-8") == "\n".join(lines) + "\n"


@pytest.mark.slow
def test_eval_reports_a_finite_loss(tmp_path):
    run_dir = tmp_path / "eval"
    task = write_task(run_dir, do_eval=True, eval_dataset="demo_alpaca", **PREDICT)
    assert run_in_process(task) == 0
    results = json.loads((run_dir / "eval_results.json").read_text())
    assert math.isfinite(results["eval_loss"]) and results["eval_loss"] > 0
    assert results["eval_samples"] == 4
    assert read_log(run_dir)[-1]["eval_loss"] == pytest.approx(results["eval_loss"], rel=1e-5)


def test_task_kinds():
    from tunequeue.core.errors import UserError
    from tunequeue.core.job_kinds import task_kind

    assert task_kind({}) == "train"
    assert task_kind({"do_train": False, "export_dir": "/x"}) == "export"
    assert task_kind({"do_train": False, "do_predict": True}) == "predict"
    assert task_kind({"do_train": False, "do_eval": True}) == "eval"
    with pytest.raises(UserError):
        task_kind({"do_train": False})


def test_do_sample_is_a_task_key_and_older_files_keep_it_in_extra():
    from transformers import AutoTokenizer

    from tunequeue.core.spec import TaskSpec
    from tunequeue.train.assets import bundled_model_dir
    from tunequeue.train.evaluate import generation_settings

    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_dir()))
    base = {"task_name": "p", "model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca"}

    def settings(**keys):
        return generation_settings(TaskSpec.from_mapping({**base, **keys}), tokenizer)

    default = settings()
    assert default["do_sample"] is True and (default["temperature"], default["top_p"]) == (0.95, 0.7)
    greedy = settings(do_sample=False)
    assert greedy["do_sample"] is False and greedy["temperature"] is None and greedy["top_p"] is None
    sampled = settings(do_sample=True, temperature=0.5, top_p=0.9)
    assert sampled["do_sample"] is True and (sampled["temperature"], sampled["top_p"]) == (0.5, 0.9)
    assert settings(do_sample=True, temperature=0)["do_sample"] is False  # temperature 0 is greedy
    assert settings(extra={"do_sample": True})["do_sample"] is True  # a task file from before the key
    assert settings(extra={"do_sample": False})["do_sample"] is False
    assert settings(do_sample=False, extra={"do_sample": True})["do_sample"] is False  # the key wins
