# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The V-Reason decoding loop, in the shape of `GenerationMixin._sample`, for `generate(custom_generate=...)`."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList
from transformers.generation.utils import GenerateDecoderOnlyOutput

from ..configuration_vreason import VReasonConfig
from .autograd import outside_inference_mode
from .engine import VReasonEngine, as_vreason_config

__all__ = ["VReasonGenerateOutput", "check_generation_config", "vreason_generate", "vreason_generate_kwargs"]


@dataclass
class VReasonGenerateOutput(GenerateDecoderOnlyOutput):
    r"""
    [`~transformers.generation.GenerateDecoderOnlyOutput`] plus V-Reason's per-token traces.

    Args:
        entropies (`torch.FloatTensor` of shape `(batch_size, generated_length)`):
            Entropy H_k (nats) of each generated position's distribution before that position's update, computed
            from the raw logits (before logits processors). NaN after a sample finished.
        ema_entropies (`torch.FloatTensor` of shape `(batch_size, generated_length)`):
            The EMA H_ema_k after each token. NaN after a sample finished.
        alphas (`torch.FloatTensor` of shape `(batch_size, generated_length)`):
            The switching coefficient α_k (+1 explore, −1 exploit). 0 after a sample finished.
        optimizer_steps (`torch.LongTensor` of shape `(batch_size,)`):
            Adam steps taken on each sample's controller.
        controller_state (`dict[str, torch.Tensor]`):
            The controller at the end of generation (θ, Adam moments, steps, rows, valid, scale): save it with
            `vreason_hf.controller.VReasonControllerModel`, or pass it back as `vreason_initial_state`.
    """

    entropies: torch.FloatTensor | None = None
    ema_entropies: torch.FloatTensor | None = None
    alphas: torch.FloatTensor | None = None
    optimizer_steps: torch.LongTensor | None = None
    controller_state: dict[str, torch.Tensor] | None = None


def check_generation_config(generation_config: GenerationConfig, synced_gpus: bool = False) -> None:
    """Raise a clear error for generation modes V-Reason does not implement."""
    if synced_gpus:
        raise ValueError(
            "V-Reason does not support `synced_gpus=True` (DeepSpeed ZeRO-3 / FSDP lock-step decoding)."
        )
    if (generation_config.num_beams or 1) > 1:
        raise ValueError(
            f"V-Reason decodes one hypothesis per sample; got `num_beams={generation_config.num_beams}`. Use greedy "
            f"(`do_sample=False`) or sampling (`do_sample=True`) with `num_beams=1`."
        )
    if (
        getattr(generation_config, "prompt_lookup_num_tokens", None) is not None
        or getattr(generation_config, "assistant_early_exit", None) is not None
    ):
        raise ValueError(
            "V-Reason does not support assisted decoding (`prompt_lookup_num_tokens`, `assistant_early_exit`, "
            "`assistant_model`): its controller changes the target model's distribution at every step."
        )
    if generation_config.use_cache is False:
        raise ValueError("V-Reason edits the KV cache and needs `use_cache=True`.")


class _StepOutputs:
    """The per-step tensors `generate` returns with `return_dict_in_generate` and an `output_*` flag, as `_sample`."""

    def __init__(self, generation_config: GenerationConfig) -> None:
        return_dict = generation_config.return_dict_in_generate
        self._kept: dict[str, list[Any] | None] = {
            name: [] if return_dict and getattr(generation_config, f"output_{name}") else None
            for name in ("scores", "logits", "attentions", "hidden_states")
        }

    def add(self, **values: Any) -> None:
        for name, value in values.items():
            if self._kept[name] is not None:
                self._kept[name].append(value)

    def scores(self) -> tuple[torch.Tensor, ...] | None:
        """The processed scores so far (what stopping criteria receive), `None` when they are not kept."""
        return tuple(self._kept["scores"] or ()) or None

    def as_dict(self) -> dict[str, tuple[Any, ...] | None]:
        return {name: None if values is None else tuple(values) for name, values in self._kept.items()}


