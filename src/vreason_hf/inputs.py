# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Model inputs from a video (a file or decoded frames) and a question, through the processor's chat template.

Every surface builds its inputs here: the `video-text-to-text` pipeline, `vreason run` / `eval` / `demo`, the app,
the lmms-eval model, the examples and benchmarks. The rules live in one place:

- a video file is decoded with [`~vreason_hf.video.load_video`], by default at Video-R1's 2 frames per second with at
  most 16 frames ([`DEFAULT_FPS`], [`DEFAULT_MAX_FRAMES`], see [`frame_sampling`]);
- decoded frames go to the processor with their `VideoMetadata` (without it Qwen2.5-VL assumes 24 fps and sets wrong
  temporal positions) and with `do_sample_frames=False` (Qwen3-VL would re-sample pre-sampled frames);
- the prompt goes through the chat template (a processor's, or a text-only tokenizer's);
- a batch is padded on the left, since generation appends on the right.

Example:

```python
>>> from vreason_hf import build_inputs

>>> inputs = build_inputs(processor, "Why does the man stop?", video="clip.mp4").to(model.device)  # 2 fps, <= 16 frames
>>> inputs = build_inputs(tokenizer, "How many legs does a spider have?")  # a text-only model
```
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_MAX_FRAMES",
    "Prompt",
    "build_batch_inputs",
    "build_inputs",
    "chat_inputs",
    "frame_sampling",
    "is_multimodal",
]

DEFAULT_FPS = 2.0
"""Frames per second decoded from a video file when neither `num_frames` nor `fps` is given (Video-R1's protocol)."""

DEFAULT_MAX_FRAMES = 16
"""At most this many frames with the default sampling (Video-R1's protocol)."""


@functools.cache
def _warn_once(message: str) -> None:
    logger.warning(message)


def frame_sampling(
    num_frames: int | None = None, fps: float | None = None, max_frames: int | None = None
) -> tuple[int | None, float | None, int | None]:
    """Resolve the frame-sampling arguments: with neither `num_frames` nor `fps`, Video-R1's 2 fps, at most 16 frames.

    Args:
        num_frames (`int`, *optional*):
            Frames sampled uniformly (exclusive with `fps`).
        fps (`float`, *optional*):
            Sampling rate.
        max_frames (`int`, *optional*):
            Frame cap; defaults to [`DEFAULT_MAX_FRAMES`] only with the default sampling.

    Returns:
        `tuple[int | None, float | None, int | None]`: `(num_frames, fps, max_frames)` for
        [`~vreason_hf.video.load_video`].

    Raises:
        ValueError: If both `num_frames` and `fps` are given.
    """
    if num_frames is not None and fps is not None:
        raise ValueError("`num_frames` and `fps` are mutually exclusive: pass only one of them.")
    if num_frames is None and fps is None:
        return None, DEFAULT_FPS, DEFAULT_MAX_FRAMES if max_frames is None else max_frames
    return num_frames, fps, max_frames


def is_multimodal(processor: Any) -> bool:
    """Whether `processor` handles images or videos (a multimodal processor, not a bare tokenizer)."""
    return (
        getattr(processor, "video_processor", None) is not None
        or getattr(processor, "image_processor", None) is not None
    )


def _tokenizer(processor: Any) -> Any:
    return getattr(processor, "tokenizer", None) or processor


@dataclass
class Prompt:
    """One user turn: a text and at most one video and one image.

    Attributes:
        text (`str`):
            The user's text, placed after the video / image.
        video (`str`, `os.PathLike`, `np.ndarray` or `torch.Tensor`, *optional*):
            A video file, decoded by [`build_batch_inputs`] with its frame sampling, or pre-sampled frames of shape
            `(T, H, W, 3)`, e.g. from [`~vreason_hf.video.load_video`].
        video_metadata (`VideoMetadata`, *optional*):
            The frames' metadata (needed for correct temporal positions); that of a decoded file is its own.
        image (`PIL.Image.Image`, *optional*):
            An image.
    """

    text: str
    video: Any | None = None
    video_metadata: Any | None = None
    image: Any | None = None


