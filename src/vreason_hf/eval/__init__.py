# Copyright 2025 vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Video-R1-compatible evaluation: prompts, answer extraction, scoring, dataset reading, summaries.

Everything exported here is model-free (see ``SPEC.md`` section 7 for the protocol).
"""

from .data import DATA_TYPES, REQUIRED_FIELDS, load_samples, sample_id, validate_sample
from .scoring import (
    METRIC_BY_PROBLEM_TYPE,
    MRA_THRESHOLDS,
    PROBLEM_TYPES,
    THINK_INSTRUCTION,
    TYPE_SUFFIXES,
    ScoreResult,
    build_prompt,
    extract_answer,
    mean_relative_accuracy,
    ocr_score,
    parse_number,
    rouge_l,
    score_sample,
    score_sample_detailed,
    secondary_score,
    validate_problem_type,
    word_error_rate,
)
from .summary import RECORD_FIELDS, summarize, summary_to_markdown

__all__ = [
    "DATA_TYPES",
    "METRIC_BY_PROBLEM_TYPE",
    "MRA_THRESHOLDS",
    "PROBLEM_TYPES",
    "RECORD_FIELDS",
    "REQUIRED_FIELDS",
    "THINK_INSTRUCTION",
    "TYPE_SUFFIXES",
    "ScoreResult",
    "build_prompt",
    "extract_answer",
    "load_samples",
    "mean_relative_accuracy",
    "ocr_score",
    "parse_number",
    "rouge_l",
    "sample_id",
    "score_sample",
    "score_sample_detailed",
    "secondary_score",
    "summarize",
    "summary_to_markdown",
    "validate_problem_type",
    "validate_sample",
    "word_error_rate",
]
