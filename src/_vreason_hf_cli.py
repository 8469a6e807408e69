# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The ``vreason`` console script's entry point, outside the package so that it runs before ``vreason_hf`` loads.

It imports the command line with ``VREASON_HF_DEFER_REGISTRATION`` set, so ``import vreason_hf`` does not register
with transformers (which imports torch and transformers' pipelines, several seconds): ``vreason --help`` and every
``vreason <command> --help`` answer without them. The variable is then restored (removed, unless it was set
before), so child processes import ``vreason_hf`` as usual; the commands that load a model register first
(``vreason_hf.loading.load_model``).
"""

import os

# The name `vreason_hf._registration.DEFER_REGISTRATION_ENV` holds; not imported from there, which would import
# `vreason_hf` before the variable is set (a test checks that the two agree).
DEFER_REGISTRATION_ENV = "VREASON_HF_DEFER_REGISTRATION"


def main(argv: list[str] | None = None) -> None:
    """Run the ``vreason`` command (``argv``: the arguments, default `sys.argv[1:]`)."""
    previous = os.environ.get(DEFER_REGISTRATION_ENV)
    os.environ[DEFER_REGISTRATION_ENV] = "1"
    try:
        from vreason_hf.cli import main as cli_main
    finally:
        if previous is None:
            del os.environ[DEFER_REGISTRATION_ENV]
        else:
            os.environ[DEFER_REGISTRATION_ENV] = previous
    cli_main(argv)


if __name__ == "__main__":
    main()