def build_inputs(
    processor: Any,
    text: str,
    *,
    video: Any | None = None,
    video_metadata: Any | None = None,
    image: Any | None = None,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    video_backend: str = "auto",
    processor_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Build the model inputs of one user turn (a question, after an optional video or image) for `generate`.

    Shorthand for `build_batch_inputs(processor, [Prompt(text, video, video_metadata, image)], ...)`.

    Args:
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`):
            A multimodal processor, or the tokenizer of a text-only model (then `video` and `image` must be `None`).
        text (`str`):
            The question, placed after the video / image.
        video (`str`, `os.PathLike`, `np.ndarray` or `torch.Tensor`, *optional*):
            A video file (decoded with `num_frames` / `fps` / `max_frames`) or pre-sampled frames `(T, H, W, 3)`.
        video_metadata (`VideoMetadata`, *optional*):
            The metadata of pre-sampled frames, as [`~vreason_hf.video.load_video`] returns it.
        image (`PIL.Image.Image`, *optional*):
            An image.
        num_frames, fps, max_frames (*optional*):
            How a video file is sampled (see [`frame_sampling`]): by default 2 fps, at most 16 frames.
        video_backend (`str`, *optional*, defaults to `"auto"`):
            `"decord"`, `"pyav"` or `"auto"`, for a video file.
        processor_kwargs (`dict`, *optional*):
            Extra arguments for the processor call (e.g. `{"max_pixels": 128 * 28 * 28}`).

    Returns:
        `BatchFeature`: `input_ids`, `attention_mask` and the vision inputs, batch size 1.

    Raises:
        ValueError: If a video or image is given to a text-only tokenizer, or the processor has no video (image)
            processor for a video (image).
    """
    return build_batch_inputs(
        processor,
        [Prompt(text, video, video_metadata, image)],
        num_frames=num_frames,
        fps=fps,
        max_frames=max_frames,
        video_backend=video_backend,
        processor_kwargs=processor_kwargs,
    )


def build_batch_inputs(
    processor: Any,
    prompts: Sequence[Prompt],
    *,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    video_backend: str = "auto",
    processor_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Build one left-padded batch of model inputs, one chat-template user turn per prompt.

    Args:
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`):
            A multimodal processor, or the tokenizer of a text-only model (then no prompt may carry a video or an
            image).
        prompts (`Sequence[Prompt]`):
            The prompts; each holds its text and at most one video (a file, or frames with their metadata) and one
            image.
        num_frames, fps, max_frames, video_backend, processor_kwargs:
            As in [`build_inputs`].

    Returns:
        `BatchFeature`: `input_ids` and `attention_mask` of shape `(len(prompts), longest prompt)`, padded on the
        left (what decoder-only generation needs), and the vision inputs. A single prompt is not padded.

    Raises:
        ValueError: If `prompts` is empty, a video or image is given to a text-only tokenizer, the processor has
            no video (image) processor for a video (image), or a batch of several prompts needs padding and the
            tokenizer has no padding token.
    """
    prompts = list(prompts)
    if not prompts or not all(isinstance(p, Prompt) for p in prompts):
        raise ValueError(f"`prompts` must be a non-empty sequence of `Prompt`, got {prompts!r}.")
    if not is_multimodal(processor):
        if any(p.video is not None or p.image is not None for p in prompts):
            raise ValueError(
                f"`{type(processor).__name__}` is a text-only tokenizer: it cannot take a video or an image. "
                "Use a vision-language model, or leave the video out."
            )
        conversations = [[{"role": "user", "content": p.text}] for p in prompts]
        return chat_inputs(processor, conversations, processor_kwargs=processor_kwargs)
    sampling = {"num_frames": num_frames, "fps": fps, "max_frames": max_frames}
    conversations, videos, metadata, images = [], [], [], []
    for prompt in prompts:
        content: list[dict[str, Any]] = []
        if prompt.video is not None:
            if getattr(processor, "video_processor", None) is None:
                raise ValueError(
                    f"`{type(processor).__name__}` has no video processor: this model cannot take videos."
                )
            frames, meta = _frames(prompt, sampling, video_backend)
            content.append({"type": "video"})
            videos.append(frames)
            metadata.append(meta)
        if prompt.image is not None:
            if getattr(processor, "image_processor", None) is None:
                raise ValueError(
                    f"`{type(processor).__name__}` has no image processor: this model cannot take images."
                )
            content.append({"type": "image"})
            images.append(prompt.image)
        content.append({"type": "text", "text": prompt.text})
        conversations.append([{"role": "user", "content": content}])
    return chat_inputs(
        processor,
        conversations,
        videos=videos,
        video_metadata=metadata,
        images=images,
        processor_kwargs=processor_kwargs,
    )


def _frames(prompt: Prompt, sampling: dict[str, Any], backend: str) -> tuple[Any, Any]:
    """The prompt's frames and metadata: a video file decoded with `sampling`, or the frames as given."""
    if isinstance(prompt.video, str | os.PathLike):
        from .video import load_video

        if prompt.video_metadata is not None:
            _warn_once("`video_metadata` applies to frame arrays only: a video file's own metadata is used.")
        num_frames, fps, max_frames = frame_sampling(**sampling)
        return load_video(
            prompt.video, num_frames=num_frames, fps=fps, max_frames=max_frames, backend=backend
        )
    if any(value is not None for value in sampling.values()):
        _warn_once(
            "`num_frames`, `fps` and `max_frames` apply to video files only: frame arrays are used as given."
        )
    return prompt.video, prompt.video_metadata


