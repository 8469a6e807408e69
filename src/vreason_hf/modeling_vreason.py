# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""A V-Reason model: any supported base LMM whose `generate()` runs V-Reason with the repo's knobs by default.

Hub repos built by `vreason_hf.hub.save_vreason_model` carry this file plus a flat copy of the generation core, so
`AutoModelForImageTextToText.from_pretrained(repo, trust_remote_code=True)` works without `vreason_hf` installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, GenerationMixin, PreTrainedModel

from .configuration_vreason import VReasonConfig
from .generation.loop import vreason_generate

__all__ = ["VReasonForConditionalGeneration"]

_DEFAULT = object()
AUTO_CLASSES = ("AutoModel", "AutoModelForImageTextToText", "AutoModelForCausalLM")


class VReasonForConditionalGeneration(PreTrainedModel, GenerationMixin):
    r"""
    Wraps a base model (`self.model`) built from `config.base_config`; forward, embeddings and decoder are the base
    model's, and [`generate`] runs V-Reason with the knobs of `config`.

    Args:
        config (`VReasonConfig`): the knobs plus `base_config`.
        base_model (`PreTrainedModel`, *optional*): an existing base model to wrap (its weights are shared, not
            copied); by default one is built from `config.base_config` (and `from_pretrained` loads its weights).
    """

    config_class = VReasonConfig
    base_model_prefix = "vreason"
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: VReasonConfig, base_model: PreTrainedModel | None = None) -> None:
        if config.base_config is None:
            raise ValueError(
                "VReasonForConditionalGeneration needs `config.base_config` (the wrapped model's config); build "
                "repos with `vreason_hf.hub.save_vreason_model`."
            )
        super().__init__(config)
        if base_model is None:
            base = config.base_config
            auto = AutoModelForImageTextToText if _is_multimodal(base) else AutoModelForCausalLM
            base_model = auto.from_config(base)
        self.model = base_model
        self.post_init()

    @property
    def _tied_weights_keys(self) -> dict[str, str]:
        tied = getattr(self.model, "_tied_weights_keys", None) or {}
        if isinstance(tied, dict):
            return {f"model.{k}": f"model.{v}" for k, v in tied.items()}
        return {f"model.{k}": f"model.{k}" for k in tied}

    # The base model's own pieces: what V-Reason's replay and generate need.
    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.model.get_output_embeddings()

    def get_decoder(self) -> nn.Module:
        return self.model.get_decoder()

    def _init_weights(self, module: nn.Module) -> None:
        # Weights come from the base checkpoint; the base model initialises its own modules when built.
        return

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    @torch.no_grad()
    def generate(self, *args: Any, vreason_config: Any = _DEFAULT, **kwargs: Any) -> Any:
        r"""
        The base model's `generate` with V-Reason as the decoding loop.

        Args:
            vreason_config (`VReasonConfig`, `dict` or `None`, *optional*):
                By default the knobs of this model's config. A dict overrides some of them for this call; a
                `VReasonConfig` replaces them; `None` decodes plainly, without V-Reason.
            *args, **kwargs:
                As for the base model's `generate` (inputs, `max_new_tokens`, `do_sample`, ...).
        """
        if vreason_config is None:
            return self.model.generate(*args, **kwargs)
        knobs = self.config.knobs()
        if isinstance(vreason_config, dict):
            knobs.update(vreason_config)
            vreason_config = VReasonConfig(**knobs)
        elif vreason_config is _DEFAULT:
            vreason_config = VReasonConfig(**knobs)
        streamer = kwargs.pop("streamer", None)
        return self.model.generate(
            *args,
            custom_generate=vreason_generate,
            vreason_config=vreason_config,
            vreason_streamer=streamer,
            **kwargs,
        )

    def save_pretrained(self, save_directory: str | Path, *args: Any, **kwargs: Any) -> None:
        """Save weights, config (with `auto_map`) and the code files a Hub user needs to load this model."""
        super().save_pretrained(save_directory, *args, **kwargs)
        write_remote_code(Path(save_directory), model=True)


def _is_multimodal(config: Any) -> bool:
    return getattr(config, "vision_config", None) is not None


def write_remote_code(directory: Path, *, model: bool) -> None:
    """
    Write the code files of a V-Reason repo into `directory` and point `config.json`'s `auto_map` at them.

    Inside the `vreason_hf` package the files are generated from the package sources; in a copy loaded from the
    Hub (remote code) the sibling files of this module are copied as they are.
    """
    import importlib
    import json

    here = Path(__file__).resolve().parent
    if __package__ and __package__.split(".")[0] == "vreason_hf":
        # Not a relative import: transformers would look for `_vendor.py` in Hub copies of this file.
        sources = importlib.import_module("vreason_hf._vendor").vendored_sources(model=model)
    else:
        sources = {p.name: p.read_text() for p in here.glob("*.py") if p.name != "__init__.py"}
    for name, text in sources.items():
        (directory / name).write_text(text)
    config_path = directory / "config.json"
    if config_path.exists():
        config = json.loads(config_path.read_text())
        auto_map = {"AutoConfig": "configuration_vreason.VReasonConfig"}
        if model:
            auto_map.update(dict.fromkeys(AUTO_CLASSES, "modeling_vreason.VReasonForConditionalGeneration"))
        config["auto_map"] = auto_map
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
