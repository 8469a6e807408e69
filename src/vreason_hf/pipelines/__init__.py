# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""transformers pipelines for V-Reason: the `video-text-to-text` task (registered when `vreason_hf` is imported)."""

from .video_text_to_text import TASK, VideoTextToTextPipeline, register_video_text_to_text_pipeline

__all__ = ["TASK", "VideoTextToTextPipeline", "register_video_text_to_text_pipeline"]
