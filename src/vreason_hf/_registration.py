# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Registering V-Reason with transformers: the ``vreason`` config with `AutoConfig`, the ``video-text-to-text``
pipeline task.

`import vreason_hf` registers both (documented behaviour) unless the environment variable
``VREASON_HF_DEFER_REGISTRATION`` is set (to anything but ``""`` or ``"0"``): the ``vreason`` console script sets it
while it imports the command line, so that ``vreason --help`` needs neither torch nor transformers, and
[`~vreason_hf.loading.load_model`] registers before it loads a model.
"""

from __future__ import annotations

import os

__all__ = ["DEFER_REGISTRATION_ENV", "register_with_transformers", "registration_deferred"]

DEFER_REGISTRATION_ENV = "VREASON_HF_DEFER_REGISTRATION"
"""Set (to anything but ``""`` or ``"0"``) while importing `vreason_hf` to leave the registration to
[`register_with_transformers`]."""


def registration_deferred() -> bool:
    """Whether ``VREASON_HF_DEFER_REGISTRATION`` asks `import vreason_hf` not to register."""
    return os.environ.get(DEFER_REGISTRATION_ENV, "") not in ("", "0")


def register_with_transformers() -> None:
    """Register `VReasonConfig` with `AutoConfig` and the ``video-text-to-text`` pipeline task. Idempotent."""
    from transformers import AutoConfig

    from .configuration_vreason import VReasonConfig
    from .pipelines import register_video_text_to_text_pipeline

    # Lets `AutoConfig.from_pretrained` read `model_type: "vreason"` configs without remote code.
    AutoConfig.register("vreason", VReasonConfig, exist_ok=True)
    # Makes `transformers.pipeline("video-text-to-text", ...)` build `VideoTextToTextPipeline`.
    register_video_text_to_text_pipeline()
