# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""vreason-hf: V-Reason ("Video Reasoning without Training", arXiv 2510.17045) for Hugging Face video LMMs."""

__version__ = "0.1.0.dev0"

from transformers import AutoConfig

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
from .pipelines import register_video_text_to_text_pipeline
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

# Idempotent: lets `AutoConfig.from_pretrained` read `model_type: "vreason"` configs without remote code.
AutoConfig.register("vreason", VReasonConfig, exist_ok=True)
# Idempotent: makes `transformers.pipeline("video-text-to-text", ...)` build `VideoTextToTextPipeline`.
register_video_text_to_text_pipeline()
