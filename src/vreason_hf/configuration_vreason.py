# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Configuration of V-Reason ("Video Reasoning without Training", arXiv 2510.17045).

This file is a leaf: it imports only `transformers`, so that it can be copied verbatim next to a
`config.json` on the Hub and loaded with `trust_remote_code=True` where `vreason_hf` is not installed.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from transformers import PreTrainedConfig

__all__ = ["VReasonConfig"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "alpha_schedule": ("switch", "minimize", "maximize"),
    "kl_direction": ("p_u", "u_p"),
    "ema_init": ("zero", "first"),
    "controller_scope": ("video", "visual", "prompt"),
    "prune_scope": ("per_layer", "shared"),
    "lr_scale": ("value_rms", "absolute"),
}

# Keys that `transformers` itself writes into a config.json or passes through `from_pretrained`; anything
# else that is not a field of `VReasonConfig` is a typo and raises.
_PASSTHROUGH_KEYS = frozenset(
    {
        "transformers_version",
        "model_type",
        "auto_map",
        "_name_or_path",
        "name_or_path",
        "_commit_hash",
        "_attn_implementation",
        "attn_implementation",
        "output_attentions",
    }
)


class VReasonConfig(PreTrainedConfig):
    r"""
    The knobs of V-Reason: a zero-initialised controller ΔV added (norm-preserving) to the value-cache rows of the
    video tokens in the last decoder layer, tuned while decoding by a few Adam steps on an entropy switching
    objective. Choices marked *ours* are where the paper is silent; their defaults are this project's.

    Args:
        update_every (`int`, *optional*, defaults to 2):
            Run the optimiser every `update_every` generated tokens (the paper's *k*; k=2 was its most accurate
            setting). Tokens 0, k, 2k, ... are update steps.
        num_steps (`int`, *optional*, defaults to 1):
            Adam steps per update. `0` disables V-Reason: decoding is then exactly the base model's.
        lr (`float`, *optional*, defaults to 0.05):
            Adam learning rate. With `lr_scale="value_rms"` (default) it is relative to the root-mean-square of
            the controlled value rows of each sample, so one value means the same on every model (*ours*).
        lr_scale (`str`, *optional*, defaults to `"value_rms"`):
            `"value_rms"`: ΔV = rms(V_rows) · θ and Adam updates θ, making `lr` scale-free (*ours*).
            `"absolute"`: Adam updates ΔV directly with step size `lr`.
        ema_beta (`float`, *optional*, defaults to 0.97):
            Smoothing of the entropy EMA, H_ema_k = β·H_ema_{k-1} + (1-β)·H_k (*ours*).
        ema_init (`str`, *optional*, defaults to `"zero"`):
            `"zero"` starts the EMA at 0 like the paper's curves; `"first"` at the first token's entropy (*ours*).
        alpha_schedule (`str`, *optional*, defaults to `"switch"`):
            `"switch"` is the paper's rule (α=+1 while the EMA is at its running peak, −1 below it);
            `"minimize"` fixes α=−1 and `"maximize"` fixes α=+1 (ablations).
        kl_direction (`str`, *optional*, defaults to `"p_u"`):
            `"p_u"`: L = α·KL(p‖U) = α·(log|V| − H(p)); `"u_p"`: L = α·KL(U‖p) (*ours*).
        adam_beta1 (`float`, *optional*, defaults to 0.9):
            Adam's first-moment decay.
        adam_beta2 (`float`, *optional*, defaults to 0.999):
            Adam's second-moment decay.
        adam_eps (`float`, *optional*, defaults to 1e-8):
            Adam's epsilon.
        controller_scope (`str`, *optional*, defaults to `"video"`):
            Which cached value rows the controller covers: `"video"` (the paper: video tokens), `"visual"` (video
            and image tokens) or `"prompt"` (every prompt token, so text-only models work too) (*ours*).
        target_layer (`int`, *optional*, defaults to -1):
            Index of the decoder layer whose value cache is controlled (negative counts from the end). The paper
            uses the last layer, and only the last layer is supported: only then does an optimiser step need no
            more than that layer and the LM head. Checked against the model when decoding starts.
        decode_after_update (`bool`, *optional*, defaults to `True`):
            After the optimiser steps, recompute the distribution with the new ΔV and pick the token from it.
            `False` picks the token from the pre-update distribution and saves one last-layer pass (*ours*).
        lite (`bool`, *optional*, defaults to `False`):
            V-Reason Lite: after prefill, drop the `prune_ratio` share of video tokens with the lowest value
            norm from every layer's KV cache.
        prune_ratio (`float`, *optional*, defaults to 0.5):
            Share of the video tokens Lite removes, in [0, 1).
        prune_scope (`str`, *optional*, defaults to `"per_layer"`):
            `"per_layer"`: every layer ranks the video tokens by its own value norms; `"shared"`: the target
            layer's ranking is used for every layer (*ours*).
    """

    model_type = "vreason"
    # `save_pretrained` writes `auto_map` and copies this file, so the folder loads with trust_remote_code=True
    # where vreason_hf is not installed.
    _auto_class = "AutoConfig"

    update_every: int = 2
    num_steps: int = 1
    lr: float = 0.05
    lr_scale: str = "value_rms"
    ema_beta: float = 0.97
    ema_init: str = "zero"
    alpha_schedule: str = "switch"
    kl_direction: str = "p_u"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    controller_scope: str = "video"
    target_layer: int = -1
    decode_after_update: bool = True
    lite: bool = False
    prune_ratio: float = 0.5
    prune_scope: str = "per_layer"

    def __post_init__(self, **kwargs: Any) -> None:
        unknown = sorted(k for k in kwargs if k not in _PASSTHROUGH_KEYS)
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, self.knob_names(), n=1)
                hints.append(f"`{key}`" + (f" (did you mean `{close[0]}`?)" if close else ""))
            raise TypeError(
                f"VReasonConfig got unknown argument(s) {', '.join(hints)}. "
                f"Valid knobs: {', '.join(self.knob_names())}."
            )
        super().__post_init__(**kwargs)
        self._check_knobs()

    @classmethod
    def knob_names(cls) -> list[str]:
        """The V-Reason knobs, in declaration order (the fields this class adds to `PreTrainedConfig`)."""
        base = set(PreTrainedConfig.__dataclass_fields__)
        return [name for name in cls.__dataclass_fields__ if name not in base]

    def knobs(self) -> dict[str, Any]:
        """The V-Reason knobs of this config as a plain dict."""
        return {name: getattr(self, name) for name in self.knob_names()}

    @property
    def enabled(self) -> bool:
        """Whether any optimiser step can change the controller (`num_steps > 0` and `lr > 0`)."""
        return self.num_steps > 0 and self.lr > 0

    def validate(self) -> None:
        """Re-check every knob (called by `save_pretrained`, so a knob set to a bad value later is caught)."""
        super().validate()
        self._check_knobs()

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> VReasonConfig:
        """As `PreTrainedConfig.from_dict`, but keyword overrides are validated and typos raise."""
        return_unused = kwargs.pop("return_unused_kwargs", False)
        config, unused = super().from_dict(config_dict, return_unused_kwargs=True, **kwargs)
        unknown = {k: v for k, v in unused.items() if k not in ("_from_auto", "_from_pipeline")}
        if unknown and not return_unused:
            cls(**unknown)  # raises the did-you-mean TypeError
        config._check_knobs()
        return (config, unused) if return_unused else config

    def _check_knobs(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"VReasonConfig: `{name}` {why}, got {getattr(self, name)!r}.")

        for name in ("update_every", "num_steps", "target_layer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                fail(name, "must be an integer")
        for name in ("lr", "ema_beta", "adam_beta1", "adam_beta2", "adam_eps", "prune_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                fail(name, "must be a finite number")
        for name in ("decode_after_update", "lite"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "must be True or False")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                fail(name, f"must be one of {', '.join(repr(c) for c in choices)}")
        if self.update_every < 1:
            fail("update_every", "must be >= 1 (1 = optimise at every generated token)")
        if self.num_steps < 0:
            fail("num_steps", "must be >= 0 (0 disables V-Reason)")
        if self.lr < 0:
            fail("lr", "must be >= 0")
        if not 0.0 <= self.ema_beta < 1.0:
            fail("ema_beta", "must be in [0, 1)")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                fail(name, "must be in [0, 1)")
        if self.adam_eps <= 0:
            fail("adam_eps", "must be > 0")
        if not 0.0 <= self.prune_ratio < 1.0:
            fail("prune_ratio", "must be in [0, 1) (the share of video tokens V-Reason Lite removes)")
