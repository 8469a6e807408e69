# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The paper's evaluation as a preset: its six benchmarks, its settings, and its numbers to compare against.

``vreason eval --preset paper`` runs Video-R1's evaluation files of the six benchmarks of the V-Reason paper's
Table 1 (VideoMMMU, MMVU, MVBench, TempCompass, VideoMME, VSI-Bench) with the paper's decoding and Video-R1's
prompt and frame sampling, then prints our numbers beside the paper's Base / V-Reason / Lite / Video-R1 columns
(Qwen2.5-VL-7B, ``SPEC.md`` section 8).

Where the files come from (Video-R1's README, "Inference & Evaluation"):

- the evaluation JSONs: the Hub dataset ``Video-R1/Video-R1-eval`` (six files ``eval_<benchmark>.json``), which
  Video-R1 keeps in ``src/r1-v/Evaluation/``;
- the videos: each benchmark's own release, unpacked under ``src/r1-v/Evaluation/`` so that the files' ``path``
  fields (``./Evaluation/<Benchmark>/...``, relative to ``src/r1-v``) resolve.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PAPER_BENCHMARKS",
    "PAPER_MEAN_OUTPUT_TOKENS",
    "PAPER_SETTINGS",
    "PAPER_VSI_MRA",
    "PaperBenchmark",
    "paper_comparison_markdown",
    "paper_data_files",
]


@dataclass(frozen=True)
class PaperBenchmark:
    """One benchmark of the paper's Table 1.

    Attributes:
        name (`str`):
            The dataset name in our results: Video-R1's file is ``eval_{name}.json``.
        label (`str`):
            The paper's name for it.
        accuracy (`dict[str, float]`):
            The paper's accuracy (%) per column: ``"base"``, ``"vreason"``, ``"lite"`` (Qwen2.5-VL-7B) and
            ``"video_r1"`` (Video-R1-7B, trained with RL).
    """

    name: str
    label: str
    accuracy: dict[str, float]


def _columns(base: float, vreason: float, lite: float, video_r1: float) -> dict[str, float]:
    return {"base": base, "vreason": vreason, "lite": lite, "video_r1": video_r1}


PAPER_BENCHMARKS: tuple[PaperBenchmark, ...] = (
    PaperBenchmark("videommmu", "VideoMMMU", _columns(45.8, 46.3, 47.4, 48.8)),
    PaperBenchmark("mmvu", "MMVU", _columns(61.3, 62.7, 65.0, 64.0)),
    PaperBenchmark("mvbench", "MVBench", _columns(60.7, 60.9, 60.6, 64.1)),
    PaperBenchmark("tempcompass", "TempCompass", _columns(72.4, 73.3, 72.3, 73.3)),
    PaperBenchmark("videomme", "VideoMME", _columns(53.7, 54.9, 53.5, 58.7)),
    PaperBenchmark("vsibench", "VSI-Bench", _columns(33.8, 37.1, 37.3, 30.9)),
)
"""The six benchmarks, in the paper's order, with its reported accuracies."""

PAPER_VSI_MRA: dict[str, float] = _columns(22.3, 23.4, 23.7, 39.2)
"""The paper's VSI-Bench mean relative accuracy (%) (regression questions, apart from the accuracy)."""

PAPER_MEAN_OUTPUT_TOKENS: dict[str, float] = _columns(226, 176, 178, 430)
"""The paper's mean number of output tokens."""

PAPER_SETTINGS: dict[str, Any] = {
    "modes": ("base", "vreason", "lite"),
    "max_new_tokens": 1024,
    "do_sample": False,
    "fps": 2.0,
    "max_frames": 16,
    "max_pixels": 128 * 28 * 28,  # per video frame (Video-R1's; Qwen2-VL / Qwen2.5-VL video processors)
    "video_r1_json": True,
}
"""The preset's settings: the paper's three columns, greedy decoding of at most 1024 new tokens (Video-R1 decodes
with temperature 0.1 / top-p 0.001, which is greedy in effect), Video-R1's frame sampling (2 fps, at most 16 frames;
the 32-frame variant is ``--max-frames 32``), Video-R1's prompt (``build_prompt``) and Video-R1's final JSON
written next to the results."""

