# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`ControllerLayer`: the numerics of the adapter on one module, the last decoder layer's value cache.

It owns the very `ValueController` class the decoding loop optimises (no second implementation) and attaches it to
a cache layer the way the loop does.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.cache_utils import DynamicLayer

from ..generation.controller import ValueController
from ..generation.replay import ControlledDynamicLayer
from .config import ControllerConfig

__all__ = ["ControllerLayer"]


def _check_rows(rows: torch.Tensor, valid: torch.Tensor) -> None:
    """Refuse a `rows` / `valid` pair that cannot index a value cache (a damaged or hand-edited file)."""
    problem = None
    if rows.dtype not in (torch.int32, torch.int64) or rows.is_floating_point():
        problem = f"`rows` must hold integer positions, got dtype {rows.dtype}"
    elif valid.dtype != torch.bool or valid.shape != rows.shape:
        problem = (
            f"`valid` must be a boolean tensor of the shape of `rows`, got {valid.dtype} {tuple(valid.shape)}"
        )
    elif bool((rows < 0).any()):
        problem = f"`rows` holds negative positions {sorted(set(rows[rows < 0].tolist()))[:5]}"
    else:
        for b in range(rows.shape[0]):
            controlled = rows[b, valid[b]]
            if controlled.unique().numel() != controlled.numel():
                problem = f"`rows` of sample {b} repeats a controlled position"
                break
            if bool(torch.isin(rows[b, ~valid[b]], controlled).any()):
                problem = f"a padding entry of `rows` of sample {b} aliases a controlled position"
                break
    if problem is not None:
        raise ValueError(
            f"Controller weights are not a valid controller state: {problem}. The file is damaged."
        )


class ControllerLayer(nn.Module):
    r"""
    A saved controller state, ready to be applied to (or continued on) the last layer's value cache.

    Args:
        config (`ControllerConfig`): shapes and knobs.
        state (`dict[str, torch.Tensor]`): the `ValueController` state (θ, moments, steps, rows, valid, scale).
    """

    def __init__(self, config: ControllerConfig, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.config = config
        missing = sorted({"theta", "rows", "valid"} - set(state))
        if missing:
            raise ValueError(
                f"Controller weights lack {missing}: the file is damaged or not a V-Reason controller."
            )
        rows, valid = state["rows"], state["valid"]
        expected = (config.batch_size, config.num_key_value_heads, config.num_rows, config.head_dim)
        if tuple(state["theta"].shape) != expected or tuple(rows.shape) != expected[::2]:
            raise ValueError(
                f"Controller weights have θ of shape {tuple(state['theta'].shape)} and rows {tuple(rows.shape)}, but "
                f"`controller_config.json` describes θ {expected}: the files do not belong together."
            )
        _check_rows(rows, valid)
        vreason = config.vreason_config()
        self.controller = ValueController(
            rows,
            valid,
            config.num_key_value_heads,
            config.head_dim,
            lr=vreason.lr,
            betas=(vreason.adam_beta1, vreason.adam_beta2),
            eps=vreason.adam_eps,
        )
        self.controller.load_state(state)

    def state(self) -> dict[str, torch.Tensor]:
        """The controller state (what `vreason_initial_state` takes)."""
        return {name: tensor.detach() for name, tensor in self.controller.state_dict().items()}

    def apply(self, values: torch.Tensor) -> torch.Tensor:
        """Controlled values of a `(batch, kv_heads, seq, head_dim)` value cache (see `ValueController.apply`)."""
        return self.controller.apply(values)

    def install(self, cache_layer: DynamicLayer) -> None:
        """Make every later forward through `cache_layer` attend over the controlled values."""
        ControlledDynamicLayer.install(cache_layer, self.controller)

    @staticmethod
    def uninstall(cache_layer: DynamicLayer) -> None:
        ControlledDynamicLayer.uninstall(cache_layer)
