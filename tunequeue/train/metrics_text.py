"""Text-similarity metrics of generated answers: BLEU-4 and ROUGE-1/2/L, for English and Chinese.

Texts are split into words first: Chinese (any CJK character) with jieba, everything else on
letters/digits runs and single punctuation marks, lower-cased. BLEU-4 is nltk's sentence BLEU with
uniform 4-gram weights and smoothing method 3 (as LLaMA-Factory reports it); ROUGE-1/2/L are the F1 scores
of rouge-score over the same words (its default tokenizer drops CJK, so it gets ours). Every figure is
the mean over examples, in percent, rounded to 4 places. Everything works offline.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def has_cjk(text: str) -> bool:
    """True when `text` contains a Chinese (CJK unified) character."""
    return bool(_CJK.search(text))


def words(text: str) -> list[str]:
    """Split `text` into words: jieba for text with Chinese, else word and punctuation tokens."""
    if has_cjk(text):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        return [token.lower() for token in jieba.lcut(text) if token.strip()]
    return [token.lower() for token in _WORD.findall(text)]


class _WordTokenizer:
    """The tokenizer object rouge-score accepts: `tokenize(text) -> list[str]`."""

    def tokenize(self, text: str) -> list[str]:
        """Split like `words`."""
        return words(text)


def bleu4(prediction: str, reference: str) -> float:
    """Sentence BLEU-4 of one prediction against one reference (0–1; 0 when either side is empty)."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hyp, ref = words(prediction), words(reference)
    if not hyp or not ref:
        return 0.0
    return float(
        sentence_bleu(
            [ref], hyp, weights=(0.25, 0.25, 0.25, 0.25), smoothing_function=SmoothingFunction().method3
        )
    )


def rouge(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F1 of one prediction against one reference (0–1 each)."""
    from rouge_score.rouge_scorer import RougeScorer

    if not words(prediction) or not words(reference):
        return {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_WordTokenizer())
    scores = scorer.score(reference, prediction)
    return {
        "rouge-1": scores["rouge1"].fmeasure,
        "rouge-2": scores["rouge2"].fmeasure,
        "rouge-l": scores["rougeL"].fmeasure,
    }


def similarity_scores(predictions: list[str], references: list[str]) -> dict[str, Any]:
    """Mean BLEU-4 and ROUGE-1/2/L over pairs, in percent: {"bleu-4", "rouge-1", "rouge-2", "rouge-l"}."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    totals = {"bleu-4": 0.0, "rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    for prediction, reference in zip(predictions, references, strict=True):
        totals["bleu-4"] += bleu4(prediction, reference)
        for key, value in rouge(prediction, reference).items():
            totals[key] += value
    count = max(len(predictions), 1)
    return {key: round(100.0 * value / count, 4) for key, value in totals.items()}
