# Copyright 2025 vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Model-free part of the Video-R1-compatible evaluation protocol.

This module builds the question prompt, extracts answers from model outputs and scores them the way
Video-R1's ``src/eval_bench.py`` does (the protocol the V-Reason paper's tables follow, see ``SPEC.md``
section 7):

- multiple choice: exact match of the stripped strings;
- numerical: "decimal-ness" check, then equality after rounding both numbers to 2 decimals;
- regression (VSI-Bench numeric questions): mean relative accuracy (MRA);
- OCR and free-form: Video-R1 gives them 0. They are reported separately with a documented secondary
  metric (``1 - WER`` for OCR, ROUGE-L F1 for free-form) and never mixed into the accuracy average.

The metrics themselves (MRA, WER, ROUGE-L) live in :mod:`~vreason_hf.eval.metrics`.

The prompt *structure* matches Video-R1; the instruction *wording* is our own.

Everything here is pure Python, so it can be unit-tested without a model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .metrics import mean_relative_accuracy, ocr_score, rouge_l

__all__ = [
    "METRIC_BY_PROBLEM_TYPE",
    "PROBLEM_TYPES",
    "THINK_INSTRUCTION",
    "TYPE_SUFFIXES",
    "ScoreResult",
    "build_prompt",
    "extract_answer",
    "extract_think",
    "parse_number",
    "score_sample",
    "score_sample_detailed",
    "secondary_score",
    "validate_problem_type",
]

PROBLEM_TYPES: tuple[str, ...] = ("multiple choice", "numerical", "regression", "OCR", "free-form")
"""The ``problem_type`` values of Video-R1's evaluation files (spelling and case matter)."""

MetricName = Literal["accuracy", "mra", "wer", "rouge_l"]

METRIC_BY_PROBLEM_TYPE: dict[str, MetricName] = {
    "multiple choice": "accuracy",
    "numerical": "accuracy",
    "regression": "mra",
    "OCR": "wer",
    "free-form": "rouge_l",
}
"""Which metric each problem type is reported under."""

THINK_INSTRUCTION = (
    "Work through this question the way a person would when mulling it over carefully: talk to "
    "yourself as you go, with phrases such as 'hmm', 'let me see', 'wait a moment', 'so that means' "
    "or 'on second thought', and stop now and then to question and double-check your own steps. "
    "Write all of this reasoning between the <think> and </think> tags, then write your final answer "
    "between the <answer> and </answer> tags."
)
"""Thinking instruction appended after the question (our wording of Video-R1's instruction)."""

TYPE_SUFFIXES: dict[str, str] = {
    "multiple choice": (
        " Inside the <answer> </answer> tags, write only the letter of the option you pick "
        "(for example A, B, C or D)."
    ),
    "numerical": " Inside the <answer> </answer> tags, write only the number (for example 42 or 3.14).",
    "regression": " Inside the <answer> </answer> tags, write only the number (for example 42 or 3.14).",
    "OCR": (
        " Copy out the text that appears in the image or video faithfully and put that transcription "
        "inside the <answer> </answer> tags."
    ),
    "free-form": " Inside the <answer> </answer> tags, write your answer as text.",
}
"""Per-``problem_type`` suffix appended to :data:`THINK_INSTRUCTION` (starts with a space, as in Video-R1)."""

_ANSWER_RE = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
_THINK_RE = re.compile(r"<think>\s*(.*?)\s*</think>", re.DOTALL)
_OPTION_LABEL_RE = re.compile(r"^\s*\(?([A-Za-z])\s*[.):]")


def validate_problem_type(problem_type: object) -> str:
    """Check that ``problem_type`` is one of :data:`PROBLEM_TYPES`.

    Args:
        problem_type (`object`):
            The value of a sample's ``problem_type`` field.

    Returns:
        `str`: ``problem_type`` itself.

    Raises:
        ValueError: If the value is not one of :data:`PROBLEM_TYPES` (the message names the field, the
            value and the allowed values).
    """
    if not isinstance(problem_type, str) or problem_type not in PROBLEM_TYPES:
        allowed = ", ".join(repr(t) for t in PROBLEM_TYPES)
        raise ValueError(f"Unknown `problem_type` {problem_type!r}; allowed values are: {allowed}.")
    return problem_type


def _require(sample: Mapping, field: str) -> object:
    if field not in sample:
        raise ValueError(f"Sample is missing the required field `{field}`.")
    return sample[field]


