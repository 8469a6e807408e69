# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""transformers pipelines for V-Reason: the `video-text-to-text` task (registered when `vreason_hf` is imported)."""

from __future__ import annotations

import logging

from transformers import AutoModelForImageTextToText
from transformers.pipelines import PIPELINE_REGISTRY

from .video_text_to_text import TASK, VideoTextToTextPipeline

logger = logging.getLogger(__name__)

__all__ = ["TASK", "VideoTextToTextPipeline", "register_video_text_to_text_pipeline"]


def register_video_text_to_text_pipeline() -> None:
    """
    Register [`VideoTextToTextPipeline`] with transformers' pipeline registry under `"video-text-to-text"`.

    Idempotent: calling it again (or re-importing `vreason_hf`) neither warns nor registers twice. If another
    implementation already owns the task (a later transformers release, or another library), it is left in place
    and a warning says how to use this one (`pipeline(..., pipeline_class=VideoTextToTextPipeline)`).
    """
    registered = PIPELINE_REGISTRY.supported_tasks.get(TASK)
    if registered is not None:
        impl = registered.get("impl")
        if impl is VideoTextToTextPipeline:
            return
        where = (getattr(impl, "__module__", None), getattr(impl, "__qualname__", None))
        if where != (VideoTextToTextPipeline.__module__, VideoTextToTextPipeline.__qualname__):
            name = f"{getattr(impl, '__module__', '?')}.{getattr(impl, '__qualname__', impl)}"
            logger.warning(
                "The %r task is already registered to %s; vreason_hf leaves it in place. To use V-Reason's pipeline, "
                "pass `pipeline_class=vreason_hf.pipelines.VideoTextToTextPipeline` to `transformers.pipeline`.",
                TASK,
                name,
            )
            return
        # The pipeline's module was reloaded: replace the stale class without transformers' "overwriting" warning.
        del PIPELINE_REGISTRY.supported_tasks[TASK]
    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=VideoTextToTextPipeline, pt_model=AutoModelForImageTextToText, type="multimodal"
    )
