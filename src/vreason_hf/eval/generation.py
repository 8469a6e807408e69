# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""One generation, measured: model inputs (batched, left-padded), plain or V-Reason decoding, traces, time, memory.

[`build_batch_inputs`] turns prompts (text plus an optional video or image each) into one left-padded batch;
[`generate_batch`] decodes it in one `generate` call, with plain decoding or V-Reason (one controller state per
row, which the core keeps), and returns one [`GenerationResult`] per row. A row's tokens equal those of the same
prompt decoded alone (the core's batched-equals-unbatched invariant). [`generate_answer`] is the batch-of-one case.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..configuration_vreason import VReasonConfig
from ..generation import as_vreason_config, vreason_generate
from ..generation.logits_process import RawLogitsRecorder
from ..generation.objective import schedule_traces

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_GENERATE_KWARGS",
    "MODES",
    "GenerationResult",
    "Prompt",
    "build_batch_inputs",
    "build_inputs",
    "frame_request",
    "frame_sampling",
    "generate_answer",
    "generate_batch",
    "is_multimodal",
    "warm_up",
]

MODES: tuple[str, ...] = ("base", "vreason", "lite")
"""Evaluation modes: plain decoding, V-Reason, and V-Reason Lite (V-Reason with ``lite=True``)."""

DEFAULT_GENERATE_KWARGS: dict[str, Any] = {"max_new_tokens": 1024, "do_sample": False}
"""The paper's decoding: greedy, at most 1024 new tokens (``SPEC.md`` section 6)."""


@dataclass
class GenerationResult:
    """What one generation produced and cost.

    Attributes:
        text (`str`):
            The generated text (special tokens removed).
        output_tokens (`int`):
            Number of generated tokens (the end-of-sequence token included; padding after it excluded).
        seconds (`float`):
            Wall-clock time of `generate` (inputs already prepared; CUDA synchronised) divided by the number of
            rows it decoded: a batch's time is shared equally between its answers.
        peak_memory_mb (`float | None`):
            Peak memory in MiB of the whole `generate` call (the batch, not this row alone), see ``memory_source``.
        memory_source (`str`):
            ``"cuda_max_allocated"``: the sum over the model's GPUs of `torch.cuda.max_memory_allocated` during the
            generation (weights included, comparable to the paper's peak memory). ``"rss_peak"`` (CPU, Linux):
            the process's peak resident set size during the generation (the peak is reset through
            ``/proc/self/clear_refs`` just before; weights, libraries and everything else the process holds
            included). ``"maxrss"`` (CPU elsewhere): the process's lifetime peak RSS (`resource.getrusage`) at the
            end of the generation, which includes any earlier, higher peak. ``"none"``: not measured. CPU and GPU
            numbers are not comparable.
        entropies (`list[float]`):
            Per generated token, the entropy (nats) of the raw next-token distribution.
        ema_entropies (`list[float]`):
            Its EMA with the config's ``ema_beta`` / ``ema_init``.
        alphas (`list[float]`):
            The switching coefficient α (+1 explore, −1 exploit). For plain decoding these are the values the
            config's ``alpha_schedule`` *would* take on the base model's entropies (nothing is optimised).
        optimizer_steps (`int`):
            Adam steps taken (0 for plain decoding).
        token_ids (`list[int]`):
            The generated token ids (``output_tokens`` of them).
        batch_size (`int`):
            Number of rows decoded together in the `generate` call that produced this answer.
    """

    text: str
    output_tokens: int
    seconds: float
    peak_memory_mb: float | None
    memory_source: str
    entropies: list[float] = field(default_factory=list)
    ema_entropies: list[float] = field(default_factory=list)
    alphas: list[float] = field(default_factory=list)
    optimizer_steps: int = 0
    token_ids: list[int] = field(default_factory=list)
    batch_size: int = 1


@dataclass
class Prompt:
    """One user turn: a text and at most one video (pre-sampled frames) or image.

    Attributes:
        text (`str`):
            The user's text, placed after the video / image.
        video (`np.ndarray`, *optional*):
            Frames of shape ``(T, H, W, 3)``, e.g. from [`~vreason_hf.video.load_video`]; passed with
            ``do_sample_frames=False``.
        video_metadata (`VideoMetadata`, *optional*):
            Their metadata (needed for correct temporal positions).
        image (`PIL.Image.Image`, *optional*):
            An image.
    """

    text: str
    video: Any | None = None
    video_metadata: Any | None = None
    image: Any | None = None


def _read_proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


