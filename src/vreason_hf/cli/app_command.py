# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`vreason app`: serve the comparison page (Gradio), plain and V-Reason answers side by side.

(Not `cli/app.py`: `vreason_hf.cli.app` is the Typer application.)
"""

from typing import Annotated, Any

import typer

from ..app import DEFAULT_MODEL  # a constant: `vreason_hf.app` imports torch and Gradio lazily
from .common import (
    AppFramesOption,
    AppTokensOption,
    ConcurrencyOption,
    DeviceMapOption,
    DeviceOption,
    DtypeOption,
    ExampleOption,
    TrustOption,
    command_scope,
    with_knob_options,
)

__all__ = ["app_command"]


@with_knob_options
def app_command(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Hub id or local folder of a video LMM.")
    ] = DEFAULT_MODEL,
    host: Annotated[
        str, typer.Option(help='Interface to listen on ("0.0.0.0": every interface).')
    ] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: 7860, or the next free one).")] = None,
    example: ExampleOption = None,
    num_frames: AppFramesOption = 16,
    max_new_tokens: AppTokensOption = 256,
    concurrency_limit: ConcurrencyOption = 1,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    device_map: DeviceMapOption = None,
    trust_remote_code: TrustOption = False,
    knobs: dict[str, Any] | None = None,
) -> None:
    """Serve the comparison page: a video and a question in, plain and V-Reason answers side by side (Gradio)."""
    with command_scope():
        from ..app import build_app
        from ..configuration_vreason import VReasonConfig
        from ..loading import resolve_model

        # Fail now, before serving, when the model is neither local, named, cached nor reachable on the Hub.
        model = resolve_model(model)
        demo = build_app(
            model,
            vreason_config=VReasonConfig(**(knobs or {})),
            num_frames=num_frames,
            max_new_tokens=max_new_tokens,
            examples=example or (),
            concurrency_limit=concurrency_limit,
            device=device,
            dtype=dtype,
            device_map=device_map,
            trust_remote_code=trust_remote_code,
        )
        try:
            demo.launch(server_name=host, server_port=port, share=False)
        except OSError as error:  # e.g. the port is taken
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ValueError(f"Cannot serve on {host}:{port or 'default port'}: {first}") from error
