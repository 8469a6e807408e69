# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The ``vreason`` command: ``demo``, ``run``, ``eval``, ``plot``, ``export-recipe``, ``app`` and ``export-space``.

Errors in user input (missing files, bad knobs, unknown dataset fields, conflicting options) print one line,
``Error: ...``, on stderr and exit with status 1 (2 for command-line syntax errors), without a traceback. Set
``VREASON_DEBUG=1`` to get the traceback instead.

One module per command (``demo``, ``run``, ``eval``, ``plot``, ``export_recipe``, ``app_command``,
``export_space``); ``root`` holds the Typer application, its ``--verbose`` option and [`main`]; ``common`` what the
commands share (one-line errors, logging, the knob options, option types); ``compare`` the comparison table and
verdict of ``run --compare`` and ``demo``.

Nothing here imports torch or transformers at module level: ``vreason --help`` and every command's ``--help``
answer without them (the commands import them in their bodies). The console script's entry point,
``_vreason_hf_cli.main``, also keeps ``import vreason_hf`` from registering with transformers; the commands that
load a model register through [`~vreason_hf.loading.load_model`].
"""

from .root import app, main

__all__ = ["app", "main"]
