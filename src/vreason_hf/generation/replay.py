# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Last-layer replay: next-token logits under a new ΔV from the last decoder layer, final norm and LM head only.

A forward pre-hook on the last decoder layer records, at every real forward, the layer's input hidden state at the
last position and the keyword arguments the text model passes it (position embeddings, attention mask, ...). A
replay calls the *same* layer module on that one position with a stand-in cache whose `update()` returns the
stored keys and the controlled values, then applies the final norm and the LM head. Nothing below the last layer
is re-run and nothing is written to the cache.

Several generations may run at once on one model (threads of a server). Each replay records only the forwards of
its own generation: by default those made by the thread that created it, otherwise each thread's own (see
`any_thread`). The SDPA backend selection that the record hook makes on CUDA is process-global in torch; it is
reference-counted here so that overlapping generations restore the original selection when the last one ends.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
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


class _GradSDPABackends:
    """
    Keeps attention off cuDNN while any generation runs its controlled layer under grad.

    torch's SDPA backend flags are process-global, and `sdpa_kernel` restores on exit whatever it saw on entry: two
    overlapping contexts in two threads that exit in the order they entered would leave the restricted set in place
    for good. Here the first user enters the context and the last one leaves it, under a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._stack: contextlib.ExitStack | None = None

    def acquire(self) -> None:
        with self._lock:
            if self._users == 0:
                self._stack = contextlib.ExitStack()
                self._stack.enter_context(sdpa_kernel(_GRAD_SDPA_BACKENDS))
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._stack.close()
                self._stack = None


_GRAD_SDPA = _GradSDPABackends()


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


class _Record(threading.local):
    """What one thread's last real forward through the layer left for a replay (each thread sees its own)."""

    def __init__(self) -> None:
        self.hidden: torch.Tensor | None = None  # (batch, 1, hidden_size)
        self.cache: weakref.ref | None = None
        self.kwargs: dict[str, Any] = {}
        self.replaying = False
        self.sdpa_held = False


def _last_position(name: str, value: Any) -> Any:
    """Slice a recorded layer kwarg down to the last query position."""
    if name == "position_embeddings" and isinstance(value, tuple):
        return tuple(t[..., -1:, :] for t in value)
    if name == "attention_mask" and isinstance(value, torch.Tensor) and value.dim() == 4:
        return value[..., -1:, :]
    if name == "position_ids" and isinstance(value, torch.Tensor):
        return value[..., -1:]
    return value


def _autograd_usable(value: Any) -> Any:
    """
    A normal copy of a tensor made under `torch.inference_mode()` (e.g. by a generate run there), which autograd may
    not save for backward; anything else as it is. Only a logits processor under inference mode pays the copies.
    """
    if isinstance(value, torch.Tensor):
        return value.clone() if value.is_inference() and not torch.is_inference_mode_enabled() else value
    if isinstance(value, tuple):
        return tuple(_autograd_usable(v) for v in value)
    return value