class _PeakMemory:
    """Measure peak memory around one generation (see `GenerationResult.memory_source`)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.cuda_devices = sorted(
            {p.device for p in model.parameters() if p.device.type == "cuda"}, key=lambda d: d.index or 0
        )
        self.mb: float | None = None
        self.source = "none"

    def __enter__(self) -> _PeakMemory:
        if self.cuda_devices:
            for device in self.cuda_devices:
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
            return self
        self._hwm_reset = False
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
                clear.write("5")  # Linux >= 4.0: reset the peak RSS (VmHWM) to the current RSS
            self._hwm_reset = True
        except OSError:
            pass
        return self

    @staticmethod
    def _maxrss_kb() -> int | None:
        try:
            import resource
        except ImportError:  # Windows
            return None
        scale = 1 if sys.platform != "darwin" else 1 / 1024  # macOS reports bytes
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)

    def __exit__(self, *exc: object) -> None:
        if self.cuda_devices:
            total = 0
            for device in self.cuda_devices:
                torch.cuda.synchronize(device)
                total += torch.cuda.max_memory_allocated(device)
            self.mb, self.source = total / 2**20, "cuda_max_allocated"
            return
        peak = _read_proc_status("VmHWM") if self._hwm_reset else None
        if peak is not None:
            self.mb, self.source = peak / 1024, "rss_peak"
            return
        after = self._maxrss_kb()
        if after is not None:
            self.mb, self.source = after / 1024, "maxrss"


def _schedule_traces(entropies: list[float], config: VReasonConfig) -> tuple[list[float], list[float]]:
    """EMA and α the config's schedule would give on a fixed entropy sequence (used for plain decoding)."""
    emas, _, alphas = schedule_traces(
        torch.tensor(entropies, dtype=torch.float32),
        beta=config.ema_beta,
        ema_init=config.ema_init,
        schedule=config.alpha_schedule,
    )
    return emas.tolist(), alphas.tolist()


def _tokenizer(processor: Any) -> Any:
    return getattr(processor, "tokenizer", None) or processor


def is_multimodal(processor: Any) -> bool:
    """Whether ``processor`` handles images or videos (a multimodal processor, not a bare tokenizer)."""
    return (
        getattr(processor, "video_processor", None) is not None
        or getattr(processor, "image_processor", None) is not None
    )


def build_inputs(
    processor: Any,
    text: str,
    *,
    video: Any | None = None,
    video_metadata: Any | None = None,
    image: Any | None = None,
) -> Any:
    """Build model inputs for one user turn through the chat template.

    Shorthand for ``build_batch_inputs(processor, [Prompt(text, video, video_metadata, image)])``.

    Args:
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`):
            A multimodal processor, or a tokenizer for a text-only model (then ``video`` and ``image`` must be
            `None`).
        text (`str`):
            The user's text, placed after the video / image.
        video (`np.ndarray`, *optional*):
            Pre-sampled frames, e.g. from [`~vreason_hf.video.load_video`]; passed with ``do_sample_frames=False``.
        video_metadata (`VideoMetadata`, *optional*):
            Their metadata (needed for correct temporal positions).
        image (`PIL.Image.Image`, *optional*):
            An image.

    Returns:
        `BatchFeature`: ``input_ids``, ``attention_mask`` and the vision inputs, batch size 1.

    Raises:
        ValueError: If a video or image is given to a text-only tokenizer, or the processor has no video
            (image) processor for a video (image).
    """
    return build_batch_inputs(processor, [Prompt(text, video, video_metadata, image)])