def _complete_metadata(videos: list[Any], metadata: Sequence[Any] | None) -> list[Any]:
    """Copies of the videos' metadata (processors write into it), and what processors assume for frames without."""
    metadata = list(metadata) if metadata is not None else [None] * len(videos)
    if len(metadata) != len(videos):
        raise ValueError(
            f"Got {len(videos)} videos but {len(metadata)} `video_metadata`: give one per video."
        )
    if any(meta is None for meta in metadata):
        _warn_once(
            "A frame array came without `video_metadata`: the processor assumes a default frame rate (24 fps for "
            "the Qwen-VL family), which sets wrong temporal positions. Pass the `VideoMetadata` returned by "
            "`vreason_hf.video.load_video`."
        )
        from transformers.video_utils import VideoMetadata

        # What processors assume for frames without metadata (no frame rate), so a batch can mix both kinds.
        metadata = [
            VideoMetadata(total_num_frames=len(frames), fps=None, frames_indices=list(range(len(frames))))
            if meta is None
            else meta
            for frames, meta in zip(videos, metadata, strict=True)
        ]
    return [copy.deepcopy(meta) for meta in metadata]


def _continues(conversation: Sequence[dict[str, Any]], continue_final_message: bool | None) -> bool:
    # An assistant message at the end is a prefill to continue rather than a finished turn.
    if continue_final_message is not None:
        return continue_final_message
    return conversation[-1]["role"] == "assistant"


