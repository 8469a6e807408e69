# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""vreason-hf: V-Reason ("Video Reasoning without Training", arXiv 2510.17045) for Hugging Face video LMMs.

Importing the package registers the ``vreason`` config with `AutoConfig` and the ``video-text-to-text`` pipeline
task with transformers (see `vreason_hf._registration` for the one exception, the ``vreason`` console script). The
public names below are imported on first use, so ``import vreason_hf`` costs only that registration.
"""

__version__ = "0.1.0.dev0"

import importlib
from typing import TYPE_CHECKING, Any

from . import _registration

if TYPE_CHECKING:
    from .configuration_vreason import VReasonConfig
    from .controller import ControllerConfig, VReasonControllerModel
    from .generation import (
        VReasonGenerateOutput,
        VReasonLogitsProcessor,
        vreason_generate,
        vreason_generate_kwargs,
    )
    from .hub import build_custom_generate_dir, save_vreason_model
    from .inputs import build_inputs
    from .video import load_video

__all__ = [
    "ControllerConfig",
    "VReasonConfig",
    "VReasonControllerModel",
    "VReasonGenerateOutput",
    "VReasonLogitsProcessor",
    "__version__",
    "build_custom_generate_dir",
    "build_inputs",
    "load_video",
    "save_vreason_model",
    "vreason_generate",
    "vreason_generate_kwargs",
]

# Public name -> the module that defines it (imported on first access).
_LAZY = {
    "ControllerConfig": ".controller",
    "VReasonConfig": ".configuration_vreason",
    "VReasonControllerModel": ".controller",
    "VReasonGenerateOutput": ".generation",
    "VReasonLogitsProcessor": ".generation",
    "build_custom_generate_dir": ".hub",
    "build_inputs": ".inputs",
    "load_video": ".video",
    "save_vreason_model": ".hub",
    "vreason_generate": ".generation",
    "vreason_generate_kwargs": ".generation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups do not come here again
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# Idempotent; deferred only by the `vreason` console script (see `vreason_hf._registration`).
if not _registration.registration_deferred():
    _registration.register_with_transformers()
