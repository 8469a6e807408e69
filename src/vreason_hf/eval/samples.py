# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""From Video-R1 samples to model inputs: their media files, the checks before a run, their prompts and batches.

Everything a run's samples need is checked before the first generation (:func:`check_samples`); a sample whose
media cannot be read or prepared later raises one of :data:`SAMPLE_ERRORS`, which fails that sample, not the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..configuration_vreason import VReasonConfig
from ..inputs import Prompt, build_batch_inputs, is_multimodal
from .scoring import build_prompt

logger = logging.getLogger(__name__)

__all__ = [
    "SAMPLE_ERRORS",
    "batch_inputs",
    "check_samples",
    "frame_request",
    "media_path",
    "pixel_budget_kwargs",
    "sample_prompt",
    "takes_pixel_budget",
]


SAMPLE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, RuntimeError, EOFError)
"""Errors that, raised while a sample's video or image is read and prepared, fail that sample rather than the run
(decoding errors are `~vreason_hf.video.VideoDecodeError`, a `ValueError`; PIL's unreadable images are `OSError`)."""


def frame_request(
    num_frames: int | None, fps: float | None, max_frames: int | None
) -> dict[str, int | float | None]:
    """The [`~vreason_hf.video.load_video`] arguments for resolved frame settings that tolerate short clips.

    Uniform sampling of `num_frames` is the same as taking every frame and capping at `num_frames` (the same
    rounded linspace), except that a clip shorter than `num_frames` gives all its frames instead of an error, so
    one short clip cannot stop a long evaluation: `num_frames` is passed as that cap.

    Returns:
        `dict`: `num_frames`, `fps` and `max_frames` for `load_video`.
    """
    if num_frames is not None:
        cap = num_frames if max_frames is None else min(num_frames, max_frames)
        return {"num_frames": None, "fps": None, "max_frames": cap}
    return {"num_frames": None, "fps": fps, "max_frames": max_frames}


def media_path(sample: Mapping, video_root: Path | None) -> Path:
    """The sample's video or image file: its ``path``, relative to ``video_root`` (else the current directory)."""
    path = Path(sample["path"]).expanduser()
    if not path.is_absolute() and video_root is not None:
        path = video_root / path
    return path


def check_samples(
    processor: Any,
    samples: Sequence[Mapping],
    configs: Mapping[str, VReasonConfig],
    dataset: str,
    video_root: Path | None,
) -> None:
    """Check, before any generation, that the model can take the samples in every mode and their media files exist.

    Raises:
        ValueError: If a mode's ``controller_scope`` has no tokens to control in these inputs.
        FileNotFoundError: If a sample's media file is missing.
    """
    if not is_multimodal(processor):
        if any(sample.get("data_type") in ("video", "image") for sample in samples):
            logger.warning(
                "`%s` is a text-only tokenizer: the videos and images of %r are ignored and only the question is "
                "asked (useful for smoke tests, not for benchmark numbers).",
                type(processor).__name__,
                dataset,
            )
        for mode, config in configs.items():
            if mode != "base" and config.controller_scope != "prompt":
                raise ValueError(
                    f"A text-only model has no video tokens for `controller_scope={config.controller_scope!r}`: "
                    'use `controller_scope="prompt"` (CLI: `--controller-scope prompt`).'
                )
        return
    n_images = sum(sample.get("data_type") == "image" for sample in samples)
    if n_images:
        for mode, config in configs.items():
            if mode != "base" and config.controller_scope == "video":
                raise ValueError(
                    f"{dataset!r} has {n_images} image sample(s), which have no video tokens for "
                    '`controller_scope="video"`: use `controller_scope="visual"` (CLI: '
                    "`--controller-scope visual`), which covers video and image tokens."
                )
    absent = [str(media_path(s, video_root)) for s in samples if not media_path(s, video_root).is_file()]
    if absent:
        where = f"under '{video_root}'" if video_root is not None else "relative to the current directory"
        raise FileNotFoundError(
            f"{len(absent)} of the {len(samples)} samples to run have no media file ({where}); first: '{absent[0]}'. "
            "Pass the folder the `path` fields are relative to as `video_root` (CLI: `--video-root`)."
        )


