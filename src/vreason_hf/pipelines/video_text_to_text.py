# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The `video-text-to-text` pipeline: answer a question about a video, with V-Reason decoding by default.

Its inputs and outputs follow transformers' `image-text-to-text` pipeline: a list of
`{"input_text", "generated_text"}` records per input (a list of such lists for a list of inputs), chat in and chat
out, `return_full_text`, `max_new_tokens` and `generate_kwargs`; V-Reason's options and outputs come on top.
"""

from __future__ import annotations

import logging
import os
from typing import Any, overload

import numpy as np
import torch
from transformers import GenerationConfig, Pipeline
from transformers.video_utils import VideoMetadata

from ..configuration_vreason import VReasonConfig
from ..generation import vreason_generate_kwargs
from ..generation.hub_generate import resolve_vreason_config
from ..inputs import chat_inputs
from .video_inputs import (
    RENAMED_ARGUMENTS,
    UNSET,
    VideoBatch,
    collect_generate_kwargs,
    collect_requests,
    decode_requests,
)

logger = logging.getLogger(__name__)

__all__ = ["TASK", "VideoTextToTextPipeline"]

TASK = "video-text-to-text"
"""The task name under which [`VideoTextToTextPipeline`] is registered."""

_TRACE_NAMES = ("entropies", "ema_entropies", "alphas")
_VideoInput = str | os.PathLike | np.ndarray | torch.Tensor


class VideoTextToTextPipeline(Pipeline):
    r"""
    Video-text-to-text pipeline using an `AutoModelForImageTextToText` video LMM (Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
    LLaVA-OneVision, ...). It answers a question about a video, decoding with V-Reason by default. Inputs and outputs
    follow transformers' `image-text-to-text` pipeline; V-Reason's options (`vreason=`, `return_traces=`) and
    `num_generated_tokens` come on top.

    Videos given as file paths or URLs are decoded with [`~vreason_hf.video.load_video`] (decord, or PyAV where
    decord is not installed); the frames and their `VideoMetadata` go to the processor together, so models whose
    temporal positions depend on the frame rate (Qwen2.5-VL) or that write timestamps into the prompt (Qwen3-VL) see
    the clip's real timing. Frames are always pre-sampled, so the processor is called with `do_sample_frames=False`.

    Unless the model's generation config sets them, the following default values are used:
    - max_new_tokens: 256

    Example:

    ```python
    >>> import vreason_hf  # registers the "video-text-to-text" task
    >>> from transformers import pipeline

    >>> pipe = pipeline("video-text-to-text", model="Qwen/Qwen2.5-VL-3B-Instruct")
    >>> messages = [
    ...     {"role": "user", "content": [{"type": "video", "path": "clip.mp4"}, {"type": "text", "text": "Why?"}]}
    ... ]
    >>> out = pipe(text=messages, max_new_tokens=128, return_full_text=False)
    >>> out[0]["generated_text"], out[0]["num_generated_tokens"]

    >>> # Plain decoding, a batch of two clips, and the entropy traces of V-Reason:
    >>> pipe(["a.mp4", "b.mp4"], text="Describe the video.", vreason=False, batch_size=2)
    >>> pipe("clip.mp4", text="How many people?", vreason={"lr": 0.1}, return_traces=True)
    ```

    This pipeline can be loaded from [`~transformers.pipeline`] with the task identifier `"video-text-to-text"`, which
    importing `vreason_hf` registers.
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
        max_frames: int | None = UNSET,
        video_backend: str | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        continue_final_message: bool | None = None,
        vreason: bool | VReasonConfig | dict[str, Any] | None = None,
        return_traces: bool | None = None,
        return_full_text: bool | None = None,
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
            ("continue_final_message", continue_final_message),
        ):
            if value is not None and value is not UNSET:
                preprocess_params[name] = value
        if max_frames is None:
            preprocess_params["max_frames"] = None

        generate_kwargs = collect_generate_kwargs(max_new_tokens, generate_kwargs, kwargs)
        if generate_kwargs:
            forward_params["generate_kwargs"] = generate_kwargs
        if vreason is not None:
            self._resolve_vreason(vreason)  # fail now, before any video is decoded
            forward_params["vreason"] = vreason
        if return_traces is not None:
            forward_params["return_traces"] = return_traces
            postprocess_params["return_traces"] = return_traces

        for name, value in (
            ("return_full_text", return_full_text),
            ("continue_final_message", continue_final_message),
            ("skip_special_tokens", skip_special_tokens),
            ("clean_up_tokenization_spaces", clean_up_tokenization_spaces),
        ):
            if value is not None:
                postprocess_params[name] = value
        return preprocess_params, forward_params, postprocess_params

    @overload
    def __call__(
        self, videos: _VideoInput | dict[str, Any], text: str | None = None, **kwargs: Any
    ) -> list[dict[str, Any]]: ...

    @overload
    def __call__(
        self,
        videos: list[_VideoInput] | list[dict[str, Any]],
        text: str | list[str] | None = None,
        **kwargs: Any,
    ) -> list[list[dict[str, Any]]]: ...

    def __call__(
        self,
        videos: _VideoInput | dict[str, Any] | list[Any] | None = None,
        text: str | list[str] | list[dict[str, Any]] | None = None,
        *,
        video_metadata: VideoMetadata
        | dict[str, Any]
        | list[VideoMetadata | dict[str, Any] | None]
        | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
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
                  `{"type": "text", "text": ...}` and video items naming the video under one of `path` (a file),
                  `url` (an `http(s)://` URL, fetched as transformers does, a `file://` URL or a path) or `video` (a
                  path or a frame array, with an optional `video_metadata`).

                A list of inputs (or of chats) is a batch: its outputs come as a list, one list per input.
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
                `True`: decode with V-Reason, with the knobs stored in the model's generation config (a V-Reason model
                repo's, see [`~vreason_hf.save_vreason_model`]) or else the [`VReasonConfig`] defaults. A `dict`
                overrides some of those knobs; a `VReasonConfig` replaces them. `False`: plain decoding.
            return_traces (`bool`, *optional*, defaults to `False`):
                Also return V-Reason's per-token traces (needs V-Reason; `vreason={"num_steps": 0}` gives the
                traces of plain decoding).
            return_full_text (`bool`, *optional*, defaults to `True`):
                As in `image-text-to-text`: `generated_text` is the input followed by the answer (the question
                string plus the answer; for a chat, the chat with the answer as a new assistant message, or appended
                to a final assistant message being continued). `False`: the answer only.
            continue_final_message (`bool`, *optional*):
                Continue the chat's last message instead of starting a new assistant turn; by default `True` exactly
                when the last message is an assistant's (a prefill).
            max_new_tokens (`int`, *optional*):
                Maximum number of generated tokens (256 unless the model's generation config sets it).
            generate_kwargs (`dict`, *optional*):
                Extra arguments for `model.generate`; any other keyword argument of this call goes there too (e.g.
                `do_sample=True`, `min_p=0.05`, `streamer=...`).
            processor_kwargs (`dict`, *optional*):
                Extra arguments for the processor call (e.g. `{"max_pixels": 128 * 28 * 28}` for Qwen-VL models).
            skip_special_tokens (`bool`, *optional*, defaults to `True`):
                Whether to drop special tokens from the answer.
            clean_up_tokenization_spaces (`bool`, *optional*):
                Passed to the tokenizer's `decode`.

        Return:
            For one input a list with one `dict`, for a list of inputs a list of such lists, as `image-text-to-text`
            returns them, each `dict` with:

            - **input_text** (`str` or `list[dict]`) -- The question, or the chat, as given.
            - **generated_text** (`str` or `list[dict]`) -- The answer (see `return_full_text`).
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
            raise ValueError(RENAMED_ARGUMENTS["prompt"])
        requests, single = collect_requests(videos, text, video_metadata)
        if batch_size is None:
            batch_size = self._batch_size or 1
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        outputs: list[list[dict[str, Any]]] = []
        for start in range(0, len(requests), batch_size):
            outputs.extend(super().__call__(VideoBatch(requests[start : start + batch_size]), **kwargs))
        return outputs[0] if single else outputs

    def _resolve_vreason(
        self,
        vreason: bool | VReasonConfig | dict[str, Any],
        generation_config: GenerationConfig | None = None,
    ) -> VReasonConfig | None:
        """The V-Reason config of a call (`None` for plain decoding), with the model's stored knobs as defaults."""
        if vreason is False:
            return None
        if vreason is True:
            vreason = {}
        if (
            not isinstance(vreason, VReasonConfig | dict)
            and getattr(vreason, "model_type", None) != "vreason"
        ):
            raise TypeError(
                f"`vreason` must be True (V-Reason with the model's stored or the default knobs), False (plain "
                f"decoding), a VReasonConfig or a dict of its knobs, got {type(vreason).__name__}."
            )
        return resolve_vreason_config(vreason, self.model, generation_config)

    def preprocess(
        self,
        inputs: VideoBatch,
        num_frames: int | None = None,
        fps: float | None = None,
        max_frames: int | None = UNSET,
        video_backend: str = "auto",
        processor_kwargs: dict[str, Any] | None = None,
        continue_final_message: bool | None = None,
    ) -> dict[str, Any]:
        if not isinstance(inputs, VideoBatch):
            raise TypeError(
                f"Call the pipeline (`pipe(videos, text=...)`) rather than `preprocess`; got {type(inputs).__name__}."
            )
        videos, metadata = decode_requests(
            inputs.requests,
            num_frames=num_frames,
            fps=fps,
            max_frames=max_frames,
            video_backend=video_backend,
        )
        model_inputs = chat_inputs(
            self.processor,
            [request.messages for request in inputs.requests],
            videos=videos,
            video_metadata=metadata,
            continue_final_message=continue_final_message,
            processor_kwargs=processor_kwargs,
        )
        return {**model_inputs.to(dtype=self.dtype), "requests": inputs.requests}

    def _forward(
        self,
        model_inputs: dict[str, Any],
        generate_kwargs: dict[str, Any] | None = None,
        vreason: bool | VReasonConfig | dict[str, Any] = True,
        return_traces: bool = False,
    ) -> dict[str, Any]:
        requests = model_inputs.pop("requests")
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs or {}, return_dict_in_generate=True)
        config = self._resolve_vreason(vreason, generate_kwargs.get("generation_config"))
        if return_traces and config is None:
            raise ValueError(
                "`return_traces=True` needs V-Reason, which computes the traces, but `vreason=False`. For the traces "
                "of plain decoding pass `vreason={'num_steps': 0}` (its tokens equal plain decoding's)."
            )
        if config is not None and "custom_generate" in generate_kwargs:
            raise ValueError(
                "`custom_generate` replaces the decoding loop, and V-Reason is one: pass `vreason=False` to decode "
                "with another loop."
            )
        streamer = generate_kwargs.pop("streamer", None)
        generate_kwargs.update(vreason_generate_kwargs(config, model=self.model, streamer=streamer))
        output = self.model.generate(**model_inputs, **generate_kwargs)
        eos = generate_kwargs.get("eos_token_id")
        if eos is None and generate_kwargs.get("generation_config") is not None:
            eos = generate_kwargs["generation_config"].eos_token_id
        if eos is None:
            eos = self.model.generation_config.eos_token_id
        prompt_length = model_inputs["input_ids"].shape[1]
        result = {
            "requests": requests,
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
        return_full_text: bool = True,
        continue_final_message: bool | None = None,
        return_traces: bool = False,
        skip_special_tokens: bool = True,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> list[list[dict[str, Any]]]:
        generated = model_outputs["generated_ids"]
        eos = torch.tensor(model_outputs["eos_token_ids"], dtype=generated.dtype)
        outputs = []
        for row, (request, tokens) in enumerate(zip(model_outputs["requests"], generated, strict=True)):
            # Rows that finished early are padded after their end-of-sequence token: count up to and including it.
            ends = torch.isin(tokens, eos).nonzero()
            length = int(ends[0]) + 1 if len(ends) else len(tokens)
            answer = self.processor.tokenizer.decode(
                tokens[:length],
                skip_special_tokens=skip_special_tokens,
                clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            )
            record = {
                "input_text": request.input_text,
                "generated_text": request.full_text(answer, continue_final_message)
                if return_full_text
                else answer,
                "num_generated_tokens": length,
            }
            if return_traces:
                for name in _TRACE_NAMES:
                    record[name] = model_outputs[name][row, :length].tolist()
                record["optimizer_steps"] = int(model_outputs["optimizer_steps"][row])
            outputs.append([record])
        return outputs
