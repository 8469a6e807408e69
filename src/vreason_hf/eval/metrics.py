# Copyright 2025 vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The metrics of the Video-R1 protocol's scores: mean relative accuracy (regression), and the secondary metrics of
the types Video-R1 does not score (OCR: ``1 - WER``; free-form: ROUGE-L F1). Pure Python (NumPy only for the optional
bit-exact Video-R1 MRA arithmetic)."""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["MRA_THRESHOLDS", "mean_relative_accuracy", "ocr_score", "rouge_l", "word_error_rate"]

MRA_THRESHOLDS: tuple[Fraction, ...] = tuple(Fraction(50 + 5 * k, 100) for k in range(10))
"""The 10 confidence thresholds θ = 0.50, 0.55, ..., 0.95 of MRA, built exactly from integers."""

_MRA_EPSILON = Fraction(1, 10**8)
_WORD_RE = re.compile(r"\w+")


def _mra_video_r1_float32(pred: float, target: float) -> float:
    # Bit-exact replica of Video-R1's torch float32 arithmetic: float32 inputs, float32 epsilon, float32
    # thresholds `0.5 + 0.05 * i` (computed in double, then rounded, like `torch.arange` on CPU).
    import numpy as np

    with np.errstate(all="ignore"):
        p = np.float32(pred)
        t = np.float32(target)
        rel = np.abs(p - t) / (np.abs(t) + np.float32(1e-8))
        thresholds = np.array([0.5 + 0.05 * i for i in range(10)], dtype=np.float64).astype(np.float32)
        hits = int(np.count_nonzero(rel < (np.float32(1.0) - thresholds)))
    return hits / 10


def mean_relative_accuracy(pred: float, target: float, *, video_r1_float32: bool = False) -> float:
    """Mean relative accuracy (MRA) of VSI-Bench, as used by Video-R1 for ``regression`` items.

    ``MRA = (1/10) * sum over θ in {0.50, 0.55, ..., 0.95} of 1[|pred - gt| / |gt| < 1 - θ]``
    (strict inequality).

    By default the comparison is done in **exact rational arithmetic** (floats convert exactly to
    `fractions.Fraction`, thresholds are built from integers), so boundary cases behave as the formula
    says: ``MRA(9, 10) = 0.8`` because the relative error 0.1 is *not* below ``1 - 0.90``. Video-R1's
    ``+ 1e-8`` in the denominator only guards against division by zero, so it is applied only when
    ``target == 0`` (then ``|pred| / 1e-8 < 1 - θ`` is used; ``MRA(0, 0) = 1``).

    Video-R1 itself computes in torch float32, where rounding of the thresholds and of the relative error
    decides exact-boundary cases in an arbitrary way (e.g. ``MRA(9, 10) = 0.9`` there). Pass
    ``video_r1_float32=True`` to reproduce that arithmetic bit for bit (NumPy float32 emulation) when
    numbers must match Video-R1's tables; the two modes only differ when the relative error is exactly
    ``1 - θ`` for some θ.

    Args:
        pred (`float`):
            Predicted value.
        target (`float`):
            Ground-truth value.
        video_r1_float32 (`bool`, *optional*, defaults to `False`):
            Use Video-R1's float32 arithmetic instead of exact arithmetic.

    Returns:
        `float`: A multiple of 0.1 in ``[0, 1]``; 0.0 if either value is not finite.
    """
    if not (math.isfinite(pred) and math.isfinite(target)):
        return 0.0
    if video_r1_float32:
        return _mra_video_r1_float32(pred, target)
    error = abs(Fraction(pred) - Fraction(target))
    scale = abs(Fraction(target)) if target != 0 else _MRA_EPSILON
    hits = sum(1 for theta in MRA_THRESHOLDS if error < (1 - theta) * scale)
    return hits / 10


def _levenshtein(a: list[str], b: list[str]) -> int:
    previous = list(range(len(b) + 1))
    for i, token_a in enumerate(a, start=1):
        current = [i]
        for j, token_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (token_a != token_b)))
        previous = current
    return previous[-1]


def word_error_rate(prediction: str, reference: str) -> float:
    """Word error rate: word-level Levenshtein distance divided by the number of reference words.

    Both strings are case-folded and split on whitespace; punctuation is kept (it matters for OCR).

    Args:
        prediction (`str`):
            Hypothesis text.
        reference (`str`):
            Reference text.

    Returns:
        `float`: ``(substitutions + deletions + insertions) / len(reference_words)``, which can exceed 1.
        With an empty reference: 0.0 if the prediction is empty too, else 1.0.
    """
    hyp = prediction.casefold().split()
    ref = reference.casefold().split()
    if not ref:
        return 0.0 if not hyp else 1.0
    return _levenshtein(hyp, ref) / len(ref)


def ocr_score(prediction: str, reference: str) -> float:
    """Secondary OCR metric: ``max(0, 1 - WER)`` (see :func:`word_error_rate`), in ``[0, 1]``."""
    return max(0.0, 1.0 - word_error_rate(prediction, reference))


def _lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0]
        for j, token_b in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token_a == token_b else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 between a prediction and a reference, in pure Python.

    Tokens are the case-folded ``\\w+`` runs (punctuation dropped, no stemming). With ``L`` the length of
    the longest common subsequence, precision is ``L / len(prediction_tokens)``, recall
    ``L / len(reference_tokens)`` and the score is their harmonic mean.

    Args:
        prediction (`str`):
            Hypothesis text.
        reference (`str`):
            Reference text.

    Returns:
        `float`: ROUGE-L F1 in ``[0, 1]``; 0.0 if either side has no token (as in ``rouge_score``).
    """
    hyp = _WORD_RE.findall(prediction.casefold())
    ref = _WORD_RE.findall(reference.casefold())
    if not hyp or not ref:
        return 0.0
    lcs = _lcs_length(hyp, ref)
    if lcs == 0:
        return 0.0
    precision = lcs / len(hyp)
    recall = lcs / len(ref)
    return 2 * precision * recall / (precision + recall)
