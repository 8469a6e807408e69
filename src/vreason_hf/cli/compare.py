# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Plain decoding next to V-Reason, as text: the comparison table and a plain verdict.

Used by `vreason run --compare` and `vreason demo`. The answers are [`~vreason_hf.eval.GenerationResult`]s by mode
(``"base"``, ``"vreason"``, ``"lite"``); the post-peak entropy is [`~vreason_hf.eval.post_peak_entropy`], after the
peak the plots mark.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "LABELS",
    "answer_found",
    "comparison_table",
    "format_table",
    "memory_note",
    "printable",
    "trace_records",
    "verdict",
]

LABELS = {"base": "base", "vreason": "V-Reason", "lite": "V-Reason Lite"}
"""How each mode is named in tables and plots."""

_MEMORY_NOTES = {
    "cuda_max_allocated": "peak memory = torch.cuda.max_memory_allocated during generate (weights included)",
    "rss_peak": "peak memory = the process's peak resident memory during generate (CPU; weights included)",
    "maxrss": "peak memory = the process's lifetime peak resident memory (CPU; weights included)",
}


def memory_note(source: str) -> str:
    """What the "peak memory MB" column means for a `GenerationResult.memory_source`."""
    return _MEMORY_NOTES.get(source, "peak memory: not measured on this platform")


def trace_records(results: Mapping[str, Any], dataset: str) -> list[dict]:
    """The per-token traces of `results` (by mode) as evaluation-style records, for the plot functions."""
    return [
        {
            "dataset": dataset,
            "mode": mode,
            "entropies": result.entropies,
            "ema_entropies": result.ema_entropies,
            "alphas": result.alphas,
        }
        for mode, result in results.items()
    ]


def printable(text: str) -> str:
    """`text` safe for a terminal: control characters other than newline and tab are shown as `\\xNN` escapes.

    A model can emit any token; a random one often emits raw control bytes, which a terminal would interpret.
    """
    return "".join(
        char if char in "\n\t" or unicodedata.category(char) != "Cc" else f"\\x{ord(char):02x}"
        for char in text
    )


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned, two spaces apart."""
    table = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in table
    )


def answer_found(answer: str, text: str) -> bool:
    """Whether `text` states `answer` as a whole word (case-insensitive): "8" is in "is: 8." but not in "18"."""
    return re.search(rf"(?<![\w.]){re.escape(answer)}(?!\w)", text, flags=re.IGNORECASE) is not None


def comparison_table(results: Mapping[str, Any], answer: str | None = None) -> str:
    """One row per mode: output tokens, post-peak mean entropy, Adam steps, time, peak memory.

    With `answer`, a first column says whether each reply states it (see [`answer_found`]).
    """
    from ..eval.plots import post_peak_entropy

    header = ["mode"]
    if answer is not None:
        header.append(f"states {answer!r}")
    header += ["output tokens", "post-peak entropy", "Adam steps", "seconds", "tokens/s", "peak memory MB"]
    rows = []
    for mode, result in results.items():
        rate = result.output_tokens / result.seconds if result.seconds > 0 else None
        row = [LABELS.get(mode, mode)]
        if answer is not None:
            row.append("yes" if answer_found(answer, result.text) else "no")
        row += [
            str(result.output_tokens),
            _fmt(post_peak_entropy(result), 3),
            str(result.optimizer_steps),
            _fmt(result.seconds, 2),
            _fmt(rate, 1),
            _fmt(result.peak_memory_mb, 0),
        ]
        rows.append(row)
    return format_table(header, rows)


def verdict(base: Any, vreason: Any, answer: str) -> tuple[str, str]:
    """Did V-Reason help on this prompt? It may not, and then the sentence says so.

    Returns:
        `tuple[str, str]`: the outcome (``"helped"``, ``"hurt"`` or ``"no difference"``, judged by whether each reply
        states `answer`) and one plain sentence saying it.
    """
    base_ok, vreason_ok = answer_found(answer, base.text), answer_found(answer, vreason.text)
    if base.text == vreason.text:
        outcome = "both state" if base_ok else "neither states"
        return "no difference", (
            f"No difference: V-Reason's {vreason.optimizer_steps} Adam steps did not change a single token "
            f"({outcome} the answer {answer})."
        )
    if vreason_ok and not base_ok:
        return "helped", f"V-Reason helped: its reply states the answer {answer}, plain decoding's does not."
    if base_ok and not vreason_ok:
        return (
            "hurt",
            f"V-Reason hurt: plain decoding's reply states the answer {answer}, V-Reason's does not.",
        )
    length = vreason.output_tokens - base.output_tokens
    shape = f"{abs(length)} tokens {'longer' if length > 0 else 'shorter'}" if length else "as long"
    if base_ok:
        return "no difference", (
            f"No difference in correctness: both replies state the answer {answer}; V-Reason's is {shape}."
        )
    return "no difference", (
        f"V-Reason did not help: neither reply states the answer {answer} (V-Reason's is {shape})."
    )
