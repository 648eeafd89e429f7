"""Grade generation records with the training scorer (:mod:`smartthinker_verl.scoring`).

At evaluation the ``</think>`` gate is off by default (``require_think_close=False``): the answer is read after the
last ``</think>``, or from the whole response when there is none. ``--require-think-close`` grades as training does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smartthinker_verl.data import normalize_answer
from smartthinker_verl.errors import DataError
from smartthinker_verl.evaluation.records import record_key

logger = logging.getLogger(__name__)

#: Responses sent to the scorer per call (progress is reported between calls).
GRADE_CHUNK = 256


def ground_truth_text(value: Any) -> str:
    """A record's ground truth as the scorer wants it: a string (numbers such as ``27.0`` converted, as
    :func:`smartthinker_verl.data.normalize_answer` does for the parquet rows)."""
    if isinstance(value, str):
        return value
    text = normalize_answer(value)
    if text is None:
        raise DataError(f"ground truth {value!r} is not an answer; fix the generations file")
    return text


def grade_records(
    records: Sequence[dict[str, Any]], *, require_think_close: bool = False, progress: Any = None
) -> list[dict[str, Any]]:
    """Grade every record's ``response`` against its ``ground_truth``, in parallel: one line of ``res.graded.jsonl``
    per record, what the metrics are computed from (the sample's identity and its grade, not the response).
    ``require_think_close``: score 0 without ``</think>`` (the training rule); ``progress``: a tqdm bar or None."""
    from smartthinker_verl.scoring import grade_batch

    graded = []
    for start in range(0, len(records), GRADE_CHUNK):
        chunk = records[start : start + GRADE_CHUNK]
        truths = [ground_truth_text(r["ground_truth"]) for r in chunk]
        results = grade_batch([r["response"] or "" for r in chunk], truths, require_think_close=require_think_close)
        for record, result in zip(chunk, results, strict=True):
            graded.append(
                {
                    "id": record["id"],
                    "sample": record_key(record)[1],
                    "benchmark": record.get("benchmark"),
                    "data_source": record.get("data_source"),
                    "ground_truth": record["ground_truth"],
                    "correct": bool(result.correct),
                    "think_closed": bool(result.think_closed),
                    "timed_out": bool(result.timed_out),
                    "answer_tail": result.answer[-200:],
                    "response_tokens": record.get("response_tokens"),
                    "finish_reason": record.get("finish_reason"),
                }
            )
        if progress is not None:
            progress.update(len(chunk))
    timeouts = sum(g["timed_out"] for g in graded)
    if timeouts:
        logger.warning("%d of %d answers hit the grading time limit and scored 0", timeouts, len(graded))
    return graded


def count_response_tokens(records: Sequence[dict[str, Any]], tokenizer_path: str | Path) -> None:
    """Fill in ``response_tokens`` (in place) where missing, counting with the tokenizer at ``tokenizer_path``."""
    from transformers import AutoTokenizer

    missing = [r for r in records if r.get("response_tokens") is None]
    if not missing:
        return
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
    encoded = tokenizer([r["response"] or "" for r in missing], add_special_tokens=False)["input_ids"]
    for record, ids in zip(missing, encoded, strict=True):
        record["response_tokens"] = len(ids)
    logger.info("counted response tokens of %d records with %s", len(missing), tokenizer_path)
