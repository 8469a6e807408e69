# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`vreason plot`: the entropy traces of a results file, base vs V-Reason, as in the paper's Fig. 2."""

from pathlib import Path
from typing import Annotated

import typer

from .common import command_scope
from .compare import LABELS

__all__ = ["plot"]


def plot(
    results: Annotated[Path, typer.Argument(help="Results JSONL written by `vreason eval`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Image to write (PNG).")] = Path("entropy.png"),
    dataset: Annotated[str | None, typer.Option(help="Only this dataset (default: all records).")] = None,
    min_samples: Annotated[
        int | None, typer.Option(help="Stop the curves where fewer samples remain (default: 10% of them).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Figure title.")] = None,
) -> None:
    """Plot mean entropy, its EMA (peak marked) and the alpha track per token, base vs V-Reason (paper Fig. 2)."""
    with command_scope():
        from ..eval.plots import plot_entropy_traces
        from ..eval.results import read_records

        if not results.is_file():
            raise FileNotFoundError(f"Results file not found: '{results}'.")
        records = read_records(results)
        _, traces = plot_entropy_traces(records, out, dataset=dataset, min_samples=min_samples, title=title)
        for mode, data in traces.items():
            peak = "-" if data.peak_index is None else str(data.peak_index)
            typer.echo(
                f"{LABELS.get(mode, mode)}: {data.num_samples} samples, "
                f"{len(data.token_index)} token positions, EMA peak at token {peak}"
            )
        typer.echo(f"Plot: {out}")
