# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""``python -m vreason_hf.cli``: the ``vreason`` command."""

from .root import main

main()
