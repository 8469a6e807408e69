# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""What every `vreason` command shares: one-line user errors, logging, the knob options and the option types.

Imports nothing heavy: `vreason --help` and each command's `--help` are built from this module without torch or
transformers (the knob options come from `vreason_hf.knobs`, which reads `VReasonConfig`'s declarations with `ast`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ..assets import NAMED_MODELS
from ..knobs import knob_fields

__all__ = [
    "USER_ERRORS",
    "AppFramesOption",
    "AppTokensOption",
    "BackendOption",
    "ConcurrencyOption",
    "DeviceMapOption",
    "DeviceOption",
    "DtypeOption",
    "ExampleOption",
    "FpsOption",
    "MaxFramesOption",
    "ModelOption",
    "NumFramesOption",
    "TrustOption",
    "command_scope",
    "configure_logging",
    "frame_sampling",
    "with_knob_options",
]

# User-input errors reported as one line; FileExistsError / NotADirectoryError come from `export-recipe`'s folder check.
USER_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    ConnectionError,
    ValueError,
    TypeError,
    ImportError,
)

# `--verbose` of the root command, applied to transformers' logging when a command body starts (see `command_scope`).
_verbose = False


# --------------------------------------------------------------------------------------------------
# Errors and logging
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def command_scope() -> Iterator[None]:
    """The scope of every command's body.

    transformers' logging is set as `--verbose` asked (here, not in the root callback, so that `--help` never
    imports transformers), and user-input errors become one ``Error: ...`` line on stderr and exit status 1 (the
    traceback instead with ``VREASON_DEBUG=1``).
    """
    _configure_transformers_logging(_verbose)
    try:
        yield
    except USER_ERRORS as error:
        if os.environ.get("VREASON_DEBUG"):
            raise
        lines = str(error).strip().splitlines()
        message = lines[0] if lines else type(error).__name__
        typer.echo(f"Error: {message}", err=True)
        raise typer.Exit(1) from None


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever `sys.stderr` is when a record is emitted."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(verbose: bool) -> None:
    """The root callback's `--verbose`: our package's log level now, transformers' when a command body starts."""
    global _verbose
    _verbose = verbose
    package = logging.getLogger("vreason_hf")
    if not any(isinstance(handler, _StderrHandler) for handler in package.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        package.addHandler(handler)
    package.setLevel(logging.DEBUG if verbose else logging.INFO)


def _configure_transformers_logging(verbose: bool) -> None:
    from transformers.utils import logging as hf_logging

    if verbose:
        hf_logging.set_verbosity_warning()
        hf_logging.enable_progress_bar()
    else:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


# --------------------------------------------------------------------------------------------------
# Knob options
# --------------------------------------------------------------------------------------------------


def _knob_parameters() -> list[inspect.Parameter]:
    """One option per knob, defaulting to `VReasonConfig`'s default; booleans get ``--x/--no-x``.

    Read from the config's field declarations (help text included) without importing it, see `vreason_hf.knobs`.
    """
    params = []
    for knob in knob_fields():
        name, default = knob.name, knob.default
        flag = f"--{name.replace('_', '-')}"
        help_text = f"{knob.help.replace('*', '')} [config default: {default}]"
        if isinstance(default, bool):
            option = typer.Option(f"{flag}/--no-{name.replace('_', '-')}", help=help_text, show_default=False)
        else:
            option = typer.Option(flag, help=help_text, show_default=False)
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[type(default), option],
            )
        )
    return params


def with_knob_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per `VReasonConfig` knob to a command.

    The command receives them as ``knobs``: only the values that differ from the config's defaults (a dict to pass
    to `VReasonConfig`), so a command can combine them with settings of its own.
    """
    defaults = {knob.name: knob.default for knob in knob_fields()}
    names = list(defaults)
    signature = inspect.signature(func)
    own = [p for p in signature.parameters.values() if p.name != "knobs"]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names if name in kwargs}
        return func(*args, knobs={k: v for k, v in values.items() if v != defaults[k]}, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=own + _knob_parameters())
    wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}
    return wrapper


def frame_sampling(
    num_frames: int | None, fps: float | None, max_frames: int | None
) -> tuple[int | None, float | None, int | None]:
    """[`vreason_hf.inputs.frame_sampling`], with the mutual-exclusion error naming the options."""
    from ..inputs import frame_sampling

    if num_frames is not None and fps is not None:
        raise ValueError("`--num-frames` and `--fps` are mutually exclusive: pass only one of them.")
    return frame_sampling(num_frames, fps, max_frames)


# --------------------------------------------------------------------------------------------------
# Shared option types
# --------------------------------------------------------------------------------------------------

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help=f"Local folder, Hub id, or a named model ({', '.join(NAMED_MODELS)}; see `vreason --help`).",
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(help='Device: "auto" (the launcher\'s GPU, else cuda, else cpu), "cpu", "cuda:0", ...'),
]
DtypeOption = Annotated[
    str, typer.Option(help='Weights dtype: "auto" (the checkpoint\'s), float32, bfloat16, float16.')
]
DeviceMapOption = Annotated[
    str | None,
    typer.Option(
        help='Passed to from_pretrained (e.g. "auto" to spread a model too large for one GPU); overrides --device.'
    ),
]
TrustOption = Annotated[bool, typer.Option(help="Allow custom modelling code from the Hub repo.")]
NumFramesOption = Annotated[
    int | None, typer.Option(help="Sample this many frames uniformly (exclusive with --fps).")
]
FpsOption = Annotated[
    float | None,
    typer.Option(
        help="Sample frames at this rate (default: 2 fps, at most 16 frames, when --num-frames is not given)."
    ),
]
MaxFramesOption = Annotated[
    int | None,
    typer.Option(help="At most this many frames (default: 16 with the default 2 fps sampling, as Video-R1)."),
]
BackendOption = Annotated[str, typer.Option(help='Video decoder: "auto", "decord" or "pyav".')]

# `app` and `export-space`
AppFramesOption = Annotated[
    int, typer.Option("--num-frames", help="Frames sampled uniformly from each video.")
]
AppTokensOption = Annotated[
    int, typer.Option(help="Default of the page's max-new-tokens slider and of /compare.")
]
ConcurrencyOption = Annotated[
    int, typer.Option(help="Requests decoded at the same time on the one model; more wait in Gradio's queue.")
]
ExampleOption = Annotated[
    list[Path] | None,
    typer.Option("--example", metavar="VIDEO", help="An example clip offered in the page; repeat."),
]
