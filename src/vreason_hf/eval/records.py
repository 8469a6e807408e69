# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Results records: what one record of a results file holds, how it is built, and Video-R1's view of it.

A results file (``RESULTS.jsonl``, see :mod:`~vreason_hf.eval.results`) holds one JSON object per (dataset, sample,
mode). Besides our own fields (:data:`OWN_FIELDS`), every record carries the sample's Video-R1 fields (``problem``,
``options``, ``solution``, ``path``, ...) and Video-R1's per-sample output fields with Video-R1's meaning
(``src/eval_bench.py``):

- ``output``: the generated text;
- ``prediction``: the extracted answer (the first ``<answer>`` block, else the whole output);
- ``reward``: the score (0/1 accuracy, MRA for regression, 0 for OCR / free-form);
- ``correct``: ``reward == 1.0``;
- ``process``: ``"<think>...</think>"`` when the output has a ``<think>`` block (else the sample's own, if any).

Records written before these fields existed (``prediction`` held the text, ``extracted`` the answer) are upgraded
by :func:`upgrade_record` when read, so old runs resume. :func:`video_r1_results` gives Video-R1's final JSON,
``{"results": [...], "final_acc": [{"mean_acc": ..., "mean_mra": ...}]}``, of one dataset and mode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .scoring import extract_answer, extract_think, score_sample_detailed

if TYPE_CHECKING:
    from .generation import GenerationResult

logger = logging.getLogger(__name__)

__all__ = [
    "OWN_FIELDS",
    "VIDEO_R1_FIELDS",
    "answer_record",
    "failed_record",
    "record_key",
    "sample_fields",
    "upgrade_record",
    "video_r1_fields",
    "video_r1_results",
]

VIDEO_R1_FIELDS: tuple[str, ...] = ("output", "prediction", "reward", "correct", "process")
"""Video-R1's per-sample output fields (``process`` only when there is reasoning)."""

OWN_FIELDS: tuple[str, ...] = (
    "id",
    "index",
    "dataset",
    "mode",
    "model",
    "score",
    "target",
    "parsable",
    "secondary",
    "error",
    "output_tokens",
    "seconds",
    "batch_size",
    "peak_memory_mb",
    "memory_source",
    "optimizer_steps",
    "knobs",
    "generation",
    "output_ids",
    "entropies",
    "ema_entropies",
    "alphas",
)
"""Fields a record adds besides the sample's and Video-R1's (see :func:`~vreason_hf.eval.evaluate`)."""
_ERROR_OUTPUT = "<answer>error</answer>"  # what Video-R1's script records for a sample it could not run


def record_key(record: Mapping) -> tuple[str, str, str]:
    """What identifies a record in a results file: ``(dataset, id, mode)``."""
    return (str(record.get("dataset")), str(record.get("id")), str(record.get("mode")))


def sample_fields(sample: Mapping, dataset: str, warned: set[str] | None = None) -> dict[str, Any]:
    """The sample's own fields to copy into its records (those that do not clash with ours, which win)."""
    clash = [k for k in sample if k in OWN_FIELDS or (k in VIDEO_R1_FIELDS and k != "process")]
    if clash and warned is not None and dataset not in warned:
        warned.add(dataset)
        logger.warning(
            "%s: the samples' field(s) %s clash with result fields and are not copied into the records.",
            dataset,
            ", ".join(f"`{k}`" for k in clash),
        )
    return {k: v for k, v in sample.items() if k not in clash and k != "process"}


def video_r1_fields(sample: Mapping, output: str, prediction: str, reward: float) -> dict[str, Any]:
    """Video-R1's per-sample output fields for one answer (see the module docstring)."""
    fields: dict[str, Any] = {
        "output": output,
        "prediction": prediction,
        "reward": reward,
        "correct": reward == 1.0,
    }
    think = extract_think(output)
    if think:
        fields["process"] = f"<think>{think}</think>"
    elif "process" in sample:
        fields["process"] = sample["process"]
    return fields


def failed_record(base: Mapping[str, Any], sample: Mapping, error: BaseException) -> dict[str, Any]:
    """The record of a sample that could not be run: scored 0, with the error.

    Args:
        base (`Mapping`):
            The record's identifying fields (``id``, ``index``, ``dataset``, ``mode``, ``model``, the sample's
            fields, ...), placed first.
        sample (`Mapping`):
            The sample.
        error (`BaseException`):
            What went wrong; recorded as ``"<type>: <first line of the message>"``.
    """
    lines = str(error).strip().splitlines()
    message = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return {
        **base,
        "output": None,
        "prediction": None,
        "reward": 0.0,
        "correct": False,
        "score": 0.0,
        "target": extract_answer(sample["solution"]),
        "parsable": False,
        "secondary": None,
        "error": message,
        "output_tokens": None,
        "seconds": None,
        "batch_size": None,
        "peak_memory_mb": None,
        "memory_source": "none",
        "optimizer_steps": 0,
    }


def answer_record(
    base: Mapping[str, Any],
    sample: Mapping,
    result: GenerationResult,
    expected: Mapping[str, Any],
    save_traces: bool,
) -> dict[str, Any]:
    """The record of one answer: its identifying fields, Video-R1's output fields, the score and the measurements.

    Args:
        base, sample:
            As in [`failed_record`].
        result ([`~vreason_hf.eval.GenerationResult`]):
            The answer and its measurements.
        expected (`Mapping`):
            The run's ``knobs`` and ``generation`` settings.
        save_traces (`bool`):
            Whether to store the per-token ``output_ids`` and traces.
    """
    detail = score_sample_detailed(sample, result.text)
    record = {
        **base,
        **video_r1_fields(sample, result.text, detail.extracted, detail.score),
        "score": detail.score,
        "target": detail.target,
        "parsable": detail.parsable,
        "secondary": detail.secondary,
        "error": None,
        "output_tokens": result.output_tokens,
        "seconds": round(result.seconds, 4),
        "batch_size": result.batch_size,
        "peak_memory_mb": None if result.peak_memory_mb is None else round(result.peak_memory_mb, 1),
        "memory_source": result.memory_source,
        "optimizer_steps": result.optimizer_steps,
        "knobs": expected["knobs"],
        "generation": expected["generation"],
    }
    if save_traces:
        record.update(
            output_ids=result.token_ids,
            entropies=result.entropies,
            ema_entropies=result.ema_entropies,
            alphas=result.alphas,
        )
    return record


def upgrade_record(record: dict) -> dict:
    """Rename the fields of records written before Video-R1 parity (``prediction`` = text, ``extracted`` = answer)."""
    if "extracted" not in record or "output" in record:
        return record
    upgraded: dict[str, Any] = {}
    for key, value in record.items():
        if key == "prediction":
            output = value if isinstance(value, str) else ""
            score = record.get("score")
            upgraded.update(
                video_r1_fields(record, output, record["extracted"], score if score is not None else 0.0)
            )
        elif key == "extracted":
            continue
        else:
            upgraded[key] = value
    upgraded.setdefault("error", None)
    upgraded.setdefault("batch_size", 1)
    return upgraded


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def video_r1_results(records: Iterable[Mapping]) -> dict[str, Any]:
    """Video-R1's final JSON for the records of one dataset and mode.

    Each entry of ``results`` is the sample's own fields followed by ``output``, ``prediction``, ``reward``,
    ``correct`` (and ``process`` when there is reasoning), as Video-R1's ``src/eval_bench.py`` writes them. A
    failed sample is written the way that script records a sample it could not run (``output``
    ``"<answer>error</answer>"``, ``prediction`` ``"error"``, ``reward`` 0) plus our ``error`` message.
    ``final_acc`` is ``[{"mean_acc": ..., "mean_mra": ...}]``: the mean reward over the non-regression samples
    (OCR and free-form count 0, as in Video-R1; `None` where Video-R1 would write NaN, i.e. there is none) and
    over the regression samples (0.0 when there is none).

    Args:
        records (`Iterable[Mapping]`):
            Results records of one dataset and mode, in file order.

    Returns:
        `dict`: ``{"results": [...], "final_acc": [...]}``.
    """
    results, accuracy, mra = [], [], []
    for record in records:
        entry = {k: v for k, v in record.items() if k not in OWN_FIELDS and k not in VIDEO_R1_FIELDS}
        if record.get("error") is not None:
            entry.update(
                output=_ERROR_OUTPUT, prediction="error", reward=0.0, correct=False, error=record["error"]
            )
        else:
            entry.update({k: record[k] for k in VIDEO_R1_FIELDS if k in record})
        results.append(entry)
        (mra if record.get("problem_type") == "regression" else accuracy).append(float(record["reward"]))
    final = {"mean_acc": _mean(accuracy), "mean_mra": _mean(mra) if mra else 0.0}
    return {"results": results, "final_acc": [final]}
