# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Last-layer replay: next-token logits under a new ΔV from the last decoder layer, final norm and LM head only.

A forward pre-hook on the last decoder layer records, at every real forward, the layer's input hidden state at the
last position and the keyword arguments the text model passes it (position embeddings, attention mask, ...). A
replay calls the *same* layer module on that one position with a stand-in cache whose `update()` returns the
stored keys and the controlled values, then applies the final norm and the LM head. Nothing below the last layer
is re-run and nothing is written to the cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers.cache_utils import DynamicLayer

from .controller import ValueController

__all__ = ["ControlledDynamicLayer", "LastLayerReplay", "resolve_decoder_parts"]

_CACHE_KWARGS = ("hidden_states", "cache", "past_key_values", "past_key_value", "use_cache")
_GRAD_SDPA_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def resolve_decoder_parts(
    model: nn.Module, target_layer: int = -1
) -> tuple[nn.ModuleList, nn.Module, nn.Module, int]:
    """
    Find the decoder layers, final norm and LM head of a decoder-only (or vision-language) model.

    Returns:
        `(layers, norm, lm_head, layer_index)` where `layer_index` is the non-negative index of `target_layer`.

    Raises:
        `TypeError`: the model does not expose `get_decoder().layers`, `.norm` and `get_output_embeddings()`.
        `ValueError`: `target_layer` is not the last decoder layer.
    """
    name = type(model).__name__
    get_decoder = getattr(model, "get_decoder", None)
    decoder = get_decoder() if callable(get_decoder) else None
    layers = getattr(decoder, "layers", None)
    norm = getattr(decoder, "norm", None)
    lm_head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(layers, nn.ModuleList) or norm is None or lm_head is None:
        raise TypeError(
            f"V-Reason needs a decoder-only language model exposing `get_decoder().layers`, `get_decoder().norm` "
            f"and `get_output_embeddings()`; `{name}` does not. Supported: Qwen2-VL, Qwen2.5-VL, Qwen3-VL, "
            f"LLaVA-OneVision and Llama-style text models."
        )
    num_layers = len(layers)
    index = target_layer + num_layers if target_layer < 0 else target_layer
    if index != num_layers - 1:
        raise ValueError(
            f"`target_layer`={target_layer} resolves to layer {index} of {num_layers}; V-Reason controls only the "
            f"last decoder layer (use `target_layer=-1`), since only then an optimiser step needs no more than "
            f"that layer and the LM head."
        )
    return layers, norm, lm_head, index


class ControlledDynamicLayer(DynamicLayer):
    """
    A `DynamicLayer` whose `update()` stores the raw keys and values as usual but returns the controlled values,
    so every real forward attends over `controller.apply(V)` while the cache keeps the original `V`.

    Installed on one cache layer for the duration of a generation by [`ControlledDynamicLayer.install`], and
    removed by [`ControlledDynamicLayer.uninstall`], which turns the layer back into a plain `DynamicLayer`.
    """

    vreason_controller: ValueController | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        keys, values = super().update(key_states, value_states, *args, **kwargs)
        if self.vreason_controller is not None:
            values = self.vreason_controller.apply(values)
        return keys, values

    @classmethod
    def install(cls, layer: DynamicLayer, controller: ValueController) -> None:
        cls.check_supported(layer)
        layer.__class__ = cls
        layer.vreason_controller = controller

    @staticmethod
    def check_supported(layer: object) -> None:
        """Raise `TypeError` unless `layer` is a plain `DynamicLayer` (the only cache layer V-Reason edits)."""
        if type(layer) is not DynamicLayer:
            raise TypeError(
                f"V-Reason supports only a dynamic cache on the controlled layer, got `{type(layer).__name__}`. "
                f'Pass `cache_implementation="dynamic"` (the default) and do not pass a static, sliding-window, '
                f"offloaded or quantized cache."
            )

    @staticmethod
    def uninstall(layer: DynamicLayer) -> None:
        if isinstance(layer, ControlledDynamicLayer):
            layer.__dict__.pop("vreason_controller", None)
            layer.__class__ = DynamicLayer