def chat_inputs(
    processor: Any,
    conversations: Sequence[Sequence[dict[str, Any]]],
    *,
    videos: Sequence[Any] | None = None,
    video_metadata: Sequence[Any] | None = None,
    images: Sequence[Any] | None = None,
    continue_final_message: bool | None = None,
    processor_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Model inputs for chats whose video / image items are bare `{"type": "video"}` / `{"type": "image"}` entries.

    The one place where chats meet the chat template and the processor ([`build_batch_inputs`] and the pipeline).

    Args:
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`):
            A multimodal processor, or the tokenizer of a text-only model (then message contents are strings).
        conversations (`Sequence[list[dict]]`):
            One chat per row.
        videos (`Sequence`, *optional*):
            Decoded frame arrays, in order of appearance over all chats.
        video_metadata (`Sequence[VideoMetadata | None]`, *optional*):
            Their metadata; frames without it get a warning and the metadata processors assume (no frame rate),
            so a batch can mix both kinds.
        images (`Sequence`, *optional*):
            Images, in order of appearance.
        continue_final_message (`bool`, *optional*):
            Continue each chat's last message instead of starting an assistant turn; by default exactly when that
            message is an assistant's (a prefill).
        processor_kwargs (`dict`, *optional*):
            Extra arguments for the processor (or tokenizer) call, over the defaults.

    Returns:
        `BatchFeature`: the inputs, left-padded when there are several chats.

    Raises:
        ValueError: If several chats need padding and the tokenizer has no padding token, or the processor cannot
            batch the videos (some stack them: they then need the same number of frames).
    """
    conversations = [list(chat) for chat in conversations]
    padding: dict[str, Any] = {}
    if len(conversations) > 1:
        if _tokenizer(processor).pad_token is None:
            raise ValueError(
                f"Batching several prompts pads them, but `{type(_tokenizer(processor)).__name__}` has no padding "
                "token. Set one (e.g. `tokenizer.pad_token = tokenizer.eos_token`) or use a batch size of 1."
            )
        padding = {"padding": True, "padding_side": "left"}  # generation appends on the right: align the ends
    if not is_multimodal(processor):
        return _text_only_inputs(processor, conversations, continue_final_message, padding, processor_kwargs)
    texts = []
    for chat in conversations:
        continues = _continues(chat, continue_final_message)
        texts.append(
            processor.apply_chat_template(
                chat, add_generation_prompt=not continues, continue_final_message=continues, tokenize=False
            )
        )
    kwargs: dict[str, Any] = dict(padding)
    if videos:
        kwargs.update(videos=list(videos), do_sample_frames=False)  # frames are pre-sampled
        kwargs["video_metadata"] = _complete_metadata(kwargs["videos"], video_metadata)
    if images:
        kwargs["images"] = list(images)
    kwargs.update(processor_kwargs or {})
    try:
        return processor(text=texts, return_tensors="pt", **kwargs)
    except ValueError as err:
        lengths = [len(frames) for frames in videos or ()]
        if len(set(lengths)) > 1:
            raise ValueError(
                f"{type(processor).__name__} could not batch videos of {lengths} frames ({err}). Some processors "
                f"(e.g. LLaVA-OneVision's) stack the videos of a batch: sample the same number of frames for each "
                f"(`num_frames=`) or use a batch size of 1."
            ) from err
        raise


def _text_only_inputs(
    tokenizer: Any,
    conversations: list[list[dict[str, Any]]],
    continue_final_message: bool | None,
    padding: dict[str, Any],
    tokenizer_kwargs: dict[str, Any] | None,
) -> Any:
    """A text-only tokenizer's inputs: through its chat template, or the plain question where it has none."""
    continues = {_continues(chat, continue_final_message) for chat in conversations}
    if len(continues) > 1:
        raise ValueError(
            "Some chats of the batch end with an assistant message to continue and some do not: batch them apart."
        )
    if getattr(tokenizer, "chat_template", None):
        (continues,) = continues
        call_kwargs = {**padding, **(tokenizer_kwargs or {})}
        # `apply_chat_template` takes these itself and hands the rest (`padding_side`, ...) to the tokenizer call.
        kwargs = {
            name: call_kwargs.pop(name)
            for name in ("padding", "truncation", "max_length")
            if name in call_kwargs
        }
        if call_kwargs:
            kwargs["tokenizer_kwargs"] = call_kwargs
        return tokenizer.apply_chat_template(
            conversations if len(conversations) > 1 else conversations[0],
            add_generation_prompt=not continues,
            continue_final_message=continues,
            return_dict=True,
            return_tensors="pt",
            **kwargs,
        )
    texts = []
    for chat in conversations:
        if len(chat) != 1 or not isinstance(chat[0].get("content"), str):
            raise ValueError(
                f"`{type(tokenizer).__name__}` has no chat template, so only a single user message with a string "
                "content can be tokenized; set `tokenizer.chat_template`."
            )
        texts.append(chat[0]["content"])
    return tokenizer(texts, return_tensors="pt", **{**padding, **(tokenizer_kwargs or {})})
