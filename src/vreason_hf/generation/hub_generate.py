# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The `custom_generate/generate.py` of V-Reason's Hub repos: a thin shim over [`vreason_generate`].

Two routes run it, with the same arguments and the same meaning of `vreason_config`:

- a recipe repo: `model.generate(**inputs, custom_generate="<repo>", trust_remote_code=True, vreason_config=...)`;
- a V-Reason model repo (a stock model repo plus `custom_generate/`): `from_pretrained(repo, trust_remote_code=True)`
  makes this function the model's `generate`, and the knobs stored in the repo's `generation_config.json` (entry
  `vreason`) are its defaults.

It hands generate's own arguments back to `GenerationMixin.generate` with the V-Reason loop as the callable, so the
string path, the model-repo path and the callable path run the same code.
"""

from __future__ import annotations

from typing import Any

from transformers import GenerationMixin

from ..configuration_vreason import VReasonConfig
from .engine import as_vreason_config
from .loop import vreason_generate_kwargs

__all__ = ["GENERATION_CONFIG_KEY", "generate", "resolve_vreason_config", "stored_knobs"]

GENERATION_CONFIG_KEY = "vreason"
"""The `generation_config.json` entry (a dict of knobs) that holds a model repo's V-Reason defaults."""

# `vreason_config` not passed: the model's stored knobs, or the defaults. Distinct from `None` (plain decoding).
_OMITTED: Any = object()

# generate()'s own arguments that the string path forwards even when unset.
_UNSET_DEFAULTS = (
    "logits_processor",
    "stopping_criteria",
    "prefix_allowed_tokens_fn",
    "synced_gpus",
    "negative_prompt_ids",
    "negative_prompt_attention_mask",
    "custom_generate",
)


def stored_knobs(generation_config: Any) -> dict[str, Any]:
    r"""
    The V-Reason knobs stored in a generation config (its `vreason` entry), validated; `{}` when there are none.

    Raises:
        `TypeError` or `ValueError`: the entry is not a dict of valid knobs (the message names the entry).
    """
    knobs = getattr(generation_config, GENERATION_CONFIG_KEY, None)
    if knobs is None:
        return {}
    where = f"The model's generation config (`generation_config.json`, entry `{GENERATION_CONFIG_KEY}`)"
    if not isinstance(knobs, dict):
        raise TypeError(f"{where} must be a dict of V-Reason knobs, got {type(knobs).__name__}.")
    try:
        VReasonConfig(**knobs)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{where}: {error}") from None
    return dict(knobs)


def resolve_vreason_config(
    vreason_config: Any, model: Any, generation_config: Any = None
) -> VReasonConfig | None:
    r"""
    The knobs of one call, with the meaning every V-Reason Hub route shares.

    Args:
        vreason_config (`dict`, `VReasonConfig` or `None`):
            A dict overrides some knobs on top of the stored ones (`{}`: the stored knobs, or the [`VReasonConfig`]
            defaults when none are stored); a `VReasonConfig` replaces them; `None` means plain decoding.
        model (`PreTrainedModel`):
            The model, whose generation config's `vreason` entry holds the stored knobs.
        generation_config (`GenerationConfig`, *optional*):
            The call's generation config; its `vreason` entry, if any, is used instead of the model's.

    Returns:
        `VReasonConfig`, or `None` for plain decoding.
    """
    if vreason_config is None:
        return None
    if not isinstance(vreason_config, dict):
        return as_vreason_config(vreason_config)  # a config replaces the stored knobs; anything else raises
    if getattr(generation_config, GENERATION_CONFIG_KEY, None) is None:
        generation_config = getattr(model, "generation_config", None)
    return VReasonConfig(**{**stored_knobs(generation_config), **vreason_config})


def generate(
    *args: Any, model: Any, vreason_config: Any = _OMITTED, streamer: Any = None, **kwargs: Any
) -> Any:
    r"""
    Generate with V-Reason.

    Args:
        model (`PreTrainedModel`): the model (passed by transformers).
        vreason_config (`dict`, `VReasonConfig` or `None`, *optional*):
            Omitted: the knobs in the model's generation config (entry `vreason`, written by
            `vreason_hf.save_vreason_model`), else the V-Reason defaults. A dict overrides some of those knobs for
            this call; a `VReasonConfig` replaces them; `None` decodes plainly, exactly as the base model.
        streamer (`BaseStreamer`, *optional*): receives the prompt, every token and `end()`.
        *args, **kwargs: `generate`'s arguments (inputs, `max_new_tokens`, `do_sample`, `generation_config`, ...).
    """
    for key in _UNSET_DEFAULTS:
        if key in kwargs and kwargs[key] is None:
            kwargs.pop(key)
    config = resolve_vreason_config(
        {} if vreason_config is _OMITTED else vreason_config, model, kwargs.get("generation_config")
    )
    if config is not None:
        if kwargs.get("assistant_model") is not None:
            raise ValueError("V-Reason does not support assisted decoding (`assistant_model`).")
        if "custom_generate" in kwargs:
            raise ValueError(
                "`custom_generate` replaces the decoding loop, and this `generate` already runs V-Reason's: pass "
                "`vreason_config=None` to decode with another loop."
            )
        kwargs.pop("assistant_model", None)
    return GenerationMixin.generate(
        model, *args, **vreason_generate_kwargs(config, streamer=streamer), **kwargs
    )
