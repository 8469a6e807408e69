# Copyright 2025 vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Video-R1-compatible evaluation: prompts, answer extraction, scoring, dataset reading, summaries, the runner and plots.

The protocol functions (``scoring``, ``data``, ``summary``) are model-free (see ``SPEC.md`` section 7). ``runner``
runs a model over a dataset (resumable, shardable results files); ``plots`` draws entropy traces (matplotlib,
imported only when a plot is made).
"""

from .data import DATA_TYPES, REQUIRED_FIELDS, load_samples, sample_id, validate_sample
from .plots import MeanTraces, mean_traces, plot_entropy_traces
from .runner import (
    GenerationResult,
    build_inputs,
    evaluate,
    generate_answer,
    merge_results,
    read_records,
    write_summary,
)
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
    "GenerationResult",
    "MeanTraces",
    "ScoreResult",
    "build_inputs",
    "build_prompt",
    "evaluate",
    "extract_answer",
    "generate_answer",
    "load_samples",
    "mean_relative_accuracy",
    "mean_traces",
    "merge_results",
    "ocr_score",
    "parse_number",
    "plot_entropy_traces",
    "read_records",
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
    "write_summary",
]