class _ReplayCache:
    """Stand-in `Cache` for replaying one layer: returns the stored keys and controlled values, stores nothing."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys, self.values = keys, values

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ):
        # The real cache already holds this position's key and value: the replayed query attends over exactly
        # what the real forward attended over.
        return self.keys, self.values


def _last_position(name: str, value: Any) -> Any:
    """Slice a recorded layer kwarg down to the last query position."""
    if name == "position_embeddings" and isinstance(value, tuple):
        return tuple(t[..., -1:, :] for t in value)
    if name == "attention_mask" and isinstance(value, torch.Tensor) and value.dim() == 4:
        return value[..., -1:, :]
    if name == "position_ids" and isinstance(value, torch.Tensor):
        return value[..., -1:]
    return value


class LastLayerReplay:
    r"""
    Records the last decoder layer's inputs during real forwards and recomputes next-token logits from them.

    Args:
        model (`PreTrainedModel`):
            A decoder-only LM or vision-language model (see [`resolve_decoder_parts`]).
        target_layer (`int`, *optional*, defaults to -1):
            Must resolve to the last decoder layer.

    Use as a context manager (or call [`remove`]) so the hook never outlives the generation.
    """

    def __init__(self, model: nn.Module, target_layer: int = -1) -> None:
        self.layers, self.norm, self.lm_head, self.layer_index = resolve_decoder_parts(model, target_layer)
        self.layer = self.layers[self.layer_index]
        self.hidden: torch.Tensor | None = None  # (batch, 1, hidden_size)
        self.kwargs: dict[str, Any] = {}
        self.cache: Any = None
        self._replaying = False
        self._kernels: contextlib.ExitStack | None = None
        self._handles = [
            self.layer.register_forward_pre_hook(self._record, with_kwargs=True),
            self.layer.register_forward_hook(self._after, always_call=True),
        ]

    def _record(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        if torch.is_grad_enabled() and hidden.is_cuda:
            # Under grad (fused update steps and replays) keep this layer off cuDNN attention: its backward builds
            # a new execution plan for every new sequence length, which costs tens of milliseconds of CPU per step.
            self._kernels = contextlib.ExitStack()
            self._kernels.enter_context(sdpa_kernel(_GRAD_SDPA_BACKENDS))
        if self._replaying:
            return
        self.hidden = hidden[:, -1:].detach()
        self.cache = kwargs.get("cache", kwargs.get("past_key_values"))
        self.kwargs = {k: _last_position(k, v) for k, v in kwargs.items() if k not in _CACHE_KWARGS}
        attention_mask = self.kwargs.get("attention_mask")
        if attention_mask is not None and not isinstance(attention_mask, torch.Tensor):
            raise TypeError(
                f"V-Reason's last-layer replay supports tensor attention masks (eager, sdpa, flash), got "
                f'`{type(attention_mask).__name__}`; load the model with `attn_implementation="sdpa"`.'
            )

    def _after(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self._kernels is not None:
            self._kernels.close()
            self._kernels = None

    def logits(
        self, cache_layer: DynamicLayer, controller: ValueController | None, *, force: bool = True
    ) -> torch.Tensor:
        r"""
        Next-token logits of the last recorded position with the controller's current ΔV.

        Runs under the ambient grad mode: inside `torch.enable_grad()` the result carries a graph to the
        controller's θ only (the model's parameters must not require grad).

        Args:
            cache_layer (`DynamicLayer`):
                The controlled layer's cache entry (already holding the recorded position).
            controller (`ValueController`, *optional*):
                Applied to the cached values; `None` replays the base model.
            force (`bool`, *optional*, defaults to `True`):
                Passed to [`ValueController.apply`].

        Returns:
            `torch.Tensor` of shape `(batch, vocab_size)`, float32.
        """
        if self.hidden is None:
            raise RuntimeError("LastLayerReplay.logits() called before any forward pass was recorded.")
        keys, values = cache_layer.keys.detach(), cache_layer.values.detach()
        if controller is not None:
            values = controller.apply(values, force=force)
        self._replaying = True  # the hook must not record the replay's own call
        try:
            out = self.layer(self.hidden, cache=_ReplayCache(keys, values), use_cache=True, **self.kwargs)
        finally:
            self._replaying = False
        out = out[0] if isinstance(out, tuple) else out
        return self.lm_head(self.norm(out))[:, -1].float()

    def parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the modules a replay runs (last layer, final norm, LM head)."""
        for module in (self.layer, self.norm, self.lm_head):
            yield from module.parameters()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> LastLayerReplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
