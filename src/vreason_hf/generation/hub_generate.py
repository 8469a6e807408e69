# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The `custom_generate/generate.py` of the V-Reason Hub recipe: a thin shim over [`vreason_generate`].

`model.generate(**inputs, custom_generate="<repo>", trust_remote_code=True, vreason_config={...})` calls
[`generate`] with generate's own arguments; it hands them back to `GenerationMixin.generate` with the V-Reason loop
as the callable, so the string path and the callable path run the same code.
"""

from __future__ import annotations

from typing import Any

from transformers import GenerationMixin

from .loop import vreason_generate

__all__ = ["generate"]

# generate()'s own arguments that the string path forwards even when unset.
_UNSET_DEFAULTS = (
    "logits_processor",
    "stopping_criteria",
    "prefix_allowed_tokens_fn",
    "synced_gpus",
    "negative_prompt_ids",
    "negative_prompt_attention_mask",
)


def generate(model: Any, *args: Any, vreason_config: Any = None, streamer: Any = None, **kwargs: Any) -> Any:
    r"""
    Generate with V-Reason.

    Args:
        model (`PreTrainedModel`): the model (passed by transformers).
        vreason_config (`dict` or `VReasonConfig`, *optional*): the knobs; defaults to the V-Reason defaults.
        streamer (`BaseStreamer`, *optional*): receives the prompt, every token and `end()`.
        *args, **kwargs: `generate`'s arguments (inputs, `max_new_tokens`, `do_sample`, ...).
    """
    if kwargs.get("assistant_model") is not None:
        raise ValueError("V-Reason does not support assisted decoding (`assistant_model`).")
    kwargs.pop("assistant_model", None)
    for key in _UNSET_DEFAULTS:
        if key in kwargs and kwargs[key] is None:
            kwargs.pop(key)
    return GenerationMixin.generate(
        model,
        *args,
        custom_generate=vreason_generate,
        vreason_config=vreason_config,
        vreason_streamer=streamer,
        **kwargs,
    )
