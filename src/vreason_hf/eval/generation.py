# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""One generation, measured: plain or V-Reason decoding of a batch of inputs, with its text, traces, time and memory.

Used by the evaluation loop, `vreason run` / `demo`, the lmms-eval model and the benchmarks. The inputs come from
[`~vreason_hf.inputs.build_batch_inputs`] (one left-padded batch); [`generate_batch`] decodes them in one `generate`
call, with plain decoding or V-Reason (one controller state per row, which the core keeps), and returns one
[`GenerationResult`] per row. A row's tokens equal those of the same prompt decoded alone (the core's
batched-equals-unbatched invariant). [`generate_answer`] is the batch-of-one case.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..configuration_vreason import VReasonConfig
from ..generation import as_vreason_config, vreason_generate_kwargs
from ..generation.logits_process import RawLogitsRecorder
from ..generation.objective import schedule_traces
from .memory import PeakMemory

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_GENERATE_KWARGS",
    "MODES",
    "GenerationResult",
    "generate_answer",
    "generate_batch",
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


def _schedule_traces(entropies: list[float], config: VReasonConfig) -> tuple[list[float], list[float]]:
    """EMA and α the config's schedule would give on a fixed entropy sequence (used for plain decoding)."""
    emas, _, alphas = schedule_traces(
        torch.tensor(entropies, dtype=torch.float32),
        beta=config.ema_beta,
        ema_init=config.ema_init,
        schedule=config.alpha_schedule,
    )
    return emas.tolist(), alphas.tolist()


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
            Model inputs, e.g. from [`~vreason_hf.inputs.build_batch_inputs`]; moved to ``model.device``. A batch of several rows must
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
    _check_left_padded(inputs)
    # A V-Reason model repo's own `generate` is told to decode plainly in mode "base".
    kwargs.update(vreason_generate_kwargs(None if mode == "base" else config, model=model))
    out, steps, seconds, memory = _measured_generate(model, inputs, kwargs, record_entropies=mode == "base")
    new_tokens = out.sequences[:, prompt_len:].cpu()  # (batch, generated)
    lengths = _generated_lengths(new_tokens, _eos_ids(model, kwargs))
    tokenizer = getattr(processor, "tokenizer", None) or processor
    results = []
    for row, length in enumerate(lengths):
        ids = new_tokens[row, :length]
        entropies, emas, alphas, optimizer_steps = _row_traces(out, steps, row, length, mode, config)
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


def _check_left_padded(inputs: Mapping[str, Any]) -> None:
    """Refuse a batch of several rows whose attention mask shows right padding."""
    mask = inputs.get("attention_mask")
    if inputs["input_ids"].shape[0] > 1 and mask is not None and not bool(mask[:, -1].all()):
        raise ValueError(
            "The batch is right-padded; decoder-only generation needs left padding. Build it with "
            '`vreason_hf.inputs.build_batch_inputs` (or pass `padding_side="left"` to the processor).'
        )


def _measured_generate(
    model: Any, inputs: Mapping[str, Any], kwargs: dict[str, Any], *, record_entropies: bool
) -> tuple[Any, torch.Tensor | None, float, PeakMemory]:
    """Run `generate` once, timed (CUDA synchronised) and under [`PeakMemory`].

    With ``record_entropies`` (plain decoding) the raw next-token entropies are recorded from the output head, if
    the model has one. Returns the `generate` output, those entropies (``(batch, forwards)`` on CPU, or `None`),
    the seconds and the memory measurement.
    """
    recorder = None
    if record_entropies:
        head = model.get_output_embeddings()
        if head is not None:
            recorder = RawLogitsRecorder(head, entropies=True)
    try:
        with PeakMemory(model) as memory:
            start = time.perf_counter()
            out = model.generate(**inputs, **kwargs)
            if memory.cuda_devices:
                torch.cuda.synchronize(memory.cuda_devices[0])
            seconds = time.perf_counter() - start
        steps = None if recorder is None else recorder.entropies()  # (batch, forwards)
    finally:
        if recorder is not None:
            recorder.remove()
    return out, None if steps is None else steps.cpu(), seconds, memory


def _row_traces(
    out: Any, steps: torch.Tensor | None, row: int, length: int, mode: str, config: VReasonConfig
) -> tuple[list[float], list[float], list[float], int]:
    """One row's entropies, EMAs, α and optimizer steps, over its ``length`` generated tokens.

    V-Reason's `generate` output carries them. In mode ``"base"`` the entropies are the recorded ``steps`` (none
    if the model has no output head), the EMA and α those the config's schedule would give on them, and no step
    is taken.
    """
    if mode == "base":
        entropies = [] if steps is None else steps[row, :length].tolist()
        emas, alphas = _schedule_traces(entropies, config)
        return entropies, emas, alphas, 0
    return (
        out.entropies[row, :length].tolist(),
        out.ema_entropies[row, :length].tolist(),
        out.alphas[row, :length].tolist(),
        int(out.optimizer_steps[row]),
    )


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
        model, processor, mode, vreason_config, generate_kwargs:
            As in [`generate_batch`].
        inputs (`BatchFeature` or `dict`):
            Model inputs for one sample (e.g. from [`~vreason_hf.inputs.build_inputs`]); moved to ``model.device``.

    Returns:
        [`GenerationResult`]: the text, token count, time, peak memory and per-token traces.

    Raises:
        ValueError: As [`generate_batch`], or if ``inputs`` hold more than one row (use [`generate_batch`]).
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
