# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The V-Reason controller as a PEFT-shaped adapter: config (data), layer (numerics), model (bookkeeping, I/O).

This is our own small registry-free adapter, not a PEFT method: peft's `register_peft_method` accepts only names in
its own `PeftType` enum, and writing into peft's private registries would break on any peft release.
"""

from .config import CONFIG_NAME, ControllerConfig
from .layer import ControllerLayer
from .model import WEIGHTS_NAME, VReasonControllerModel

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "ControllerConfig", "ControllerLayer", "VReasonControllerModel"]