def build_batch_inputs(processor: Any, prompts: Sequence[Prompt]) -> Any:
    """Build one left-padded batch of model inputs, one chat-template user turn per prompt.

    Args:
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`):
            A multimodal processor, or a tokenizer for a text-only model (then no prompt may carry a video or an
            image).
        prompts (`Sequence[Prompt]`):
            The prompts; each holds its text and at most one video (with its metadata) or image.

    Returns:
        `BatchFeature`: ``input_ids`` and ``attention_mask`` of shape ``(len(prompts), longest prompt)``, padded on
        the left (what decoder-only generation needs), and the vision inputs. A single prompt is not padded.

    Raises:
        ValueError: If ``prompts`` is empty, a video or image is given to a text-only tokenizer, the processor has
            no video (image) processor for a video (image), or a batch of several prompts needs padding and the
            tokenizer has no padding token.
    """
    prompts = list(prompts)
    if not prompts or not all(isinstance(p, Prompt) for p in prompts):
        raise ValueError(f"`prompts` must be a non-empty sequence of `Prompt`, got {prompts!r}.")
    padding: dict[str, Any] = {}
    if len(prompts) > 1:
        if _tokenizer(processor).pad_token is None:
            raise ValueError(
                f"Batching several prompts pads them, but `{type(_tokenizer(processor)).__name__}` has no padding "
                "token. Set one (e.g. `tokenizer.pad_token = tokenizer.eos_token`) or use a batch size of 1."
            )
        padding = {"padding": True, "padding_side": "left"}
    if not is_multimodal(processor):
        if any(p.video is not None or p.image is not None for p in prompts):
            raise ValueError(
                f"`{type(processor).__name__}` is a text-only tokenizer: it cannot take a video or an image. "
                "Use a vision-language model, or leave the video out."
            )
        if getattr(processor, "chat_template", None):
            conversations = [[{"role": "user", "content": p.text}] for p in prompts]
            return processor.apply_chat_template(
                conversations if len(prompts) > 1 else conversations[0],
                add_generation_prompt=True,
                return_dict=True,
                return_tensors="pt",
                **({"padding": True, "tokenizer_kwargs": {"padding_side": "left"}} if padding else {}),
            )
        return processor([p.text for p in prompts], return_tensors="pt", **padding)
    texts, videos, metadata, images = [], [], [], []
    for prompt in prompts:
        content: list[dict[str, Any]] = []
        if prompt.video is not None:
            if getattr(processor, "video_processor", None) is None:
                raise ValueError(
                    f"`{type(processor).__name__}` has no video processor: this model cannot take videos."
                )
            content.append({"type": "video"})
            videos.append(prompt.video)
            metadata.append(prompt.video_metadata)
        if prompt.image is not None:
            if getattr(processor, "image_processor", None) is None:
                raise ValueError(
                    f"`{type(processor).__name__}` has no image processor: this model cannot take images."
                )
            content.append({"type": "image"})
            images.append(prompt.image)
        content.append({"type": "text", "text": prompt.text})
        texts.append(
            processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
        )
    kwargs: dict[str, Any] = dict(padding)
    if videos:
        kwargs.update(videos=videos, do_sample_frames=False)
        if any(m is not None for m in metadata):
            if any(m is None for m in metadata):
                raise ValueError("Give `video_metadata` for every video of a batch, or for none.")
            kwargs["video_metadata"] = metadata
    if images:
        kwargs["images"] = images
    return processor(text=texts, return_tensors="pt", **kwargs)


