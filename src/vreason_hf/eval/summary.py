# Copyright 2025 vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Aggregating per-sample evaluation records into per-(dataset, mode) summaries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from .scoring import PROBLEM_TYPES

__all__ = ["RECORD_FIELDS", "summarize", "summary_to_markdown"]

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
"""Keys every record passed to :func:`summarize` must have (``secondary`` is optional)."""

_ACCURACY_TYPES = ("multiple choice", "numerical")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _number(value: object, *, field: str, index: int, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        kind = "a finite number or None" if optional else "a finite number"
        raise ValueError(f"record {index}: field `{field}` must be {kind}, got {value!r}.")
    return float(value)


def summarize(records: Iterable[Mapping]) -> dict:
    """Aggregate per-sample records into per-(dataset, mode) metrics.

    Each record is a mapping with the keys of :data:`RECORD_FIELDS`: ``dataset`` and ``mode`` (e.g.
    ``"base"``, ``"vreason"``, ``"lite"``), ``problem_type``, ``score`` (from
    :func:`~vreason_hf.eval.score_sample`), ``output_tokens``, ``seconds`` and ``peak_memory_mb`` (each may
    be `None` when not measured) and ``parsable``; an optional ``secondary`` holds the OCR / free-form
    metric from :func:`~vreason_hf.eval.secondary_score`.

    Per group the summary holds:

    - ``n``: number of records; ``n_unparsable``: how many have ``parsable`` false;
    - ``accuracy`` over the multiple-choice and numerical items (``n_accuracy`` of them); OCR and
      free-form items are *not* part of this average (Video-R1 would count them as 0);
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
        ValueError: If a record lacks a field or has a malformed value (the message names the record
            index and the field).
    """
    groups: dict[str, dict[str, dict[str, list]]] = {}
    for index, record in enumerate(records):
        for field in RECORD_FIELDS:
            if field not in record:
                raise ValueError(f"record {index}: missing field `{field}`.")
        problem_type = record["problem_type"]
        if problem_type not in PROBLEM_TYPES:
            allowed = ", ".join(repr(t) for t in PROBLEM_TYPES)
            raise ValueError(
                f"record {index}: unknown `problem_type` {problem_type!r}; allowed values are: {allowed}."
            )
        if not isinstance(record["parsable"], bool):
            raise ValueError(f"record {index}: field `parsable` must be a bool, got {record['parsable']!r}.")
        score = _number(record["score"], field="score", index=index, optional=False)
        bucket = groups.setdefault(str(record["dataset"]), {}).setdefault(
            str(record["mode"]),
            {key: [] for key in ("accuracy", "mra", "ocr", "free_form", "tokens", "seconds", "memory")}
            | {"n": [], "unparsable": []},
        )
        bucket["n"].append(1)
        if not record["parsable"]:
            bucket["unparsable"].append(1)
        if problem_type in _ACCURACY_TYPES:
            bucket["accuracy"].append(score)
        elif problem_type == "regression":
            bucket["mra"].append(score)
        else:
            secondary = _number(record.get("secondary"), field="secondary", index=index, optional=True)
            bucket["ocr" if problem_type == "OCR" else "free_form"].append(secondary)
        for key, field in (("tokens", "output_tokens"), ("seconds", "seconds"), ("memory", "peak_memory_mb")):
            value = _number(record[field], field=field, index=index, optional=True)
            if value is not None:
                bucket[key].append(value)

    per_dataset: dict[str, dict[str, dict]] = {}
    for dataset, modes in groups.items():
        per_dataset[dataset] = {}
        for mode, bucket in modes.items():
            per_dataset[dataset][mode] = {
                "n": len(bucket["n"]),
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

    macro: dict[str, dict] = {}
    for dataset, modes in per_dataset.items():
        for mode, metrics in modes.items():
            if metrics["accuracy"] is not None:
                entry = macro.setdefault(mode, {"accuracy": [], "datasets": []})
                entry["accuracy"].append(metrics["accuracy"])
                entry["datasets"].append(dataset)
    macro_accuracy = {
        mode: {"accuracy": _mean(entry["accuracy"]), "datasets": entry["datasets"]}
        for mode, entry in macro.items()
    }
    return {"per_dataset": per_dataset, "macro_accuracy": macro_accuracy}


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
    the number of items they average in parentheses, ``–`` when there is none. A second table gives the
    macro accuracy of each mode over its datasets.

    Args:
        summary (`Mapping`):
            The dictionary returned by :func:`summarize`.

    Returns:
        `str`: The Markdown text (ends with a newline).
    """
    lines = [
        "| dataset | mode | n | accuracy % (n) | MRA % (n) | OCR 1−WER % (n) | ROUGE-L % (n) "
        "| unparsable | mean output tokens | mean s | peak memory MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
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
