# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`vreason export-recipe`: the Hub `custom_generate` recipe folder."""

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import command_scope

__all__ = ["export_recipe"]


def export_recipe(
    out_dir: Annotated[Path, typer.Argument(help="Folder to create: a Hub custom_generate recipe repo.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Write into a non-empty folder.")] = False,
) -> None:
    """Build the custom_generate recipe folder (push it to the Hub as a repo)."""
    with command_scope():
        from ..hub import build_custom_generate_dir

        folder = Path(build_custom_generate_dir(out_dir, overwrite=overwrite))
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        typer.echo(f"Recipe folder: {folder}")
        for name in files:
            typer.echo(f"  {name}")
        typer.echo(
            "Use it with: model.generate(**inputs, custom_generate="
            + json.dumps(str(folder))
            + ", trust_remote_code=True)"
        )
