# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The V-Reason generation core. Imports only torch, transformers and its own siblings (copied into Hub recipes)."""

from .controller import ValueController, controlled_rows, norm_preserving_update
from .engine import VReasonEngine, as_vreason_config
from .logits_process import RawLogitsRecorder, VReasonLogitsProcessor
from .loop import VReasonGenerateOutput, vreason_generate, vreason_generate_kwargs
from .objective import (
    entropy,
    kl_to_uniform,
    next_alpha,
    next_ema,
    schedule_step,
    schedule_traces,
    switch_loss,
)
from .replay import ControlledDynamicLayer, LastLayerReplay

__all__ = [
    "ControlledDynamicLayer",
    "LastLayerReplay",
    "RawLogitsRecorder",
    "VReasonEngine",
    "VReasonGenerateOutput",
    "VReasonLogitsProcessor",
    "ValueController",
    "as_vreason_config",
    "controlled_rows",
    "entropy",
    "kl_to_uniform",
    "next_alpha",
    "next_ema",
    "norm_preserving_update",
    "schedule_step",
    "schedule_traces",
    "switch_loss",
    "vreason_generate",
    "vreason_generate_kwargs",
]
