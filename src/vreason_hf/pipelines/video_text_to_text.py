# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The `video-text-to-text` pipeline: answer a question about a video, with V-Reason decoding by default."""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import torch
from transformers import AutoModelForImageTextToText, GenerationConfig, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.video_utils import VideoMetadata

from ..configuration_vreason import VReasonConfig
from ..generation import as_vreason_config, vreason_generate
from ..video import load_video

logger = logging.getLogger(__name__)

__all__ = ["TASK", "VideoTextToTextPipeline", "register_video_text_to_text_pipeline"]

TASK = "video-text-to-text"
"""The task name under which [`VideoTextToTextPipeline`] is registered."""

# Video-R1's evaluation protocol (the paper's tables): 2 frames per second, at most 16 frames.
DEFAULT_FPS = 2.0
DEFAULT_MAX_FRAMES = 16

_UNSET: Any = object()  # `max_frames=None` (no cap) differs from not passing `max_frames`
_TRACE_NAMES = ("entropies", "ema_entropies", "alphas")
_VideoSource = str | os.PathLike | np.ndarray | torch.Tensor
# Names users reach for by analogy, and where the pipeline takes them instead.
_RENAMED = {
    "prompt": "The video-text-to-text pipeline takes the question as `text=` (as `image-text-to-text` does), not "
    "`prompt=`.",
    "vreason_config": "Pass the V-Reason knobs to the pipeline as `vreason=` (a VReasonConfig or a dict), not "
    "`vreason_config=`.",
}


@functools.cache
def _warn_once(message: str) -> None:
    logger.warning(message)


@dataclass
class _VideoRequest:
    """One input, normalised: a chat whose video items are bare `{"type": "video"}`, and their sources in order."""

    messages: list[dict[str, Any]]
    videos: list[_VideoSource] = field(default_factory=list)
    metadata: list[VideoMetadata | None] = field(default_factory=list)


@dataclass
class _VideoBatch:
    """The inputs decoded by one `generate` call (not a list, so `Pipeline.__call__` runs it as a single input)."""

    requests: list[_VideoRequest]


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and "role" in value and "content" in value


def _is_chat(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) > 0 and all(_is_message(m) for m in value)


def _is_chat_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) > 0 and all(_is_chat(chat) for chat in value)


def _check_video(video: Any, where: str) -> _VideoSource:
    if isinstance(video, str | os.PathLike):
        return video
    if isinstance(video, np.ndarray | torch.Tensor):
        if video.ndim != 4:
            raise ValueError(
                f"{where}: a decoded video must be a 4D frame array `(num_frames, height, width, 3)`, got an array "
                f"of shape {tuple(video.shape)}. For a single image use the `image-text-to-text` pipeline."
            )
        return video
    raise TypeError(
        f"{where}: a video must be a file path or a `(num_frames, height, width, 3)` frame array, got "
        f"{type(video).__name__}."
    )


def _check_metadata(metadata: Any, where: str) -> VideoMetadata | None:
    if metadata is None or isinstance(metadata, VideoMetadata):
        return metadata
    if isinstance(metadata, dict):
        try:
            return VideoMetadata(**metadata)
        except TypeError as err:
            raise ValueError(f"{where}: invalid `video_metadata` {metadata!r}: {err}.") from None
    raise TypeError(
        f"{where}: `video_metadata` must be a `transformers.video_utils.VideoMetadata` or a dict, got "
        f"{type(metadata).__name__}."
    )