@outside_inference_mode  # V-Reason needs autograd, also when generate runs under torch.inference_mode()
def vreason_generate(
    model: Any,
    input_ids: torch.LongTensor,
    logits_processor: LogitsProcessorList,
    stopping_criteria: StoppingCriteriaList,
    generation_config: GenerationConfig,
    synced_gpus: bool = False,
    streamer: Any = None,
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    vreason_streamer: Any = None,
    vreason_initial_state: dict[str, torch.Tensor] | None = None,
    **model_kwargs: Any,
) -> VReasonGenerateOutput | torch.LongTensor:
    r"""
    Decode with V-Reason. Pass it to generate, which prepares every input (vision encoding, 3D positions, cache)
    and then calls it as the decoding loop:

    ```python
    out = model.generate(**inputs, custom_generate=vreason_generate, vreason_config={"lr": 0.05},
                         max_new_tokens=256, do_sample=False)
    ```

    Args:
        model (`PreTrainedModel`):
            The model (its weights, grad flags and mode are left exactly as they were).
        input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus, streamer:
            As in `GenerationMixin._sample` (filled in by `generate`).
        vreason_config (`VReasonConfig` or `dict`, *optional*):
            The V-Reason knobs; a dict is validated as `VReasonConfig(**dict)`. Defaults to `VReasonConfig()`.
        vreason_streamer (`BaseStreamer`, *optional*):
            A streamer (e.g. `TextStreamer`) that receives the prompt, then every generated token, then `end()`.
            `generate` does not hand its own `streamer=` argument to a callable `custom_generate` (transformers
            5.24), so pass it under this name; the Hub recipe and [`VReasonLogitsProcessor`] accept `streamer=`.
            Optional live traces: if the streamer also has a method `put_traces(entropies, ema_entropies, alphas,
            optimizer_steps)`, it is called once per generated token, just before `put` of that token, with CPU
            tensors of shape `(batch,)`: the token's entries of the output's traces and the Adam steps so far.
        vreason_initial_state (`dict[str, torch.Tensor]`, *optional*):
            Start from this controller state instead of ΔV = 0 (see [`VReasonGenerateOutput.controller_state`]);
            it must come from the same input.
        model_kwargs:
            Prepared model inputs (`cache`, `attention_mask`, `position_ids`, multimodal outputs, ...).

    Returns:
        `torch.LongTensor` of shape `(batch, prompt + generated)`, or [`VReasonGenerateOutput`] with
        `return_dict_in_generate=True`.
    """
    check_generation_config(generation_config, synced_gpus)
    config = as_vreason_config(vreason_config)
    streamer = vreason_streamer if vreason_streamer is not None else streamer
    put_traces = getattr(streamer, "put_traces", None)  # optional: live per-token traces (see the docstring)

    pad_token_id = generation_config._pad_token_tensor
    kept = _StepOutputs(generation_config)
    has_eos_stopping_criteria = any(hasattr(criteria, "eos_token_id") for criteria in stopping_criteria)
    do_sample = generation_config.do_sample

    batch_size = input_ids.shape[0]
    unfinished = torch.ones(batch_size, dtype=torch.bool, device=input_ids.device)
    if pad_token_id is not None:
        pad_token_id = pad_token_id.to(input_ids.device)

    engine = VReasonEngine(
        model, config, input_ids, model_kwargs.get("attention_mask"), initial_state=vreason_initial_state
    )
    if streamer is not None:
        streamer.put(input_ids.cpu())
    try:
        outputs = model._prefill(input_ids, generation_config, model_kwargs)
        model_kwargs = model._update_model_kwargs_for_generation(outputs, model_kwargs)
        logits = outputs.logits[:, -1].float()  # (batch, vocab): raw next-token logits of the prompt
        logits = engine.attach(model_kwargs.get("cache"), logits, model_kwargs)
        while True:
            kept.add(attentions=outputs.attentions, hidden_states=outputs.hidden_states)
            del outputs
            decode_logits = engine.step(logits, unfinished)
            del logits
            next_token_scores = logits_processor(input_ids, decode_logits)
            kept.add(scores=next_token_scores, logits=decode_logits)

            if do_sample:
                next_tokens = torch.multinomial(next_token_scores.softmax(-1), num_samples=1).squeeze(1)
            else:
                next_tokens = next_token_scores.argmax(-1)
            if has_eos_stopping_criteria:
                next_tokens = torch.where(unfinished, next_tokens, pad_token_id)
            input_ids = torch.cat([input_ids, next_tokens[:, None]], dim=-1)  # (batch, length + 1)
            if put_traces is not None:
                latest = (engine.traces[name][-1].cpu() for name in ("entropies", "ema_entropies", "alphas"))
                put_traces(*latest, engine.optimizer_steps.cpu())
            if streamer is not None:
                streamer.put(next_tokens.cpu())
            unfinished = unfinished & ~stopping_criteria(input_ids, kept.scores())
            if not bool(unfinished.any()):
                break

            model_inputs = model.prepare_inputs_for_generation(
                input_ids, next_sequence_length=1, **model_kwargs
            )
            with engine.grad_context():
                outputs = model(**model_inputs, return_dict=True)
                # Raw next-token logits under the current ΔV, (batch, vocab); inside the grad context they carry
                # the graph to the controller (the fused path: the first optimiser step needs only a backward).
                logits = outputs.logits[:, -1].float()
            model_kwargs = model._update_model_kwargs_for_generation(outputs, model_kwargs)
        engine.check_finite()
    finally:
        engine.close()
        if streamer is not None:
            streamer.end()

    if not generation_config.return_dict_in_generate:
        return input_ids
    return VReasonGenerateOutput(
        sequences=input_ids,
        cache=model_kwargs.get("cache"),
        **kept.as_dict(),
        **engine.stacked_traces(),
        optimizer_steps=engine.optimizer_steps,
        controller_state=engine.controller_state(),
    )