def build_prompt(sample: Mapping) -> str:
    """Build the text part of the user turn for one evaluation sample.

    The structure follows Video-R1's ``eval_bench.py``: for multiple choice the question is the
    ``problem`` directly followed by ``"Options:\\n"`` and then every option, each followed by a newline
    (no separator is inserted between ``problem`` and ``"Options:"``); for every other type it is just
    the ``problem``. Then come a newline, :data:`THINK_INSTRUCTION` and the type suffix from
    :data:`TYPE_SUFFIXES`. The video (or image) goes *before* this text in the chat message.

    Args:
        sample (`Mapping`):
            A Video-R1 evaluation record with at least ``problem`` and ``problem_type`` (and ``options``
            for multiple choice).

    Returns:
        `str`: The prompt text.

    Raises:
        ValueError: If ``problem_type`` is unknown, or a required field is missing or malformed.

    Example:

    ```python
    >>> from vreason_hf.eval import build_prompt
    >>> text = build_prompt(
    ...     {"problem": "What is shown?", "problem_type": "multiple choice", "options": ["A. cat", "B. dog"]}
    ... )
    >>> text.startswith("What is shown?Options:\\nA. cat\\nB. dog\\n\\n")
    True

    ```
    """
    problem_type = validate_problem_type(_require(sample, "problem_type"))
    problem = _require(sample, "problem")
    if not isinstance(problem, str):
        raise ValueError(f"Field `problem` must be a string, got {type(problem).__name__}.")
    if problem_type == "multiple choice":
        options = _require(sample, "options")
        if (
            not isinstance(options, list | tuple)
            or not options
            or not all(isinstance(o, str) for o in options)
        ):
            raise ValueError(
                f"Field `options` must be a non-empty list of strings for multiple choice, got {options!r}."
            )
        question = problem + "Options:\n" + "".join(option + "\n" for option in options)
    else:
        question = problem
    return question + "\n" + THINK_INSTRUCTION + TYPE_SUFFIXES[problem_type]


def extract_answer(text: str) -> str:
    """Extract the final answer from a model output (or a ``solution`` field).

    Returns the stripped content of the *first* ``<answer>...</answer>`` block (pattern
    ``<answer>\\s*(.*?)\\s*</answer>`` with ``re.DOTALL``). If there is no such block, or it is empty,
    the whole text (stripped) is returned, as Video-R1 does for model outputs.

    Args:
        text (`str`):
            The generated text.

    Returns:
        `str`: The extracted answer.
    """
    match = _ANSWER_RE.search(text)
    if match is not None:
        answer = match.group(1).strip()
        if answer:
            return answer
    return text.strip()


def extract_think(text: str) -> str:
    """Extract the reasoning of a model output, as Video-R1 does for its ``process`` field.

    Args:
        text (`str`):
            The generated text.

    Returns:
        `str`: The stripped content of the first ``<think>...</think>`` block (pattern
        ``<think>\\s*(.*?)\\s*</think>`` with ``re.DOTALL``), or ``""`` when there is none.
    """
    match = _THINK_RE.search(text)
    return match.group(1).strip() if match is not None else ""


def _has_answer_block(text: str) -> bool:
    match = _ANSWER_RE.search(text)
    return match is not None and bool(match.group(1).strip())


def parse_number(text: str) -> float | None:
    """Parse a number the way Video-R1 does: remove every ``","`` and call `float`.

    Args:
        text (`str`):
            The (extracted) answer.

    Returns:
        `float | None`: The number, or `None` when `float` fails or the result is not finite (``"inf"``
        and ``"nan"`` are treated as unparsable; they would score 0 in Video-R1 anyway).
    """
    try:
        value = float(text.replace(",", ""))
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _option_letters(options: object) -> set[str] | None:
    if not isinstance(options, list | tuple) or not options:
        return None
    letters = set()
    for option in options:
        match = _OPTION_LABEL_RE.match(option) if isinstance(option, str) else None
        if match is None:
            return None
        letters.add(match.group(1))
    return letters


@dataclass(frozen=True)
class ScoreResult:
    """Detailed score of one sample.

    Attributes:
        score (`float`):
            Video-R1's score: 0/1 accuracy for multiple choice and numerical, MRA for regression, and
            always 0.0 for OCR and free-form (Video-R1 does not score them; see ``secondary``).
        extracted (`str`):
            The answer extracted from the output with :func:`extract_answer`.
        target (`str`):
            The answer extracted from the sample's ``solution``.
        parsable (`bool`):
            Whether the prediction has the form the problem type asks for: a number `float` can parse
            (numerical, regression); one of the option letters (multiple choice; any single letter when
            the option labels cannot be read); for OCR and free-form, a non-empty ``<answer>`` block, or
            non-empty text without any ``<answer>`` tag.
        answer_tagged (`bool`):
            Whether the output contained a non-empty ``<answer>...</answer>`` block.
        metric (`str`):
            The metric this problem type is reported under: ``"accuracy"``, ``"mra"``, ``"wer"`` (OCR)
            or ``"rouge_l"`` (free-form).
        secondary (`float | None`):
            For OCR ``1 - WER`` (:func:`ocr_score`), for free-form ROUGE-L F1 (:func:`rouge_l`);
            `None` for the other types.
    """

    score: float
    extracted: str
    target: str
    parsable: bool
    answer_tagged: bool
    metric: MetricName
    secondary: float | None = None