def _parse_chat(chat: Sequence[dict[str, Any]], where: str) -> _VideoRequest:
    """Split a chat into a template-ready copy (video items reduced to their type) and its video sources."""
    request = _VideoRequest(messages=[])
    for m, message in enumerate(chat):
        content = message["content"]
        if isinstance(content, str):
            request.messages.append({**message})
            continue
        if not isinstance(content, list | tuple):
            raise TypeError(
                f"{where}, message {m}: `content` must be a string or a list of items, got {type(content).__name__}."
            )
        items = []
        for i, item in enumerate(content):
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "text":
                if not isinstance(item.get("text"), str):
                    raise ValueError(
                        f"{where}, message {m}, item {i}: a text item needs a string under `text`."
                    )
                items.append({**item})
            elif kind == "video":
                source = item.get("video", item.get("path"))
                if source is None:
                    raise ValueError(
                        f"{where}, message {m}, item {i}: a video item needs the video under `video` (a file path or "
                        f"a frame array) or `path`, got keys {sorted(item)}."
                    )
                item_where = f"{where}, message {m}, item {i}"
                request.videos.append(_check_video(source, item_where))
                request.metadata.append(_check_metadata(item.get("video_metadata"), item_where))
                items.append({"type": "video"})
            else:
                raise ValueError(
                    f"{where}, message {m}, item {i}: unsupported item type {kind!r}; this pipeline accepts "
                    f"`video` and `text` items (e.g. `{{'type': 'video', 'video': 'clip.mp4'}}`)."
                )
        request.messages.append({**message, "content": items})
    if not request.videos:
        raise ValueError(
            f"{where}: no video given. Add a `{{'type': 'video', 'video': <path or frames>}}` item to the chat."
        )
    return request


def _plain_request(video: Any, text: Any, metadata: Any, where: str) -> _VideoRequest:
    if video is None:
        raise ValueError(f"{where}: no video given. Pass a video file path or a frame array as `videos`.")
    if text is None:
        raise ValueError(f"{where}: no question given. Pass it as `text=` (or use the chat format).")
    if not isinstance(text, str):
        raise TypeError(f"{where}: the question (`text`) must be a string, got {type(text).__name__}.")
    content = [{"type": "video"}, {"type": "text", "text": text}]
    return _VideoRequest(
        messages=[{"role": "user", "content": content}],
        videos=[_check_video(video, where)],
        metadata=[_check_metadata(metadata, where)],
    )


def _dict_request(item: dict[str, Any], text: Any, metadata: Any, where: str) -> _VideoRequest:
    unknown = sorted(set(item) - {"video", "text", "video_metadata"})
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown} in the input dict; it takes `video`, `text` and `video_metadata`."
        )
    return _plain_request(
        item.get("video"), item.get("text", text), item.get("video_metadata", metadata), where
    )


def _generate_runs_vreason(model: Any) -> bool:
    """
    Whether the model's own `generate` takes `vreason_config`: a [`VReasonForConditionalGeneration`] (a V-Reason
    model repo, also when loaded as remote code) runs V-Reason with its repo's knobs unless told otherwise.
    """
    try:
        return "vreason_config" in inspect.signature(model.generate).parameters
    except (TypeError, ValueError):
        return False