def _generate_runs_vreason(model: Any) -> bool:
    """Whether `model.generate` takes `vreason_config`: a V-Reason model repo's `custom_generate/generate.py`, which
    `from_pretrained(..., trust_remote_code=True)` made the model's `generate`."""
    try:
        return "vreason_config" in inspect.signature(model.generate).parameters
    except (TypeError, ValueError):
        return False


def vreason_generate_kwargs(
    vreason_config: VReasonConfig | dict[str, Any] | None, *, model: Any = None, streamer: Any = None
) -> dict[str, Any]:
    r"""
    The `generate` keyword arguments that decode with `vreason_config` (`None`: plain decoding), on every route.

    ```python
    out = model.generate(**inputs, **vreason_generate_kwargs({"lr": 0.1}, model=model), max_new_tokens=64)
    ```

    - The callable route: `custom_generate=vreason_generate` and `vreason_config`, with `streamer` passed as
      `vreason_streamer` (`generate` does not hand `streamer=` to a callable `custom_generate`).
    - A V-Reason model repo (`model.generate` is the repo's `custom_generate/generate.py`, which runs V-Reason with
      the repo's knobs unless told otherwise): `vreason_config` as a dict of every knob (the repo's code checks
      them against its own config class), or `None` for plain decoding; `streamer` as is.
    - Plain decoding otherwise: only `streamer`.

    Args:
        vreason_config (`VReasonConfig` or `dict`, *optional*):
            The knobs of this call (a dict is `VReasonConfig(**dict)`, on every route), or `None` for plain decoding.
        model (`PreTrainedModel`, *optional*):
            The model whose `generate` is called, to recognise a V-Reason model repo. Leave it out where
            `GenerationMixin.generate` is called directly (the callable route).
        streamer (`BaseStreamer`, *optional*):
            Receives the prompt, every token and `end()`; one with `put_traces` also gets V-Reason's live traces
            (see [`vreason_generate`]).

    Returns:
        `dict[str, Any]`: keyword arguments for `generate`, to combine with the others.
    """
    config = None if vreason_config is None else as_vreason_config(vreason_config)
    if model is not None and _generate_runs_vreason(model):
        kwargs = {"vreason_config": None if config is None else config.knobs()}
    elif config is not None:
        kwargs = {"custom_generate": vreason_generate, "vreason_config": config}
        if streamer is not None:
            kwargs["vreason_streamer"] = streamer
        return kwargs
    else:
        kwargs = {}
    if streamer is not None:
        kwargs["streamer"] = streamer
    return kwargs
