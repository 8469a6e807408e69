# Copyright 2025 vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Video-R1-compatible evaluation: prompts, answer extraction, scoring, dataset reading, summaries, the runner and plots.

The protocol functions (``scoring``, ``data``, ``summary``) are model-free (see ``SPEC.md`` section 7).
``generation`` builds (batched) inputs and runs one measured generation; ``runner`` runs a model over a dataset
(batched, resumable, shardable results files, bad samples recorded as failed); ``records`` reads, checks and merges
results files and writes Video-R1's final JSON; ``presets`` holds the paper's benchmarks and numbers; ``plots``
draws entropy traces (matplotlib, imported only when a plot is made).
"""

from .data import DATA_TYPES, REQUIRED_FIELDS, load_samples, sample_id, validate_sample
from .generation import (
    GenerationResult,
    Prompt,
    build_batch_inputs,
    build_inputs,
    generate_answer,
    generate_batch,
)
from .plots import MeanTraces, mean_traces, plot_entropy_traces
from .records import merge_results, read_records, video_r1_results, write_summary, write_video_r1_json
from .runner import evaluate
from .scoring import (
    METRIC_BY_PROBLEM_TYPE,
    MRA_THRESHOLDS,
    PROBLEM_TYPES,
    THINK_INSTRUCTION,
    TYPE_SUFFIXES,
    ScoreResult,
    build_prompt,
    extract_answer,
    extract_think,
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
    "Prompt",
    "ScoreResult",
    "build_batch_inputs",
    "build_inputs",
    "build_prompt",
    "evaluate",
    "extract_answer",
    "extract_think",
    "generate_answer",
    "generate_batch",
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
    "video_r1_results",
    "word_error_rate",
    "write_summary",
    "write_video_r1_json",
]