class LastLayerReplay:
    r"""
    Records the last decoder layer's inputs during real forwards and recomputes next-token logits from them.

    Args:
        model (`PreTrainedModel`):
            A decoder-only LM or vision-language model (see [`resolve_decoder_parts`]).
        target_layer (`int`, *optional*, defaults to -1):
            Must resolve to the last decoder layer.
        any_thread (`bool`, *optional*, defaults to `False`):
            By default only forwards made by the thread that creates the replay are recorded, so that other
            threads' generations on the same model are never mistaken for this one. `True` records every thread's
            forwards separately: [`logits`], [`hidden`], [`cache`] and [`kwargs`] then refer to the calling thread's
            last forward (for a logits processor created in one thread and used by `generate` in another).

    Use as a context manager (or call [`remove`]) so the hook never outlives the generation.
    """

    def __init__(self, model: nn.Module, target_layer: int = -1, *, any_thread: bool = False) -> None:
        self.layers, self.norm, self.lm_head, self.layer_index = resolve_decoder_parts(model, target_layer)
        self.layer = self.layers[self.layer_index]
        self._owner = None if any_thread else threading.get_ident()
        self._record_of_thread = _Record()
        self._handles = [
            self.layer.register_forward_pre_hook(self._record, with_kwargs=True),
            self.layer.register_forward_hook(self._after, always_call=True),
        ]

    # The calling thread's record.
    @property
    def hidden(self) -> torch.Tensor | None:
        """The layer's input at the last position of the calling thread's last forward, `(batch, 1, hidden)`."""
        return self._record_of_thread.hidden

    @property
    def cache(self) -> Any:
        """The cache object of the calling thread's last forward (`None` if none was passed or it is gone)."""
        ref = self._record_of_thread.cache
        return None if ref is None else ref()

    @property
    def kwargs(self) -> dict[str, Any]:
        """The layer's keyword arguments of the calling thread's last forward, sliced to the last position."""
        return self._record_of_thread.kwargs

    def _record(self, module: nn.Module, args: tuple, kwargs: dict[str, Any] | None = None) -> None:
        if kwargs is None:
            # torch registers (and removes) a kwargs hook in two dicts, one after the other: a forward running in
            # another thread meanwhile calls it without kwargs. That forward is never this replay's generation,
            # which starts only after the hook is registered and ends before it is removed.
            return
        if self._owner is not None and threading.get_ident() != self._owner:
            return  # another thread's forward: another generation
        record = self._record_of_thread
        hidden = args[0] if args else kwargs["hidden_states"]
        if torch.is_grad_enabled() and hidden.is_cuda:
            # Under grad (fused update steps and replays) keep this layer off cuDNN attention: its backward builds
            # a new execution plan for every new sequence length, which costs tens of milliseconds of CPU per step.
            _GRAD_SDPA.acquire()
            record.sdpa_held = True
        if record.replaying:
            return
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        attention_mask = kwargs.get("attention_mask")
        if attention_mask is not None and not isinstance(attention_mask, torch.Tensor):
            raise TypeError(
                f"V-Reason's last-layer replay supports tensor attention masks (eager, sdpa, flash), got "
                f'`{type(attention_mask).__name__}`; load the model with `attn_implementation="sdpa"`.'
            )
        record.hidden = hidden[:, -1:].detach()
        record.cache = None if cache is None else weakref.ref(cache)
        record.kwargs = {k: _last_position(k, v) for k, v in kwargs.items() if k not in _CACHE_KWARGS}

    def _after(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self._owner is not None and threading.get_ident() != self._owner:
            return
        record = self._record_of_thread
        if record.sdpa_held:
            record.sdpa_held = False
            _GRAD_SDPA.release()

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
        record = self._record_of_thread
        if record.hidden is None:
            raise RuntimeError("LastLayerReplay.logits() called before any forward pass was recorded.")
        keys, values = (
            _autograd_usable(cache_layer.keys.detach()),
            _autograd_usable(cache_layer.values.detach()),
        )
        if controller is not None:
            values = controller.apply(values, force=force)
        hidden, kwargs = (
            _autograd_usable(record.hidden),
            {k: _autograd_usable(v) for k, v in record.kwargs.items()},
        )
        record.replaying = True  # the hook must not record the replay's own call
        try:
            out = self.layer(hidden, cache=_ReplayCache(keys, values), use_cache=True, **kwargs)
        finally:
            record.replaying = False
        out = out[0] if isinstance(out, tuple) else out
        return self.lm_head(self.norm(out))[:, -1].float()

    def parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the modules a replay runs (last layer, final norm, LM head)."""
        for module in (self.layer, self.norm, self.lm_head):
            yield from module.parameters()

    def remove(self) -> None:
        """Remove the hooks and drop every thread's record."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._record_of_thread = _Record()

    def __enter__(self) -> LastLayerReplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