def sample_prompt(
    sample: Mapping,
    processor: Any,
    *,
    video_root: Path | None,
    num_frames: int | None,
    fps: float | None,
    max_frames: int | None,
    video_backend: str,
) -> Prompt:
    """The sample's prompt: Video-R1's question text and its decoded video (or image); the question alone for a
    text-only model. Frames are sampled as :func:`frame_request` says (a short clip gives all
    its frames)."""
    text = build_prompt(sample)
    if not is_multimodal(processor):
        return Prompt(text)
    path = media_path(sample, video_root)
    if sample["data_type"] == "image":
        from PIL import Image

        with Image.open(path) as image:
            return Prompt(text, image=image.convert("RGB"))
    from ..video import load_video

    frames, metadata = load_video(path, backend=video_backend, **frame_request(num_frames, fps, max_frames))
    return Prompt(text, video=frames, video_metadata=metadata)


def takes_pixel_budget(processor: Any) -> bool:
    """Whether the processor's video processor sizes each frame by a pixel budget: Qwen2-VL's, which Qwen2.5-VL
    uses too (Qwen3-VL's budget counts all frames together; LLaVA-OneVision resizes to a fixed size)."""
    return type(getattr(processor, "video_processor", None)).__name__ == "Qwen2VLVideoProcessor"


def pixel_budget_kwargs(processor: Any, max_pixels: int | None) -> dict[str, Any] | None:
    """The processor keyword arguments that resize each video frame to at most ``max_pixels`` pixels (Video-R1's
    ``max_pixels``); `None` for ``max_pixels=None`` (the video processor's own budget).

    Raises:
        ValueError: If ``max_pixels`` is not a positive integer, or the video processor is not Qwen2-VL's.
    """
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"`max_pixels` must be a positive integer or None, got {max_pixels!r}.")
    if not takes_pixel_budget(processor):
        name = type(getattr(processor, "video_processor", None)).__name__
        raise ValueError(
            f"`max_pixels` is the per-frame pixel budget of Qwen2-VL / Qwen2.5-VL's video processor (Video-R1's "
            f"setting); this model's video processor is {name}. Leave `max_pixels` out (CLI: `--max-pixels`)."
        )
    size = processor.video_processor.size
    return {
        "videos_kwargs": {
            "size": {"shortest_edge": min(size.shortest_edge, max_pixels), "longest_edge": max_pixels}
        }
    }


def batch_inputs(
    processor: Any, prompts: list[Prompt], processor_kwargs: dict[str, Any] | None = None
) -> tuple[Any, list[int], dict[int, BaseException]]:
    """One batch of the prompts the processor takes (see :func:`~vreason_hf.inputs.build_batch_inputs`, which
    ``processor_kwargs`` is passed to).

    Returns:
        `tuple`: the batch (`None` when no prompt is left), the positions of the prompts in it, and the error of
        each prompt the processor rejects (one of :data:`SAMPLE_ERRORS`), by position.
    """
    if not prompts:
        return None, [], {}
    build = partial(build_batch_inputs, processor, processor_kwargs=processor_kwargs)
    try:
        return build(prompts), list(range(len(prompts))), {}
    except SAMPLE_ERRORS as error:
        if len(prompts) == 1:
            return None, [], {0: error}
    kept, errors = [], {}
    for position, prompt in enumerate(prompts):  # find the culprit(s): only paid when a batch fails
        try:
            build([prompt])
        except SAMPLE_ERRORS as error:
            errors[position] = error
            continue
        kept.append(position)
    if not kept:
        return None, [], errors
    return build([prompts[p] for p in kept]), kept, errors
