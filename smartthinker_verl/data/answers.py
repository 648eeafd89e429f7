"""Answers and metadata values of a source dataset, normalised to the strings a verl row holds."""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_missing(value: Any) -> bool:
    """True for None, NaN and blank strings: values that carry no answer (or problem) at all."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def normalize_answer(value: Any) -> str | None:
    """A source answer as the ground-truth string verl stores, or None when it is not usable.

    Strings are stripped; integral numbers lose their decimal point (AMC's ``27.0`` -> ``"27"``); other finite
    numbers use Python's shortest round-trip form (``2.5`` -> ``"2.5"``). None, NaN, infinities, blank strings,
    booleans and containers give None.
    """
    if is_missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            return None
        return str(int(number)) if number.is_integer() else repr(number)
    return None


def extract_gsm8k_answer(value: Any) -> str | None:
    """GSM8K's final answer: the text after the last ``####``, stripped, thousands separators removed.

    ``"...she sold 72 clips.\\n#### 1,072"`` -> ``"1072"``. None when there is no ``####`` or nothing after it.
    """
    if not isinstance(value, str) or "####" not in value:
        return None
    answer = value.rsplit("####", 1)[1].strip().replace(",", "")
    return answer or None
