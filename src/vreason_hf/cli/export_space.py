# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`vreason export-space`: a folder ready to push as a Hugging Face Space serving the comparison page."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ..app import DEFAULT_MODEL  # a constant: `vreason_hf.app` imports torch and Gradio lazily
from .common import (
    AppFramesOption,
    AppTokensOption,
    ConcurrencyOption,
    ExampleOption,
    command_scope,
    with_knob_options,
)

__all__ = ["export_space"]


@with_knob_options
def export_space(
    out_dir: Annotated[Path, typer.Argument(help="Folder to create: a Hugging Face Space (Gradio SDK).")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Hub id of the video LMM the Space serves.")
    ] = DEFAULT_MODEL,
    example: ExampleOption = None,
    num_frames: AppFramesOption = 16,
    max_new_tokens: AppTokensOption = 256,
    concurrency_limit: ConcurrencyOption = 1,
    title: Annotated[str, typer.Option(help="The Space's title.")] = "V-Reason: plain vs. V-Reason decoding",
    requirement: Annotated[
        str | None,
        typer.Option(
            help="requirements.txt line installing vreason-hf (default: vreason-hf[app]==this version)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Write into a non-empty folder.")] = False,
    knobs: dict[str, Any] | None = None,
) -> None:
    """Write a folder ready to push as a Hugging Face Space serving the comparison page."""
    with command_scope():
        from ..app import build_space_dir

        folder = build_space_dir(
            out_dir,
            model_id=model,
            examples=example or (),
            vreason_config=knobs,
            num_frames=num_frames,
            max_new_tokens=max_new_tokens,
            concurrency_limit=concurrency_limit,
            title=title,
            requirement=requirement,
            overwrite=overwrite,
        )
        typer.echo(f"Space folder: {folder}")
        for name in sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()):
            typer.echo(f"  {name}")
        typer.echo(
            f"Try it: cd {folder} && python app.py\n"
            f"Push it: huggingface-cli upload <user>/<space> {folder} --repo-type space"
        )
