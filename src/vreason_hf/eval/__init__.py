# Copyright 2025 vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Video-R1-compatible evaluation: prompts, answer extraction, scoring, dataset reading, summaries, the runner and plots.

One module per job:

- the protocol, model-free (see ``SPEC.md`` section 7): ``data`` (reading and checking evaluation files),
  ``scoring`` (prompts, answer extraction, scores), ``metrics`` (MRA, WER, ROUGE-L), ``summary`` (aggregates);
- one measured generation: ``generation`` (plain or V-Reason decoding of a batch, with traces, time and memory,
  also used by ``vreason run`` / ``demo``), ``memory`` (peak memory);
- results: ``records`` (what a record holds, Video-R1's view of it), ``results`` (reading, writing and merging
  results files, summaries), ``sharding`` (which samples a data-parallel rank runs);
- the evaluation loop: ``samples`` (from samples to prompts, checked before a run), ``plan`` (the arguments,
  record settings and samples still missing, settled before a run), ``runner`` (``evaluate``: batched, resumable,
  bad samples recorded as failed);
- ``presets`` (the paper's benchmarks and numbers) and ``plots`` (entropy traces; matplotlib, imported only when a
  plot is made).

Model inputs come from :mod:`vreason_hf.inputs`.
"""

from .data import DATA_TYPES, REQUIRED_FIELDS, load_samples, sample_id, validate_sample
from .generation import GenerationResult, generate_answer, generate_batch
from .metrics import MRA_THRESHOLDS, mean_relative_accuracy, ocr_score, rouge_l, word_error_rate
from .plots import MeanTraces, mean_traces, plot_entropy_traces, post_peak_entropy
from .records import video_r1_results
from .results import merge_results, read_records, write_summary, write_video_r1_json
from .runner import evaluate
from .scoring import (
    METRIC_BY_PROBLEM_TYPE,
    PROBLEM_TYPES,
    THINK_INSTRUCTION,
    TYPE_SUFFIXES,
    ScoreResult,
    build_prompt,
    extract_answer,
    extract_think,
    parse_number,
    score_sample,
    score_sample_detailed,
    secondary_score,
    validate_problem_type,
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
    "post_peak_entropy",
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