def _to_model(inputs: Any, model: Any) -> Any:
    """Move inputs to the model's device, and floating-point ones (pixel values) to its dtype."""
    from transformers import BatchFeature

    if isinstance(inputs, BatchFeature):
        return inputs.to(model.device, dtype=model.dtype)
    if hasattr(inputs, "to"):
        return inputs.to(model.device)
    return {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def _finite(values: Iterable[float]) -> list[float | None]:
    return [round(v, 5) if math.isfinite(v) else None for v in values]


def _eos_ids(model: Any, kwargs: Mapping[str, Any]) -> set[int]:
    eos = kwargs.get("eos_token_id", getattr(getattr(model, "generation_config", None), "eos_token_id", None))
    if eos is None:
        return set()
    if isinstance(eos, torch.Tensor):
        return {int(t) for t in eos.flatten().tolist()}
    return {int(eos)} if isinstance(eos, int) else {int(t) for t in eos}


def _generated_lengths(new_tokens: torch.Tensor, eos: set[int]) -> list[int]:
    """Per row, the tokens up to and including the first end-of-sequence token (what follows is padding)."""
    lengths = []
    for row in new_tokens.tolist():
        end = next((i + 1 for i, token in enumerate(row) if token in eos), len(row))
        lengths.append(end)
    return lengths


def generate_batch(
    model: Any,
    processor: Any,
    inputs: Mapping[str, Any],
    *,
    mode: str = "vreason",
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    generate_kwargs: dict[str, Any] | None = None,
) -> list[GenerationResult]:
    """Decode a (left-padded) batch in one `generate` call, with plain decoding or V-Reason, and measure it.

    Every row gets its own V-Reason state (controller, EMA, peak, α), so each row's tokens are those of its prompt
    decoded alone; rows that finish early stop being optimised and are padded.

    Args:
        model (`PreTrainedModel`):
            The model.
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`):
            Used to decode the output.
        inputs (`BatchFeature` or `dict`):
            Model inputs, e.g. from [`build_batch_inputs`]; moved to ``model.device``. A batch of several rows must
            be left-padded.
        mode (`str`, *optional*, defaults to `"vreason"`):
            ``"base"`` (plain `generate`), ``"vreason"`` (`custom_generate=vreason_generate` with
            ``vreason_config``) or ``"lite"`` (the same with ``lite=True``).
        vreason_config (`VReasonConfig` or `dict`, *optional*):
            The knobs (defaults to `VReasonConfig()`). For ``"base"`` only ``ema_beta``, ``ema_init`` and
            ``alpha_schedule`` are used, to compute the traces.
        generate_kwargs (`dict`, *optional*):
            Extra `generate` arguments, over [`DEFAULT_GENERATE_KWARGS`] (greedy, 1024 new tokens).

    Returns:
        `list[GenerationResult]`: one per row, in order: the text, token ids and count, time (the batch's, shared
        equally), peak memory (the batch's) and per-token traces.

    Raises:
        ValueError: If ``mode`` is unknown, ``mode="vreason"`` with ``lite=True`` in the config (use ``"lite"``), or
            a batch of several rows is right-padded.
    """
    config = _mode_config(mode, as_vreason_config(vreason_config))
    kwargs = {**DEFAULT_GENERATE_KWARGS, **(generate_kwargs or {}), "return_dict_in_generate": True}
    inputs = _to_model(inputs, model)
    batch, prompt_len = inputs["input_ids"].shape
    mask = inputs.get("attention_mask")
    if batch > 1 and mask is not None and not bool(mask[:, -1].all()):
        raise ValueError(
            "The batch is right-padded; decoder-only generation needs left padding. Build it with "
            '`build_batch_inputs` (or pass `padding_side="left"` to the processor).'
        )
    recorder = None
    if mode == "base":
        head = model.get_output_embeddings()
        if head is not None:
            recorder = RawLogitsRecorder(head, entropies=True)
    else:
        kwargs.update(custom_generate=vreason_generate, vreason_config=config)
    try:
        with _PeakMemory(model) as memory:
            start = time.perf_counter()
            out = model.generate(**inputs, **kwargs)
            if memory.cuda_devices:
                torch.cuda.synchronize(memory.cuda_devices[0])
            seconds = time.perf_counter() - start
        steps = None if recorder is None else recorder.entropies()  # (batch, forwards)
    finally:
        if recorder is not None:
            recorder.remove()
    new_tokens = out.sequences[:, prompt_len:].cpu()  # (batch, generated)
    lengths = _generated_lengths(new_tokens, _eos_ids(model, kwargs))
    tokenizer = _tokenizer(processor)
    steps = None if steps is None else steps.cpu()
    results = []
    for row, length in enumerate(lengths):
        ids = new_tokens[row, :length]
        if mode == "base":
            entropies = [] if steps is None else steps[row, :length].tolist()
            emas, alphas = _schedule_traces(entropies, config)
            optimizer_steps = 0
        else:
            entropies = out.entropies[row, :length].tolist()
            emas = out.ema_entropies[row, :length].tolist()
            alphas = out.alphas[row, :length].tolist()
            optimizer_steps = int(out.optimizer_steps[row])
        results.append(
            GenerationResult(
                text=tokenizer.decode(ids, skip_special_tokens=True).strip(),
                output_tokens=int(length),
                seconds=seconds / batch,
                peak_memory_mb=memory.mb,
                memory_source=memory.source,
                entropies=_finite(entropies),
                ema_entropies=_finite(emas),
                alphas=[float(a) for a in alphas],
                optimizer_steps=optimizer_steps,
                token_ids=ids.tolist(),
                batch_size=int(batch),
            )
        )
    return results


def generate_answer(
    model: Any,
    processor: Any,
    inputs: Mapping[str, Any],
    *,
    mode: str = "vreason",
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    generate_kwargs: dict[str, Any] | None = None,
) -> GenerationResult:
    """Generate one answer with plain decoding or V-Reason and measure it ([`generate_batch`] on one row).

    Args:
        model (`PreTrainedModel`):
            The model.
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`):
            Used to decode the output.
        inputs (`BatchFeature` or `dict`):
            Model inputs for one sample (e.g. from [`build_inputs`]); moved to ``model.device``.
        mode (`str`, *optional*, defaults to `"vreason"`):
            ``"base"`` (plain `generate`), ``"vreason"`` (`custom_generate=vreason_generate` with
            ``vreason_config``) or ``"lite"`` (the same with ``lite=True``).
        vreason_config (`VReasonConfig` or `dict`, *optional*):
            The knobs (defaults to `VReasonConfig()`). For ``"base"`` only ``ema_beta``, ``ema_init`` and
            ``alpha_schedule`` are used, to compute the traces.
        generate_kwargs (`dict`, *optional*):
            Extra `generate` arguments, over [`DEFAULT_GENERATE_KWARGS`] (greedy, 1024 new tokens).

    Returns:
        [`GenerationResult`]: the text, token count, time, peak memory and per-token traces.

    Raises:
        ValueError: If ``mode`` is unknown, ``mode="vreason"`` with ``lite=True`` in the config (use ``"lite"``), or
            ``inputs`` hold more than one row (use [`generate_batch`]).
    """
    rows = inputs["input_ids"].shape[0]
    if rows != 1:
        raise ValueError(f"`generate_answer` takes one sample, got a batch of {rows}: use `generate_batch`.")
    return generate_batch(
        model, processor, inputs, mode=mode, vreason_config=vreason_config, generate_kwargs=generate_kwargs
    )[0]


def warm_up(
    model: Any,
    processor: Any,
    inputs: Mapping[str, Any],
    *,
    modes: Sequence[str] = ("vreason",),
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    generate_kwargs: dict[str, Any] | None = None,
) -> None:
    """Generate two tokens in each mode, untimed, so one-time costs do not land on the first timed answer.

    The first `generate` of a process pays for lazy initialisation (kernel selection, allocator growth, the first
    backward pass of V-Reason); without a warm-up it makes whichever mode runs first look slower.

    Args:
        model, processor, inputs, vreason_config, generate_kwargs:
            As in [`generate_batch`] (``max_new_tokens`` is replaced by 2); ``inputs`` may be a batch.
        modes (`Sequence[str]`, *optional*, defaults to `("vreason",)`):
            The modes to warm up.
    """
    kwargs = {**(generate_kwargs or {}), "max_new_tokens": 2}
    kwargs.pop("min_new_tokens", None)
    for mode in modes:
        generate_batch(
            model, processor, inputs, mode=mode, vreason_config=vreason_config, generate_kwargs=kwargs
        )


def _mode_config(mode: str, config: VReasonConfig) -> VReasonConfig:
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; the modes are: {', '.join(MODES)}.")
    if mode == "lite" and not config.lite:
        return VReasonConfig(**{**config.knobs(), "lite": True})
    if mode == "vreason" and config.lite:
        raise ValueError(
            "Mode 'vreason' was asked for with `lite=True` in the V-Reason config: use mode 'lite' for V-Reason Lite."
        )
    return config


def frame_sampling(
    num_frames: int | None = None, fps: float | None = None, max_frames: int | None = None
) -> tuple[int | None, float | None, int | None]:
    """Resolve the frame-sampling arguments: with neither ``num_frames`` nor ``fps``, Video-R1's 2 fps, at most 16 frames.

    Args:
        num_frames (`int`, *optional*):
            Frames sampled uniformly (exclusive with ``fps``).
        fps (`float`, *optional*):
            Sampling rate.
        max_frames (`int`, *optional*):
            Frame cap; defaults to 16 only with the default 2 fps sampling.

    Returns:
        `tuple[int | None, float | None, int | None]`: ``(num_frames, fps, max_frames)`` for
        [`~vreason_hf.video.load_video`].

    Raises:
        ValueError: If both ``num_frames`` and ``fps`` are given.
    """
    if num_frames is not None and fps is not None:
        raise ValueError("`num_frames` and `fps` are mutually exclusive: pass only one of them.")
    if num_frames is None and fps is None:
        return None, 2.0, 16 if max_frames is None else max_frames
    return num_frames, fps, max_frames


def frame_request(
    num_frames: int | None, fps: float | None, max_frames: int | None
) -> dict[str, int | float | None]:
    """The [`~vreason_hf.video.load_video`] arguments for resolved frame settings (see [`frame_sampling`]).

    Uniform sampling of ``num_frames`` is the same as taking every frame and capping at ``num_frames`` (the same
    rounded linspace), except that a clip shorter than ``num_frames`` gives all its frames instead of an error, so
    one short clip cannot stop a long evaluation: ``num_frames`` is passed as that cap.

    Returns:
        `dict`: ``num_frames``, ``fps`` and ``max_frames`` for `load_video`.
    """
    if num_frames is not None:
        cap = num_frames if max_frames is None else min(num_frames, max_frames)
        return {"num_frames": None, "fps": None, "max_frames": cap}
    return {"num_frames": None, "fps": fps, "max_frames": max_frames}
