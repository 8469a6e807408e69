# Copyright 2025 vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Aggregating per-sample evaluation records into per-(dataset, mode) summaries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from .scoring import PROBLEM_TYPES

__all__ = ["RECORD_FIELDS", "check_record", "summarize", "summary_to_markdown"]

RECORD_FIELDS: tuple[str, ...] = (
    "dataset",
    "mode",
    "problem_type",
    "score",
    "output_tokens",
    "seconds",
    "peak_memory_mb",
    "parsable",
)
"""Keys every record passed to :func:`summarize` must have (``secondary`` and ``error`` are optional)."""

_ACCURACY_TYPES = ("multiple choice", "numerical")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _number(value: object, *, field: str, where: str, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        kind = "a finite number or None" if optional else "a finite number"
        raise ValueError(f"{where}: field `{field}` must be {kind}, got {value!r}.")
    return float(value)


def check_record(record: object, where: str) -> None:
    """Check that a record has what :func:`summarize` (and resuming a run) needs.

    Args:
        record (`object`):
            The decoded record.
        where (`str`):
            Where it comes from, for the message (e.g. ``"record 3"`` or ``"'results.jsonl': line 4"``).

    Raises:
        ValueError: If the record is not an object, lacks a field of :data:`RECORD_FIELDS`, or a field has the
            wrong type or value (the message starts with ``where`` and names the field).
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}.")
    for field in RECORD_FIELDS:
        if field not in record:
            raise ValueError(f"{where}: missing field `{field}`.")
    problem_type = record["problem_type"]
    if problem_type not in PROBLEM_TYPES:
        allowed = ", ".join(repr(t) for t in PROBLEM_TYPES)
        raise ValueError(f"{where}: unknown `problem_type` {problem_type!r}; allowed values are: {allowed}.")
    if not isinstance(record["parsable"], bool):
        raise ValueError(f"{where}: field `parsable` must be a bool, got {record['parsable']!r}.")
    error = record.get("error")
    if error is not None and not isinstance(error, str):
        raise ValueError(f"{where}: field `error` must be a string or None, got {error!r}.")
    _number(record["score"], field="score", where=where, optional=False)
    for field in ("output_tokens", "seconds", "peak_memory_mb", "secondary"):
        _number(record.get(field), field=field, where=where, optional=True)


def summarize(records: Iterable[Mapping]) -> dict:
    """Aggregate per-sample records into per-(dataset, mode) metrics.

    Each record is a mapping with the keys of :data:`RECORD_FIELDS`: ``dataset`` and ``mode`` (e.g.
    ``"base"``, ``"vreason"``, ``"lite"``), ``problem_type``, ``score`` (from
    :func:`~vreason_hf.eval.score_sample`), ``output_tokens``, ``seconds`` and ``peak_memory_mb`` (each may
    be `None` when not measured) and ``parsable``; an optional ``secondary`` holds the OCR / free-form
    metric from :func:`~vreason_hf.eval.secondary_score`.

    Per group the summary holds:

    - ``n``: number of records; ``n_failed``: how many record a sample that could not be run (a non-`None`
      ``error``, e.g. a corrupt video); ``n_unparsable``: how many others have ``parsable`` false;
    - ``accuracy`` over the multiple-choice and numerical items (``n_accuracy`` of them); OCR and
      free-form items are *not* part of this average (Video-R1 would count them as 0). Failed samples count
      0 here and in ``mra``, as in Video-R1's script, so the denominators stay the whole benchmark;
    - ``mra`` over the regression items (``n_regression``);
    - ``ocr_score`` (mean ``1 - WER``, ``n_ocr`` items) and ``rouge_l`` (mean ROUGE-L F1,
      ``n_free_form`` items), averaged over the records whose ``secondary`` is not `None`;
    - ``mean_output_tokens``, ``mean_seconds`` (over the records where they are not `None`) and
      ``max_peak_memory_mb``.

    Metrics are fractions in ``[0, 1]``; a metric with no item is `None`.

    Args:
        records (`Iterable[Mapping]`):
            The per-sample records.

    Returns:
        `dict`: ``{"per_dataset": {dataset: {mode: metrics}}, "macro_accuracy": {mode: {"accuracy": ...,
        "datasets": [...]}}}``. ``macro_accuracy`` is the unweighted mean of the per-dataset accuracies of
        each mode (MRA excluded), i.e. the paper's headline average when the six benchmarks are present.
        Datasets and modes keep their order of first appearance.

    Raises:
        ValueError: If a record lacks a field or has a malformed value (see :func:`check_record`; the message
            names the record index and the field).
    """
    per_dataset = {
        dataset: {mode: _bucket_metrics(bucket) for mode, bucket in modes.items()}
        for dataset, modes in _group_records(records).items()
    }
    return {"per_dataset": per_dataset, "macro_accuracy": _macro_accuracy(per_dataset)}


def _group_records(records: Iterable[Mapping]) -> dict[str, dict[str, dict[str, list]]]:
    """Check each record and sort its values into its (dataset, mode) bucket; groups keep their first-seen order."""
    groups: dict[str, dict[str, dict[str, list]]] = {}
    for index, record in enumerate(records):
        check_record(record, f"record {index}")
        problem_type = record["problem_type"]
        score = float(record["score"])
        failed = record.get("error") is not None
        bucket = groups.setdefault(str(record["dataset"]), {}).setdefault(
            str(record["mode"]),
            {key: [] for key in ("accuracy", "mra", "ocr", "free_form", "tokens", "seconds", "memory")}
            | {"n": [], "unparsable": [], "failed": []},
        )
        bucket["n"].append(1)
        if failed:
            bucket["failed"].append(1)
        elif not record["parsable"]:
            bucket["unparsable"].append(1)
        if problem_type in _ACCURACY_TYPES:
            bucket["accuracy"].append(score)
        elif problem_type == "regression":
            bucket["mra"].append(score)
        else:
            bucket["ocr" if problem_type == "OCR" else "free_form"].append(record.get("secondary"))
        for key, field in (("tokens", "output_tokens"), ("seconds", "seconds"), ("memory", "peak_memory_mb")):
            if record[field] is not None:
                bucket[key].append(float(record[field]))
    return groups


def _bucket_metrics(bucket: Mapping[str, list]) -> dict:
    """The metrics of one (dataset, mode) bucket: counts, means (`None` when empty) and the memory peak."""
    return {
        "n": len(bucket["n"]),
        "n_failed": len(bucket["failed"]),
        "n_unparsable": len(bucket["unparsable"]),
        "n_accuracy": len(bucket["accuracy"]),
        "accuracy": _mean(bucket["accuracy"]),
        "n_regression": len(bucket["mra"]),
        "mra": _mean(bucket["mra"]),
        "n_ocr": len(bucket["ocr"]),
        "ocr_score": _mean([v for v in bucket["ocr"] if v is not None]),
        "n_free_form": len(bucket["free_form"]),
        "rouge_l": _mean([v for v in bucket["free_form"] if v is not None]),
        "mean_output_tokens": _mean(bucket["tokens"]),
        "mean_seconds": _mean(bucket["seconds"]),
        "max_peak_memory_mb": max(bucket["memory"]) if bucket["memory"] else None,
    }


def _macro_accuracy(per_dataset: Mapping[str, Mapping[str, Mapping]]) -> dict[str, dict]:
    """Per mode, the unweighted mean of its per-dataset accuracies, and the datasets that have one."""
    macro: dict[str, dict] = {}
    for dataset, modes in per_dataset.items():
        for mode, metrics in modes.items():
            if metrics["accuracy"] is not None:
                entry = macro.setdefault(mode, {"accuracy": [], "datasets": []})
                entry["accuracy"].append(metrics["accuracy"])
                entry["datasets"].append(dataset)
    return {
        mode: {"accuracy": _mean(entry["accuracy"]), "datasets": entry["datasets"]}
        for mode, entry in macro.items()
    }


def _percent(value: float | None, count: int | None = None) -> str:
    if value is None:
        return "–"
    text = f"{100 * value:.1f}"
    return f"{text} ({count})" if count is not None else text


def _plain(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_to_markdown(summary: Mapping) -> str:
    """Render the output of :func:`summarize` as Markdown tables.

    The first table has one row per (dataset, mode); metrics are shown in percent with one decimal and
    the number of items they average in parentheses, ``–`` when there is none; ``failed`` counts the samples
    that could not be run (they score 0). A second table gives the
    macro accuracy of each mode over its datasets.

    Args:
        summary (`Mapping`):
            The dictionary returned by :func:`summarize`.

    Returns:
        `str`: The Markdown text (ends with a newline).
    """
    lines = [
        "| dataset | mode | n | accuracy % (n) | MRA % (n) | OCR 1−WER % (n) | ROUGE-L % (n) "
        "| unparsable | failed | mean output tokens | mean s | peak memory MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for dataset, modes in summary["per_dataset"].items():
        for mode, m in modes.items():
            cells = [
                dataset,
                mode,
                str(m["n"]),
                _percent(m["accuracy"], m["n_accuracy"]),
                _percent(m["mra"], m["n_regression"]),
                _percent(m["ocr_score"], m["n_ocr"]),
                _percent(m["rouge_l"], m["n_free_form"]),
                str(m["n_unparsable"]),
                str(m.get("n_failed", 0)),
                _plain(m["mean_output_tokens"], 1),
                _plain(m["mean_seconds"], 2),
                _plain(m["max_peak_memory_mb"], 0),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    if summary.get("macro_accuracy"):
        lines += ["", "| mode | macro accuracy % | datasets |", "|---|---:|---|"]
        for mode, entry in summary["macro_accuracy"].items():
            lines.append(f"| {mode} | {_percent(entry['accuracy'])} | {', '.join(entry['datasets'])} |")
    return "\n".join(lines) + "\n"
