# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The `vreason` Typer application: its root options, its commands (one module each) and `main`."""

import sys
from typing import Annotated

import typer

from ..assets import NAMED_MODELS
from .app_command import app_command
from .common import configure_logging
from .demo import demo
from .eval import eval_command
from .export_recipe import export_recipe
from .export_space import export_space
from .plot import plot
from .run import run

__all__ = ["app", "main"]

_NAMED_MODELS_HELP = (
    "\b\nNamed models (--model NAME; no Hub needed, saved in $VREASON_HF_CACHE or ~/.cache/vreason-hf):\n"
    + "\n".join(f"  {named.name:<16} {named.description}" for named in NAMED_MODELS.values())
)

app = typer.Typer(
    name="vreason",
    help=(
        "V-Reason (Video Reasoning without Training) for Hugging Face video LMMs: answer, compare with plain "
        "decoding, evaluate on Video-R1 files, plot entropy traces, export the Hub recipe."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog=_NAMED_MODELS_HELP,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)


@app.callback()
def _root(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Debug logging, transformers' warnings and progress bars (off by default: one bar of our own).",
        ),
    ] = False,
) -> None:
    configure_logging(verbose)


# In the order `vreason --help` lists them.
app.command()(demo)
app.command()(run)
app.command("eval")(eval_command)
app.command()(plot)
app.command("export-recipe")(export_recipe)
app.command("app")(app_command)
app.command("export-space")(export_space)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``vreason``)."""
    try:
        code = app(args=argv, prog_name="vreason", standalone_mode=False)
    except KeyboardInterrupt:
        typer.echo("\nAborted.", err=True)
        sys.exit(130)
    except Exception as error:
        # Command-line syntax errors (click's UsageError family, vendored by typer): one line, exit status 2.
        if not (hasattr(error, "format_message") and hasattr(error, "exit_code")):
            raise
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.ctx.get_help())
            sys.exit(0)
        if type(error).__name__ == "Abort":
            typer.echo("\nAborted.", err=True)
            sys.exit(130)
        ctx = getattr(error, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"Error: {error.format_message()}{hint}", err=True)
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