def score_sample_detailed(
    sample: Mapping, output_text: str, *, video_r1_float32: bool = False
) -> ScoreResult:
    """Score one model output against a Video-R1 evaluation record.

    The ``solution`` field is itself wrapped in ``<answer>`` tags and is extracted with
    :func:`extract_answer`, like the prediction. Rules per ``problem_type``:

    - ``"multiple choice"``: 1.0 iff the stripped strings are equal (case-sensitive; ``"A."`` != ``"A"``).
    - ``"numerical"``: 0.0 if exactly one of prediction and target contains ``"."`` or ``","`` (so
      ``"3"`` vs ``"3.0"`` and ``"1,000"`` vs ``"1000"`` score 0); otherwise both are parsed with
      :func:`parse_number` (unparsable: 0.0) and compared after ``round(x, 2)``.
    - ``"regression"``: :func:`mean_relative_accuracy` of the parsed numbers (unparsable: 0.0).
    - ``"OCR"`` / ``"free-form"``: 0.0, with ``secondary`` set to :func:`ocr_score` / :func:`rouge_l`.

    Args:
        sample (`Mapping`):
            A record with ``problem_type`` and ``solution`` (``options`` is used, if present, to decide
            whether a multiple-choice prediction is parsable).
        output_text (`str`):
            The generated text.
        video_r1_float32 (`bool`, *optional*, defaults to `False`):
            Forwarded to :func:`mean_relative_accuracy` for regression items.

    Returns:
        [`ScoreResult`]: The score and diagnostics.

    Raises:
        ValueError: If ``problem_type`` is unknown or ``solution`` is missing or not a string.
    """
    problem_type = validate_problem_type(_require(sample, "problem_type"))
    solution = _require(sample, "solution")
    if not isinstance(solution, str):
        raise ValueError(f"Field `solution` must be a string, got {type(solution).__name__}.")
    prediction = extract_answer(output_text)
    target = extract_answer(solution)
    tagged = _has_answer_block(output_text)
    metric = METRIC_BY_PROBLEM_TYPE[problem_type]

    def result(score: float, parsable: bool, secondary: float | None = None) -> ScoreResult:
        return ScoreResult(score, prediction, target, parsable, tagged, metric, secondary)

    if problem_type == "multiple choice":
        letters = _option_letters(sample.get("options"))
        parsable = (
            (len(prediction) == 1 and prediction.isalpha()) if letters is None else prediction in letters
        )
        return result(1.0 if prediction == target else 0.0, parsable)

    if problem_type in ("numerical", "regression"):
        pred_number = parse_number(prediction)
        target_number = parse_number(target)
        parsable = pred_number is not None
        if pred_number is None or target_number is None:
            return result(0.0, parsable)
        if problem_type == "regression":
            return result(
                mean_relative_accuracy(pred_number, target_number, video_r1_float32=video_r1_float32),
                parsable,
            )

        def has_separator(text: str) -> bool:
            return "." in text or "," in text

        if has_separator(prediction) != has_separator(target):
            return result(0.0, parsable)
        return result(1.0 if round(pred_number, 2) == round(target_number, 2) else 0.0, parsable)

    secondary = ocr_score(prediction, target) if problem_type == "OCR" else rouge_l(prediction, target)
    # An answer is present if there is a non-empty <answer> block, or untagged non-empty text; an empty or
    # unclosed <answer> block counts as no answer.
    has_answer = tagged or (bool(prediction) and "<answer>" not in output_text)
    return result(0.0, has_answer, secondary)


def score_sample(sample: Mapping, output_text: str, *, video_r1_float32: bool = False) -> float:
    """Video-R1 score of one output; shorthand for ``score_sample_detailed(...).score``.

    See :func:`score_sample_detailed` for the rules. OCR and free-form items score 0.0 (use
    :func:`secondary_score` for their separate metric).
    """
    return score_sample_detailed(sample, output_text, video_r1_float32=video_r1_float32).score


def secondary_score(sample: Mapping, output_text: str) -> float | None:
    """Separate metric for the types Video-R1 does not score.

    Args:
        sample (`Mapping`):
            A record with ``problem_type`` and ``solution``.
        output_text (`str`):
            The generated text.

    Returns:
        `float | None`: :func:`ocr_score` (``max(0, 1 - WER)``) for ``"OCR"``, :func:`rouge_l` F1 for
        ``"free-form"``, `None` for every other type.

    Raises:
        ValueError: If ``problem_type`` is unknown or ``solution`` is missing.
    """
    return score_sample_detailed(sample, output_text).secondary