class VideoTextToTextPipeline(Pipeline):
    r"""
    Video-text-to-text pipeline using an `AutoModelForImageTextToText` video LMM (Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
    LLaVA-OneVision, ...). It answers a question about a video, decoding with V-Reason by default.

    Videos given as file paths are decoded with [`~vreason_hf.video.load_video`] (decord, or PyAV where decord is
    not installed); the frames and their `VideoMetadata` go to the processor together, so models whose temporal
    positions depend on the frame rate (Qwen2.5-VL) or that write timestamps into the prompt (Qwen3-VL) see the
    clip's real timing. Frames are always pre-sampled, so the processor is called with `do_sample_frames=False`.

    Importing `vreason_hf` registers this pipeline under the task `"video-text-to-text"`, so
    `transformers.pipeline("video-text-to-text", model=...)` builds it.

    Unless the model's generation config sets them, the following default values are used:
    - max_new_tokens: 256

    Example:

    ```python
    >>> import vreason_hf  # registers the "video-text-to-text" task
    >>> from transformers import pipeline

    >>> pipe = pipeline("video-text-to-text", model="Qwen/Qwen2.5-VL-3B-Instruct")
    >>> answer = pipe("clip.mp4", text="What happens in the video?", num_frames=16, max_new_tokens=128)
    >>> answer["generated_text"], answer["num_generated_tokens"]

    >>> # Plain decoding, a batch of two clips, and the entropy traces of V-Reason:
    >>> pipe(["a.mp4", "b.mp4"], text="Describe the video.", vreason=False, batch_size=2)
    >>> pipe("clip.mp4", text="How many people?", vreason={"lr": 0.1}, return_traces=True)
    ```

    This pipeline can be loaded from [`~transformers.pipeline`] with the task identifier `"video-text-to-text"`.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    _pipeline_calls_generate = True
    # Keep the class docstring in sync when changing the default generation config.
    _default_generation_config = GenerationConfig(max_new_tokens=256)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if getattr(self.processor, "video_processor", None) is None:
            raise ValueError(
                f"The video-text-to-text pipeline needs a processor with a video processor, got "
                f"{type(self.processor).__name__}. Pass the model's processor, e.g. "
                f"`processor=AutoProcessor.from_pretrained(...)`."
            )

    def _sanitize_parameters(
        self,
        max_new_tokens: int | None = None,
        generate_kwargs: dict[str, Any] | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        max_frames: int | None = _UNSET,
        video_backend: str | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        vreason: bool | VReasonConfig | dict[str, Any] | None = None,
        return_traces: bool | None = None,
        skip_special_tokens: bool | None = None,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        preprocess_params: dict[str, Any] = {}
        forward_params: dict[str, Any] = {}
        postprocess_params: dict[str, Any] = {}

        if num_frames is not None and fps is not None:
            raise ValueError(
                f"`num_frames` ({num_frames}) and `fps` ({fps}) are mutually exclusive: sample a fixed number of "
                f"frames or a frame rate, not both."
            )
        for name, value in (
            ("num_frames", num_frames),
            ("fps", fps),
            ("max_frames", max_frames),
            ("video_backend", video_backend),
            ("processor_kwargs", processor_kwargs),
        ):
            if value is not None and value is not _UNSET:
                preprocess_params[name] = value
        if max_frames is None:
            preprocess_params["max_frames"] = None

        for name in ("prompt", "vreason_config"):
            if name in kwargs or (generate_kwargs and name in generate_kwargs):
                raise ValueError(_RENAMED[name])
        generate_kwargs = {**(generate_kwargs or {})}
        for name, value in {"max_new_tokens": max_new_tokens, **kwargs}.items():
            if value is None and name == "max_new_tokens":
                continue
            if name in generate_kwargs:
                raise ValueError(
                    f"`{name}` is defined twice, once in `generate_kwargs` and once as a direct parameter; use only one."
                )
            generate_kwargs[name] = value
        if (generate_kwargs.get("num_return_sequences") or 1) > 1:
            raise ValueError(
                f"The video-text-to-text pipeline returns one answer per input, got `num_return_sequences="
                f"{generate_kwargs['num_return_sequences']}`. To sample several answers, repeat the input in a list "
                f"and pass `do_sample=True`."
            )
        if generate_kwargs:
            forward_params["generate_kwargs"] = generate_kwargs
        if vreason is not None:
            self._resolve_vreason(vreason)  # fail now, before any video is decoded
            forward_params["vreason"] = vreason
        if return_traces is not None:
            forward_params["return_traces"] = return_traces
            postprocess_params["return_traces"] = return_traces

        if skip_special_tokens is not None:
            postprocess_params["skip_special_tokens"] = skip_special_tokens
        if clean_up_tokenization_spaces is not None:
            postprocess_params["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        return preprocess_params, forward_params, postprocess_params

    @overload
    def __call__(
        self, videos: _VideoSource | dict[str, Any], text: str | None = None, **kwargs: Any
    ) -> dict[str, Any]: ...

    @overload
    def __call__(
        self,
        videos: list[_VideoSource] | list[dict[str, Any]],
        text: str | list[str] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]: ...

    def __call__(
        self,
        videos: _VideoSource | dict[str, Any] | list[Any] | None = None,
        text: str | list[str] | list[dict[str, Any]] | None = None,
        *,
        video_metadata: VideoMetadata
        | dict[str, Any]
        | list[VideoMetadata | dict[str, Any] | None]
        | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        r"""
        Answer the question(s) about the video(s).

        Args:
            videos (`str`, `os.PathLike`, `np.ndarray`, `torch.Tensor`, `dict`, or a list of them):
                The video(s), each one of:

                - a path to a video file, decoded with [`~vreason_hf.video.load_video`] (see `num_frames`, `fps`);
                - a decoded frame array of shape `(num_frames, height, width, 3)`, used as given (pass its
                  `video_metadata`);
                - a dict `{"video": <path or frames>, "text": <question>, "video_metadata": <optional>}`;
                - a chat: a list of `{"role": ..., "content": [...]}` messages whose content items are
                  `{"type": "video", "video": <path or frames>, "video_metadata": <optional>}` and
                  `{"type": "text", "text": ...}`. A chat that ends with an assistant message is continued.

                A list of inputs (or of chats) is a batch: its outputs come as a list, one per input.
            text (`str`, `list[str]`, or a chat, *optional*):
                The question. One string applies to every video of a list; a list gives one per video. A chat may be
                passed here instead of `videos`.
            video_metadata (`VideoMetadata`, `dict`, or a list of them, *optional*):
                The metadata of frame-array inputs (frames per second, sampled indices; as returned by
                [`~vreason_hf.video.load_video`]). Without it the processor assumes a default frame rate (24 fps for
                the Qwen-VL family), which sets wrong temporal positions.
            batch_size (`int`, *optional*):
                How many inputs of a list share one `generate` call (left-padded); defaults to the pipeline's
                `batch_size`, else 1. Outputs do not depend on it.
            num_frames (`int`, *optional*):
                Decode this many frames, uniformly over each video file. Exclusive with `fps`.
            fps (`float`, *optional*):
                Decode this many frames per second of each video file. Exclusive with `num_frames`. Without either,
                videos are sampled at 2 fps with at most 16 frames (Video-R1's protocol).
            max_frames (`int`, *optional*):
                Cap on the frames decoded per video file; defaults to 16 when sampling by `fps` (no cap with
                `num_frames`). `None` removes the cap.
            video_backend (`str`, *optional*, defaults to `"auto"`):
                `"decord"`, `"pyav"` or `"auto"` (decord where installed).
            vreason (`bool`, `VReasonConfig` or `dict`, *optional*, defaults to `True`):
                `True`: decode with V-Reason, with the knobs of a V-Reason model repo (see
                [`~vreason_hf.save_vreason_model`]) or else the [`VReasonConfig`] defaults. `False`: plain decoding.
                A `VReasonConfig` replaces those knobs; a `dict` overrides some of them.
            return_traces (`bool`, *optional*, defaults to `False`):
                Also return V-Reason's per-token traces (needs V-Reason; `vreason={"num_steps": 0}` gives the
                traces of plain decoding).
            max_new_tokens (`int`, *optional*):
                Maximum number of generated tokens (256 unless the model's generation config sets it).
            generate_kwargs (`dict`, *optional*):
                Extra arguments for `model.generate`; any other keyword argument of this call goes there too (e.g.
                `do_sample=True`, `min_p=0.05`, `streamer=...`).
            processor_kwargs (`dict`, *optional*):
                Extra arguments for the processor call (e.g. `{"max_pixels": 128 * 28 * 28}` for Qwen-VL models).
            skip_special_tokens (`bool`, *optional*, defaults to `True`):
                Whether to drop special tokens from `generated_text`.
            clean_up_tokenization_spaces (`bool`, *optional*):
                Passed to the tokenizer's `decode`.

        Return:
            A `dict` per input (a list of them for a list of inputs) with:

            - **generated_text** (`str`) -- The answer.
            - **num_generated_tokens** (`int`) -- Tokens generated, up to and including the first end-of-sequence
              token.
            - **entropies**, **ema_entropies**, **alphas** (`list[float]`, with `return_traces=True`) -- V-Reason's
              traces, one value per generated token (see [`VReasonGenerateOutput`]).
            - **optimizer_steps** (`int`, with `return_traces=True`) -- Adam steps taken on this input's controller.
        """
        if "images" in kwargs:
            raise ValueError(
                "The video-text-to-text pipeline takes `videos`, not `images`; for images use `image-text-to-text`."
            )
        if "prompt" in kwargs:
            raise ValueError(_RENAMED["prompt"])
        requests, single = self._collect(videos, text, video_metadata)
        if batch_size is None:
            batch_size = self._batch_size or 1
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        outputs: list[dict[str, Any]] = []
        for start in range(0, len(requests), batch_size):
            outputs.extend(super().__call__(_VideoBatch(requests[start : start + batch_size]), **kwargs))
        return outputs[0] if single else outputs

    def _collect(self, videos: Any, text: Any, video_metadata: Any) -> tuple[list[_VideoRequest], bool]:
        """Normalise the call's inputs into requests (no decoding yet); returns them and whether the input was single."""
        if _is_chat(videos) or _is_chat_list(videos):
            if text is not None:
                raise ValueError(
                    "Got a chat and a separate `text`: put the question inside the chat, as a "
                    "`{'type': 'text', 'text': ...}` item."
                )
            videos, text = None, videos
        if _is_chat(text) or _is_chat_list(text):
            if videos is not None:
                raise ValueError(
                    "Got a chat and separate `videos`: put each video inside the chat, as a "
                    "`{'type': 'video', 'video': <path or frames>}` item."
                )
            if video_metadata is not None:
                raise ValueError(
                    "`video_metadata` does not apply to chats: put it in the video item, "
                    "`{'type': 'video', 'video': frames, 'video_metadata': metadata}`."
                )
            if _is_chat(text):
                return [_parse_chat(text, "The chat")], True
            return [_parse_chat(chat, f"Chat {i}") for i, chat in enumerate(text)], False

        if isinstance(videos, list | tuple):
            if not videos:
                raise ValueError("Got an empty list of videos.")
            count = len(videos)
            texts = self._broadcast("text", text, count)
            metadata = self._broadcast("video_metadata", video_metadata, count)
            requests = []
            for i, (video, question, meta) in enumerate(zip(videos, texts, metadata, strict=True)):
                where = f"Input {i}"
                if isinstance(video, dict):
                    requests.append(_dict_request(video, question, meta, where))
                else:
                    requests.append(_plain_request(video, question, meta, where))
            return requests, False
        if isinstance(text, list | tuple):
            raise ValueError(
                f"Got {len(text)} questions for a single video: pass a list of videos of the same length, or one "
                f"question string."
            )
        if isinstance(videos, dict):
            return [_dict_request(videos, text, video_metadata, "The input")], True
        return [_plain_request(videos, text, video_metadata, "The input")], True

    @staticmethod
    def _broadcast(name: str, value: Any, count: int) -> list[Any]:
        if isinstance(value, list | tuple):
            if len(value) != count:
                raise ValueError(
                    f"Got {count} videos but {len(value)} values of `{name}`: give one per video."
                )
            return list(value)
        return [value] * count

    @staticmethod
    def _resolve_vreason(vreason: bool | VReasonConfig | dict[str, Any]) -> VReasonConfig | None:
        """The V-Reason config of a call on a plain model (`None` for plain decoding)."""
        if vreason is False:
            return None
        if vreason is True:
            return VReasonConfig()
        if isinstance(vreason, VReasonConfig | dict):
            return as_vreason_config(vreason)
        raise TypeError(
            f"`vreason` must be True (V-Reason with the model's or default knobs), False (plain decoding), a "
            f"VReasonConfig or a dict of its knobs, got {type(vreason).__name__}."
        )

    def preprocess(
        self,
        inputs: _VideoBatch,
        num_frames: int | None = None,
        fps: float | None = None,
        max_frames: int | None = _UNSET,
        video_backend: str = "auto",
        processor_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not isinstance(inputs, _VideoBatch):
            raise TypeError(
                f"Call the pipeline (`pipe(videos, text=...)`) rather than `preprocess`; got {type(inputs).__name__}."
            )
        sampling_given = num_frames is not None or fps is not None or max_frames is not _UNSET
        if num_frames is None and fps is None:
            fps = DEFAULT_FPS
        if max_frames is _UNSET:
            max_frames = DEFAULT_MAX_FRAMES if num_frames is None else None

        texts, videos, metadata = [], [], []
        for request in inputs.requests:
            for source, meta in zip(request.videos, request.metadata, strict=True):
                if isinstance(source, str | os.PathLike):
                    frames, meta = load_video(
                        source, num_frames=num_frames, fps=fps, max_frames=max_frames, backend=video_backend
                    )
                else:
                    frames = source
                    if sampling_given:
                        _warn_once(
                            "`num_frames`, `fps` and `max_frames` apply to video files only: frame arrays are used as "
                            "given."
                        )
                    if meta is None:
                        _warn_once(
                            "A frame array came without `video_metadata`: the processor assumes a default frame rate "
                            "(24 fps for the Qwen-VL family), which sets wrong temporal positions. Pass the "
                            "`VideoMetadata` returned by `vreason_hf.video.load_video`."
                        )
                        meta = self._default_metadata(frames)
                videos.append(frames)
                # Processors may write into the metadata (e.g. a default fps): give them a copy.
                metadata.append(copy.deepcopy(meta))
            # An assistant message at the end is a prefill to continue rather than a finished turn.
            continue_final = request.messages[-1]["role"] == "assistant"
            texts.append(
                self.processor.apply_chat_template(
                    request.messages,
                    add_generation_prompt=not continue_final,
                    continue_final_message=continue_final,
                    tokenize=False,
                )
            )

        kwargs = {
            "padding": True,
            "padding_side": "left",  # generation appends on the right: keep every prompt's end aligned
            "do_sample_frames": False,  # the frames are already sampled (Qwen3-VL re-samples otherwise)
            **(processor_kwargs or {}),
        }
        try:
            model_inputs = self.processor(
                text=texts, videos=videos, video_metadata=metadata, return_tensors="pt", **kwargs
            )
        except ValueError as err:
            lengths = [len(frames) for frames in videos]
            if len(set(lengths)) > 1:
                raise ValueError(
                    f"{type(self.processor).__name__} could not batch videos of {lengths} frames ({err}). Some "
                    f"processors (e.g. LLaVA-OneVision's) stack the videos of a batch: sample the same number of "
                    f"frames for each (`num_frames=`) or use `batch_size=1`."
                ) from err
            raise
        return dict(model_inputs.to(dtype=self.dtype))

    @staticmethod
    def _default_metadata(frames: np.ndarray | torch.Tensor) -> VideoMetadata:
        """What processors assume for frames without metadata (no frame rate), so a batch can mix both kinds."""
        count = int(frames.shape[0])
        return VideoMetadata(total_num_frames=count, fps=None, frames_indices=list(range(count)))

    def _forward(
        self,
        model_inputs: dict[str, Any],
        generate_kwargs: dict[str, Any] | None = None,
        vreason: bool | VReasonConfig | dict[str, Any] = True,
        return_traces: bool = False,
    ) -> dict[str, Any]:
        config = self._resolve_vreason(vreason)
        if return_traces and config is None:
            raise ValueError(
                "`return_traces=True` needs V-Reason, which computes the traces, but `vreason=False`. For the traces "
                "of plain decoding pass `vreason={'num_steps': 0}` (its tokens equal plain decoding's)."
            )
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs or {}, return_dict_in_generate=True)
        if config is not None and "custom_generate" in generate_kwargs:
            raise ValueError(
                "`custom_generate` replaces the decoding loop, and V-Reason is one: pass `vreason=False` to decode "
                "with another loop."
            )
        if _generate_runs_vreason(self.model):
            # A V-Reason model decodes with its repo's knobs unless given others: a dict overrides some of them, `None`
            # decodes plainly. Knobs cross as a dict, since a remote-code model checks against its own config class.
            if vreason is False:
                generate_kwargs["vreason_config"] = None
            elif vreason is not True:
                generate_kwargs["vreason_config"] = (
                    vreason.knobs() if isinstance(vreason, VReasonConfig) else vreason
                )
        elif config is not None:
            # `generate` does not hand `streamer` to a callable `custom_generate`; the loop takes it under this name.
            if "streamer" in generate_kwargs:
                generate_kwargs["vreason_streamer"] = generate_kwargs.pop("streamer")
            generate_kwargs.update(custom_generate=vreason_generate, vreason_config=config)

        output = self.model.generate(**model_inputs, **generate_kwargs)
        eos = generate_kwargs.get("eos_token_id")
        if eos is None and generate_kwargs.get("generation_config") is not None:
            eos = generate_kwargs["generation_config"].eos_token_id
        if eos is None:
            eos = self.model.generation_config.eos_token_id
        prompt_length = model_inputs["input_ids"].shape[1]
        result = {
            "generated_ids": output.sequences[:, prompt_length:],  # (batch, generated_length)
            "eos_token_ids": [] if eos is None else ([eos] if isinstance(eos, int) else list(eos)),
        }
        if return_traces:
            for name in (*_TRACE_NAMES, "optimizer_steps"):
                result[name] = getattr(output, name, None)
                if result[name] is None:
                    raise RuntimeError(
                        f"`{type(self.model).__name__}.generate` returned no `{name}`; `return_traces=True` needs a "
                        f"`VReasonGenerateOutput` (from `vreason_generate`)."
                    )
        return result

    def postprocess(
        self,
        model_outputs: dict[str, Any],
        return_traces: bool = False,
        skip_special_tokens: bool = True,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> list[dict[str, Any]]:
        generated = model_outputs["generated_ids"]
        eos = torch.tensor(model_outputs["eos_token_ids"], dtype=generated.dtype)
        records = []
        for row, tokens in enumerate(generated):
            # Rows that finished early are padded after their end-of-sequence token: count up to and including it.
            ends = torch.isin(tokens, eos).nonzero()
            length = int(ends[0]) + 1 if len(ends) else len(tokens)
            record = {
                "generated_text": self.processor.tokenizer.decode(
                    tokens[:length],
                    skip_special_tokens=skip_special_tokens,
                    clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                ),
                "num_generated_tokens": length,
            }
            if return_traces:
                for name in _TRACE_NAMES:
                    record[name] = model_outputs[name][row, :length].tolist()
                record["optimizer_steps"] = int(model_outputs["optimizer_steps"][row])
            records.append(record)
        return records


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
        ours = getattr(impl, "__module__", None) == __name__ and getattr(impl, "__qualname__", None) == (
            VideoTextToTextPipeline.__qualname__
        )
        if not ours:
            name = f"{getattr(impl, '__module__', '?')}.{getattr(impl, '__qualname__', impl)}"
            logger.warning(
                "The %r task is already registered to %s; vreason_hf leaves it in place. To use V-Reason's pipeline, "
                "pass `pipeline_class=vreason_hf.pipelines.VideoTextToTextPipeline` to `transformers.pipeline`.",
                TASK,
                name,
            )
            return
        # This module was reloaded: replace the stale class without transformers' "overwriting" warning.
        del PIPELINE_REGISTRY.supported_tasks[TASK]
    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=VideoTextToTextPipeline, pt_model=AutoModelForImageTextToText, type="multimodal"
    )
