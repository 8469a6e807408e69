# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Configuration of V-Reason ("Video Reasoning without Training", arXiv 2510.17045).

This file is a leaf: it imports only `transformers`, so that it can be copied verbatim next to a
`config.json` on the Hub and loaded with `trust_remote_code=True` where `vreason_hf` is not installed.
"""

from __future__ import annotations

import difflib
import functools
import math
import textwrap
from dataclasses import Field, field, fields
from typing import Any

from transformers import PreTrainedConfig

__all__ = ["VReasonConfig"]

# Keys that `transformers` itself writes into a config.json, passes through `from_pretrained` or sets on a model's
# config; anything else that is not a field of `VReasonConfig` is a typo and raises.
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
        # Set on model configs by transformers' loading and generation code.
        "custom_pipelines",
        "distributed_config",
        "fusion_config",
        "is_causal",
        "layer_types",
        "mtp_layer_types",
        "quantization_config",
        "use_cache",
    }
)

# (test, requirement) of the knobs with a range, checked once the type (the field's) and choices are right.
_RANGES: dict[str, tuple[Any, str]] = {
    "update_every": (lambda v: v >= 1, "must be >= 1 (1 = optimise at every generated token)"),
    "num_steps": (lambda v: v >= 0, "must be >= 0 (0 disables V-Reason)"),
    "lr": (lambda v: v >= 0, "must be >= 0"),
    "ema_beta": (lambda v: 0.0 <= v < 1.0, "must be in [0, 1)"),
    "adam_beta1": (lambda v: 0.0 <= v < 1.0, "must be in [0, 1)"),
    "adam_beta2": (lambda v: 0.0 <= v < 1.0, "must be in [0, 1)"),
    "adam_eps": (lambda v: v > 0, "must be > 0"),
    "prune_ratio": (
        lambda v: 0.0 <= v < 1.0,
        "must be in [0, 1) (the share of video tokens V-Reason Lite removes)",
    ),
}


def _knob_problem(knob: Field, value: Any) -> str | None:
    """Why `value` is not a valid value of the knob field `knob`, or `None` if it is."""
    kind = getattr(knob.type, "__name__", knob.type)  # "int", "float", "bool" or "str"
    choices = knob.metadata.get("choices")
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be an integer"
    if kind == "float" and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        return "must be a finite number"
    if kind == "bool" and not isinstance(value, bool):
        return "must be True or False"
    if choices is not None and value not in choices:
        return f"must be one of {', '.join(repr(c) for c in choices)}"
    if knob.name in _RANGES and not _RANGES[knob.name][0](value):
        return _RANGES[knob.name][1]
    return None


class VReasonConfig(PreTrainedConfig):
    # The docstring's `Args:` block is generated from the fields' help text below (see `_docstring`).
    r"""
    The knobs of V-Reason: a zero-initialised controller ΔV added (norm-preserving) to the value-cache rows of the
    video tokens in the last decoder layer, tuned while decoding by a few Adam steps on an entropy switching
    objective. Choices marked *ours* are where the paper is silent; their defaults are this project's.
    """

    model_type = "vreason"
    # `save_pretrained` writes `auto_map` and copies this file, so the folder loads with trust_remote_code=True
    # where vreason_hf is not installed.
    _auto_class = "AutoConfig"

    # Each knob's help text lives here, once: the docstring, `vreason --help`, the README's knob table and the
    # model cards' tables are generated from it (`vreason_hf.knobs` reads these lines with `ast`, so defaults,
    # help texts and choices must stay literals).
    update_every: int = field(
        default=2,
        metadata={
            "help": "Run the optimiser every `update_every` generated tokens (the paper's *k*; k=2 was its most "
            "accurate setting). Tokens 0, k, 2k, ... are update steps."
        },
    )
    num_steps: int = field(
        default=1,
        metadata={
            "help": "Adam steps per update. `0` disables V-Reason: decoding is then exactly the base model's."
        },
    )
    lr: float = field(
        default=0.05,
        metadata={
            "help": 'Adam learning rate. With `lr_scale="value_rms"` (default) it is relative to the '
            "root-mean-square of the controlled value rows of each sample, so one value means the same on every "
            "model (*ours*)."
        },
    )
    lr_scale: str = field(
        default="value_rms",
        metadata={
            "help": '`"value_rms"`: ΔV = rms(V_rows) · θ and Adam updates θ, making `lr` scale-free (*ours*). '
            '`"absolute"`: Adam updates ΔV directly with step size `lr`.',
            "choices": ("value_rms", "absolute"),
        },
    )
    ema_beta: float = field(
        default=0.97,
        metadata={"help": "Smoothing of the entropy EMA, H_ema_k = β·H_ema_{k-1} + (1-β)·H_k (*ours*)."},
    )
    ema_init: str = field(
        default="zero",
        metadata={
            "help": '`"zero"` starts the EMA at 0 like the paper\'s curves; `"first"` at the first token\'s '
            "entropy (*ours*).",
            "choices": ("zero", "first"),
        },
    )
    alpha_schedule: str = field(
        default="switch",
        metadata={
            "help": '`"switch"` is the paper\'s rule (α=+1 while the EMA is at its running peak, −1 below it); '
            '`"minimize"` fixes α=−1 and `"maximize"` fixes α=+1 (the paper\'s ablations).',
            "choices": ("switch", "minimize", "maximize"),
        },
    )
    kl_direction: str = field(
        default="p_u",
        metadata={
            "help": '`"p_u"`: L = α·KL(p‖U) = α·(log|V| − H(p)); `"u_p"`: L = α·KL(U‖p) (*ours*).',
            "choices": ("p_u", "u_p"),
        },
    )
    adam_beta1: float = field(default=0.9, metadata={"help": "Adam's first-moment decay."})
    adam_beta2: float = field(default=0.999, metadata={"help": "Adam's second-moment decay."})
    adam_eps: float = field(default=1e-8, metadata={"help": "Adam's epsilon."})
    controller_scope: str = field(
        default="video",
        metadata={
            "help": 'Which cached value rows the controller covers: `"video"` (the paper: video tokens), '
            '`"visual"` (video and image tokens) or `"prompt"` (every prompt token, so text-only models '
            "work too) (*ours*).",
            "choices": ("video", "visual", "prompt"),
        },
    )
    target_layer: int = field(
        default=-1,
        metadata={
            "help": "Index of the decoder layer whose value cache is controlled (negative counts from the end). "
            "The paper uses the last layer, and only the last layer is supported: only then does an optimiser "
            "step need no more than that layer and the LM head. Checked against the model when decoding starts."
        },
    )
    decode_after_update: bool = field(
        default=True,
        metadata={
            "help": "After the optimiser steps, recompute the distribution with the new ΔV and pick the token "
            "from it. `False` picks the token from the pre-update distribution and saves one last-layer pass "
            "(*ours*)."
        },
    )
    lite: bool = field(
        default=False,
        metadata={
            "help": "V-Reason Lite: after prefill, drop the `prune_ratio` share of video tokens with the lowest "
            "value norm from every layer's KV cache. Lite prunes video rows only, whatever `controller_scope` "
            '(with `"visual"` the image rows stay, controlled and unpruned; with `"prompt"` every '
            "surviving prompt row is controlled), so it needs a video in every sample. When rows were dropped, "
            "token 0 is scored, optimised and chosen over the pruned cache: its logits are the last-layer replay "
            "over it (the layers below ran on the full prompt); with nothing dropped they are the prefill's "
            "(*ours*)."
        },
    )
    prune_ratio: float = field(
        default=0.5, metadata={"help": "Share of the video tokens Lite removes, in [0, 1)."}
    )
    prune_scope: str = field(
        default="per_layer",
        metadata={
            "help": '`"per_layer"`: every layer ranks the video tokens by its own value norms; `"shared"`: '
            "the target layer's ranking is used for every layer (*ours*).",
            "choices": ("per_layer", "shared"),
        },
    )

    def __post_init__(self, **kwargs: Any) -> None:
        # Private names are transformers' (or another library's) bookkeeping, accepted as on assignment.
        unknown = sorted(k for k in kwargs if k not in _PASSTHROUGH_KEYS and not k.startswith("_"))
        if unknown:
            raise TypeError(
                f"VReasonConfig got unknown argument(s) {', '.join(self._did_you_mean(k) for k in unknown)}. "
                f"Valid knobs: {', '.join(self.knob_names())}."
            )
        super().__post_init__(**kwargs)
        self.check_knobs()

    def __setattr__(self, name: str, value: Any) -> None:
        # Knobs are validated on assignment too: `config.update_every = 0` must fail here, not as a division by zero
        # in the middle of a generation, and a typo must not be saved into config.json (which then cannot load).
        cls = type(self)
        if name in cls._knob_set():
            problem = _knob_problem(cls.__dataclass_fields__[name], value)
            if problem is not None:
                raise ValueError(f"VReasonConfig: `{name}` {problem}, got {value!r}.")
        elif name in (getattr(cls, "sub_configs_defaults", None) or {}):
            value = self._sub_config(name, value)
        elif not (
            name.startswith("_")
            or name in _PASSTHROUGH_KEYS
            or name in cls.__dataclass_fields__
            or hasattr(cls, name)  # properties and class attributes of transformers' PreTrainedConfig
            or name in self.__dict__
            or name in cls.attribute_map
        ):
            raise AttributeError(
                f"VReasonConfig has no knob {self._did_you_mean(name)}; setting it would save an unknown key into "
                f"config.json. Valid knobs: {', '.join(self.knob_names())}."
            )
        super().__setattr__(name, value)

    def _sub_config(self, name: str, value: Any) -> Any:
        """A sub-config (e.g. `base_config`) as a config object: a config, a dict of one, or `None` if optional."""
        spec = type(self).sub_configs_defaults[name]
        if value is None and spec.optional:
            return None
        if not isinstance(value, dict | PreTrainedConfig | None):
            raise TypeError(
                f"VReasonConfig: `{name}` must be a PreTrainedConfig, a dict of one (with its `model_type`) or None, "
                f"got {type(value).__name__}."
            )
        return spec.create_subconfig(name, value)[0]

    @classmethod
    def _did_you_mean(cls, name: str) -> str:
        close = difflib.get_close_matches(name, cls.knob_names(), n=1)
        return f"`{name}`" + (f" (did you mean `{close[0]}`?)" if close else "")

    @classmethod
    @functools.cache
    def _knob_set(cls) -> frozenset[str]:
        return frozenset(cls.knob_names())

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
        self.check_knobs()

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> VReasonConfig:
        """As `PreTrainedConfig.from_dict`, but keyword overrides are validated and typos raise."""
        return_unused = kwargs.pop("return_unused_kwargs", False)
        config, unused = super().from_dict(config_dict, return_unused_kwargs=True, **kwargs)
        unknown = {k: v for k, v in unused.items() if k not in ("_from_auto", "_from_pipeline")}
        if unknown and not return_unused:
            cls(**unknown)  # raises the did-you-mean TypeError
        config.check_knobs()
        return (config, unused) if return_unused else config

    def check_knobs(self) -> None:
        """
        Check every knob: each is validated where it enters (constructor, assignment, `from_dict`), and once more
        when a generation starts, in case a value got in some other way (e.g. through `__dict__`).

        Raises:
            `ValueError`: naming the first invalid knob and the value it holds.
        """
        for name in self.knob_names():
            value = getattr(self, name)
            problem = _knob_problem(type(self).__dataclass_fields__[name], value)
            if problem is not None:
                raise ValueError(f"VReasonConfig: `{name}` {problem}, got {value!r}.")


def _docstring(cls: type[VReasonConfig]) -> str:
    """The class docstring plus an HF-style `Args:` block made from the knob fields' help text."""
    lines = [cls.__doc__.rstrip(), "", "    Args:"]
    for knob in fields(cls):
        if knob.name not in cls.knob_names():
            continue
        kind = getattr(knob.type, "__name__", knob.type)
        default = (
            f'`"{knob.default}"`'
            if kind == "str"
            else f"`{knob.default}`"
            if kind == "bool"
            else knob.default
        )
        lines.append(f"        {knob.name} (`{kind}`, *optional*, defaults to {default}):")
        lines.append(
            textwrap.fill(knob.metadata["help"], 118, initial_indent=" " * 12, subsequent_indent=" " * 12)
        )
    return "\n".join(lines) + "\n    "


VReasonConfig.__doc__ = _docstring(VReasonConfig)