FETCH_HINT = (
    "Fetch Video-R1's evaluation files with `hf download Video-R1/Video-R1-eval --repo-type dataset --local-dir "
    "Video-R1/src/r1-v/Evaluation` and pass `--video-root Video-R1/src/r1-v` (see the README, 'Reproducing the "
    "paper')."
)


def paper_data_files(data_dir: str | os.PathLike) -> list[Path]:
    """The six evaluation files of the paper, ``eval_<benchmark>.json`` in ``data_dir``, in the paper's order.

    Args:
        data_dir (`str` or `os.PathLike`):
            The folder of Video-R1's evaluation JSONs (``Video-R1/src/r1-v/Evaluation`` in Video-R1's layout).

    Returns:
        `list[Path]`: The six files.

    Raises:
        FileNotFoundError: If the folder or any of the files is missing; the message lists them and how to fetch
            them.
    """
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"The evaluation folder '{folder}' does not exist. {FETCH_HINT}")
    files = [folder / f"eval_{benchmark.name}.json" for benchmark in PAPER_BENCHMARKS]
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"'{folder}' lacks {', '.join(missing)}. {FETCH_HINT}")
    return files


def _cell(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def paper_comparison_markdown(summary: Mapping) -> str:
    """Our numbers beside the paper's, as a Markdown table.

    Rows are the six benchmarks' accuracies, VSI-Bench's MRA, the mean of the six accuracies (the paper's headline
    average) and the mean number of output tokens over all answers; columns pair each of our modes (base, V-Reason, Lite) with the
    paper's value, then the paper's Video-R1-7B. A benchmark or mode we did not run shows ``–``; the mean is only
    given when all six benchmarks ran. Accuracy is our summary's (multiple-choice and numerical items; a failed
    sample counts 0), which equals Video-R1's ``mean_acc`` on these six files: they hold no OCR or free-form items.

    Args:
        summary (`Mapping`):
            The output of :func:`~vreason_hf.eval.summarize` over the preset's results.

    Returns:
        `str`: The table (ends with a newline).
    """
    per_dataset = summary.get("per_dataset", {})

    def ours(name: str, mode: str, metric: str) -> float | None:
        value = per_dataset.get(name, {}).get(mode, {}).get(metric)
        return None if value is None else (100 * value if metric in ("accuracy", "mra") else value)

    modes = (("base", "base"), ("vreason", "V-Reason"), ("lite", "Lite"))
    header = ["benchmark"]
    for _, label in modes:
        header += [f"{label} (ours)", f"{label} (paper)"]
    header.append("Video-R1-7B (paper)")
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]

    def row(label: str, ours_values: list[float | None], paper: Mapping[str, float], digits: int = 1) -> None:
        cells = [label]
        for (mode, _), value in zip(modes, ours_values, strict=True):
            cells += [_cell(value, digits), _cell(paper[mode], digits)]
        cells.append(_cell(paper["video_r1"], digits))
        lines.append("| " + " | ".join(cells) + " |")

    for benchmark in PAPER_BENCHMARKS:
        label = f"{benchmark.label} acc" if benchmark.name == "vsibench" else benchmark.label
        row(label, [ours(benchmark.name, m, "accuracy") for m, _ in modes], benchmark.accuracy)
    row("VSI-Bench MRA", [ours("vsibench", m, "mra") for m, _ in modes], PAPER_VSI_MRA)
    means = []
    for mode, _ in modes:
        values = [ours(b.name, mode, "accuracy") for b in PAPER_BENCHMARKS]
        means.append(None if any(v is None for v in values) else sum(values) / len(values))
    paper_means = {
        column: sum(b.accuracy[column] for b in PAPER_BENCHMARKS) / len(PAPER_BENCHMARKS)
        for column in ("base", "vreason", "lite", "video_r1")
    }
    row("mean of the 6 accuracies", means, paper_means)
    tokens = []
    for mode, _ in modes:
        counts = [  # (mean, number of answers it averages: the failed samples have no tokens)
            (m["mean_output_tokens"], m["n"] - m.get("n_failed", 0))
            for m in (per_dataset.get(b.name, {}).get(mode) for b in PAPER_BENCHMARKS)
            if m is not None and m.get("mean_output_tokens") is not None
        ]
        total = sum(n for _, n in counts)
        tokens.append(sum(t * n for t, n in counts) / total if total else None)
    row("mean output tokens", tokens, PAPER_MEAN_OUTPUT_TOKENS, digits=0)
    return "\n".join(lines) + "\n"
