# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The per-generation V-Reason state machine shared by the decoding loop and the logits-processor form.

One [`VReasonEngine`] lives for one `generate` call. It owns the controller, the last-layer replay, the entropy
EMA / running peak / α of every sample and the per-token traces, and it restores the model exactly as it found it
when closed.

Generations may overlap on one model (threads of a server): everything an engine changes is its own (its cache, its
controller, its replay's records) except the parameters' `requires_grad` flags, which it freezes through a
process-wide, lock-protected reference count ([`~autograd.FROZEN_PARAMETERS`]), so the flags a user set come back
when the last generation ends.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from ..configuration_vreason import VReasonConfig
from .autograd import FROZEN_PARAMETERS
from .controller import ValueController, controlled_rows
from .lite import prune_cache, prune_last_position_mask
from .objective import entropy, schedule_step, switch_loss
from .replay import ControlledDynamicLayer, LastLayerReplay

__all__ = ["VReasonEngine", "as_vreason_config"]


def as_vreason_config(value: VReasonConfig | dict[str, Any] | None) -> VReasonConfig:
    """
    Accept a `VReasonConfig`, a plain dict of its knobs, or `None` (the defaults), and check every knob once more
    (a generation starts here, whatever was done to the config since it was built).
    """
    if value is None:
        return VReasonConfig()
    if isinstance(value, VReasonConfig):
        value.check_knobs()
        return value
    if isinstance(value, dict):
        return VReasonConfig(**value)
    if getattr(value, "model_type", None) == "vreason" and callable(getattr(value, "knobs", None)):
        # The same config class from another copy of this code (e.g. a Hub repo's remote code).
        return VReasonConfig(**value.knobs())
    raise TypeError(
        f"`vreason_config` must be a VReasonConfig, a dict of its knobs or None, got {type(value).__name__}."
    )


class VReasonEngine:
    r"""
    V-Reason's state for one generation: call [`attach`] after prefill, [`step`] once per generated token with the
    raw next-token logits, and [`close`] at the end (or use it as a context manager).

    Args:
        model (`PreTrainedModel`): the (frozen) model being decoded.
        config (`VReasonConfig`): the knobs.
        input_ids (`torch.LongTensor` of shape `(batch, prompt_len)`): the prompt.
        attention_mask (`torch.Tensor`, *optional*): the prompt's 2D mask.
        replay (`LastLayerReplay`, *optional*): an already-installed replay hook (it must have recorded the
            prefill); by default the engine installs its own, which must happen before prefill.
        freeze (`str`, *optional*, defaults to `"model"`): `"model"` sets `requires_grad=False` on every parameter
            until [`close`]; `"replay"` only on the replayed modules, and only inside [`step`].
        initial_state (`dict[str, torch.Tensor]`, *optional*): a controller state (see
            [`ValueController.load_state`]) to start from instead of ΔV = 0, e.g. a saved adapter.
    """

    def __init__(
        self,
        model: nn.Module,
        config: VReasonConfig,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        replay: LastLayerReplay | None = None,
        freeze: str = "model",
        initial_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        if getattr(model.config, "is_encoder_decoder", False):
            raise ValueError(
                f"V-Reason supports decoder-only models; `{type(model).__name__}` is an encoder-decoder model."
            )
        self.model, self.config = model, config
        self.rows, self.valid = controlled_rows(
            model.config, input_ids, attention_mask, config.controller_scope
        )
        self._video_rows = None  # (rows, valid) of the video tokens: what Lite prunes, whatever the scope
        if config.lite:
            self._video_rows = self._lite_rows(input_ids, attention_mask)
        self.prompt_len = input_ids.shape[1]
        batch, device = input_ids.shape[0], input_ids.device
        self.token_index = 0
        self.ema = torch.zeros(batch, device=device)
        self._first_nonfinite = torch.full((batch,), -1, dtype=torch.long, device=device)
        self.peak = torch.full((batch,), float("-inf"), device=device)
        self.traces: dict[str, list[torch.Tensor]] = {"entropies": [], "ema_entropies": [], "alphas": []}
        self.controller: ValueController | None = None
        self.initial_state = initial_state
        self.cache_layer = None
        self._owns_replay = replay is None
        self.replay = LastLayerReplay(model, config.target_layer) if replay is None else replay
        # Only the controller may receive gradients: freeze the model for the engine's lifetime (restored in
        # `close`), so autograd records nothing below the controlled layer and never computes a weight gradient.
        # `freeze="replay"` freezes only the modules a replay runs, around each `step` (the logits-processor form,
        # whose real forwards run under `no_grad` anyway).
        self._freeze = freeze
        self._frozen: list[nn.Parameter] = []
        if freeze == "model":
            self._frozen = FROZEN_PARAMETERS.freeze(model.parameters())

    def _lite_rows(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.controller_scope == "video":
            return self.rows, self.valid
        try:
            return controlled_rows(self.model.config, input_ids, attention_mask, "video")
        except ValueError:
            has_video = getattr(self.model.config, "video_token_id", None) is not None
            video = (
                (input_ids == self.model.config.video_token_id).any(-1)
                if has_video
                else torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            )
            empty = (~video).nonzero().flatten().tolist()
            raise ValueError(
                f"`lite=True` prunes video tokens, but the input of batch row(s) {empty} has none "
                f"(`controller_scope={self.config.controller_scope!r}` controls other rows, which Lite never "
                f"prunes). Pass a video, or set `lite=False`."
            ) from None

    # ------------------------------------------------------------------ set-up
    def attach(
        self, cache: Any, logits: torch.Tensor, model_kwargs: dict[str, Any] | None = None
    ) -> torch.Tensor:
        r"""
        Install the controller on the prefilled cache (and, for Lite, prune it).

        Args:
            cache (`DynamicCache`): the cache after prefill.
            logits (`torch.Tensor` of shape `(batch, vocab_size)`): the prefill's next-token logits; the replay
                must reproduce them, which is checked once here.
            model_kwargs (`dict`, *optional*): generate's model kwargs; with Lite, their `attention_mask` (already
                extended by one slot for the next token) is replaced by the pruned mask.

        Returns:
            `torch.Tensor`: the next-token logits to score first: `logits`, or their last-layer replay when the cache
            the prefill saw has changed since: under a loaded non-zero initial state, or after Lite dropped rows
            (token 0 is then scored, optimised and chosen over the pruned cache, like every later token; only the
            last layer sees the pruning at token 0, the layers below ran on the full prompt).
        """
        layers = getattr(cache, "layers", None)
        if layers is None or len(layers) <= self.replay.layer_index:
            raise TypeError(
                f"V-Reason needs a `DynamicCache` with one layer per decoder layer, got `{type(cache).__name__}`. "
                f'Do not pass `cache_implementation` other than "dynamic" or a custom cache object.'
            )
        layer = layers[self.replay.layer_index]
        ControlledDynamicLayer.check_supported(layer)
        # The replay will be used (updates, a loaded state, token 0 over a pruned cache): check it once.
        if self.config.enabled or self.initial_state is not None or self.config.lite:
            with torch.no_grad():
                self._check_replay(
                    self.replay.logits(layer, None), logits.detach().float(), layer.values.dtype
                )
        pruned = self.config.lite and self._prune(list(layers), model_kwargs)
        values = layer.values
        if values.shape[-2] < int(self.rows.max()) + 1:
            raise RuntimeError("V-Reason: the cache is shorter than the prompt; was prefill run?")
        _, heads, _, head_dim = values.shape
        scale = None
        if self.config.lr_scale == "value_rms":
            index = self.rows[:, None, :, None].expand(-1, heads, -1, head_dim)
            rows = values.gather(2, index).float() * self.valid[:, None, :, None]
            count = self.valid.sum(-1).clamp_min(1) * heads * head_dim
            scale = (rows.pow(2).sum((1, 2, 3)) / count).sqrt()
        self.controller = ValueController(
            self.rows,
            self.valid,
            heads,
            head_dim,
            scale=scale,
            lr=self.config.lr,
            betas=(self.config.adam_beta1, self.config.adam_beta2),
            eps=self.config.adam_eps,
        )
        ControlledDynamicLayer.install(layer, self.controller)
        self.cache_layer = layer
        if self.initial_state is not None:
            self.controller.load_state({k: v.to(values.device) for k, v in self.initial_state.items()})
        if pruned or not self.controller.is_zero:
            # The prefill ran over the full cache without the loaded ΔV: token 0 must see what later tokens see.
            with torch.no_grad():
                return self.replay.logits(layer, None if self.controller.is_zero else self.controller)
        return logits

    def _prune(self, layers: list[Any], model_kwargs: dict[str, Any] | None) -> bool:
        """Lite: prune the video rows of every layer; returns whether any row was dropped."""
        mask = None if model_kwargs is None else model_kwargs.get("attention_mask")
        prompt_mask = None if mask is None else mask[:, : self.prompt_len]
        video_rows, video_valid = self._video_rows
        pruned = prune_cache(
            layers,
            video_rows,
            video_valid,
            prompt_mask,
            prune_ratio=self.config.prune_ratio,
            scope=self.config.prune_scope,
            target_index=self.replay.layer_index,
            controlled=(self.rows, self.valid),
        )
        self.rows, self.valid = pruned.rows, pruned.valid
        new_mask = pruned.attention_mask
        if mask is not None:
            model_kwargs["attention_mask"] = torch.cat([new_mask, mask[:, self.prompt_len :]], dim=-1)
        elif new_mask is not None:
            if model_kwargs is None:
                raise ValueError(
                    "V-Reason Lite on a batch that drops different numbers of rows needs the model kwargs."
                )
            ones = new_mask.new_ones(new_mask.shape[0], 1)
            model_kwargs["attention_mask"] = torch.cat([new_mask, ones], dim=-1)
        # The replay's recorded mask (of the prompt's last position) must describe the pruned cache too.
        recorded = self.replay.kwargs
        recorded["attention_mask"] = prune_last_position_mask(
            recorded.get("attention_mask"),
            pruned.index,
            pruned.real,
            getattr(self.model.config, "_attn_implementation", None),
        )
        return pruned.dropped

    # ------------------------------------------------------------------ per token
    @property
    def update_due(self) -> bool:
        """Whether the token about to be scored is an update step (tokens 0, k, 2k, ...)."""
        return self.config.enabled and self.token_index % self.config.update_every == 0

    @property
    def wants_graph(self) -> bool:
        """
        Whether the next real forward should run with grad enabled: then the logits it returns already carry the
        graph to θ and the first optimiser step needs only a backward (the fused path). False until the
        controller has stepped once, because a zero controller is bypassed in real forwards.
        """
        return self.update_due and self.controller is not None and not self.controller.is_zero

    def grad_context(self) -> contextlib.AbstractContextManager:
        """`torch.enable_grad()` when [`wants_graph`], else a no-op context."""
        return torch.enable_grad() if self.wants_graph else contextlib.nullcontext()

    def step(self, logits: torch.Tensor, unfinished: torch.Tensor) -> torch.Tensor:
        r"""
        Score one generated position: update EMA / peak / α, take the optimiser steps when due and return the
        logits to decode from.

        Args:
            logits (`torch.Tensor` of shape `(batch, vocab_size)`):
                Raw next-token logits under the current ΔV, before any logits processor; may carry a graph to θ.
            unfinished (`torch.BoolTensor` of shape `(batch,)`):
                Samples still generating; finished samples keep their state and are not optimised.

        Returns:
            `torch.Tensor` of shape `(batch, vocab_size)`, float32, detached: the logits after the update when
            `decode_after_update=True` and an update happened, else the input logits.
        """
        if self.controller is None:
            raise RuntimeError("VReasonEngine.step() called before attach().")
        cfg = self.config
        unfinished = unfinished.bool()
        with torch.no_grad():
            h = entropy(logits.detach())
            # Recorded without a device sync; checked (one sync) before every update and by `check_finite`.
            bad = ~torch.isfinite(h) & unfinished
            self._first_nonfinite = torch.where(
                bad & (self._first_nonfinite < 0), self.token_index, self._first_nonfinite
            )
            self.ema, self.peak, alpha = schedule_step(
                self.ema,
                self.peak,
                h,
                first=self.token_index == 0,
                beta=cfg.ema_beta,
                ema_init=cfg.ema_init,
                schedule=cfg.alpha_schedule,
                active=unfinished,
            )
            nan = torch.full_like(h, float("nan"))
            self.traces["entropies"].append(torch.where(unfinished, h, nan))
            self.traces["ema_entropies"].append(torch.where(unfinished, self.ema, nan))
            self.traces["alphas"].append(torch.where(unfinished, alpha, torch.zeros_like(alpha)))

        decode = logits
        if self.update_due:
            self.check_finite()
            frozen = FROZEN_PARAMETERS.freeze(self.replay.parameters()) if self._freeze == "replay" else []
            try:
                decode = self._update(logits, alpha * unfinished, unfinished)
            finally:
                FROZEN_PARAMETERS.release(frozen)
        self.token_index += 1
        return decode.detach().float()

    def _update(self, logits: torch.Tensor, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """`num_steps` Adam steps on the switching loss (row weights α, 0 for finished rows); the logits to decode."""
        cfg, controller = self.config, self.controller
        for i in range(cfg.num_steps):
            with torch.enable_grad():
                if i == 0 and logits.requires_grad:
                    current = logits  # fused: the real forward already built the graph
                else:
                    current = self.replay.logits(self.cache_layer, controller)
                loss = switch_loss(current, weight, cfg.kl_direction).sum()
                (grad,) = torch.autograd.grad(loss, controller.theta)
            controller.adam_step(grad, rows)
        if not cfg.decode_after_update:
            return logits
        with torch.no_grad():
            return self.replay.logits(self.cache_layer, controller)

    def check_finite(self) -> None:
        """Raise `FloatingPointError` if any unfinished sample has met non-finite logits so far."""
        first = self._first_nonfinite.tolist()
        bad = [row for row, index in enumerate(first) if index >= 0]
        if bad:
            raise FloatingPointError(
                f"V-Reason: non-finite next-token logits for batch row(s) {bad}, first at generated token(s) "
                f"{[first[row] for row in bad]}. Lower `lr`, decode in float32, or check the model's weights "
                f"and inputs."
            )

    def _check_replay(self, replayed: torch.Tensor, real: torch.Tensor, dtype: torch.dtype) -> None:
        # Once per generation: the last-layer replay must reproduce the model's own logits (ΔV = 0), otherwise the
        # model computes logits in a way the replay does not know (e.g. logit soft-capping) and V-Reason would
        # optimise the wrong distribution.
        if not bool(torch.isfinite(real).all()):
            bad = (~torch.isfinite(real)).any(-1).nonzero().flatten().tolist()
            raise FloatingPointError(
                f"V-Reason: non-finite next-token logits after prefill for batch row(s) {bad}. Check the model's "
                f"weights and inputs, or decode in float32."
            )
        tol = (1e-3 if dtype == torch.float32 else 5e-2) * max(1.0, float(real.abs().max()))
        diff = float((replayed - real).abs().max())
        if not diff <= tol:
            raise RuntimeError(
                f"V-Reason's last-layer replay does not reproduce `{type(self.model).__name__}`'s logits "
                f"(max abs difference {diff:.3g} > {tol:.3g}). This architecture post-processes its last hidden "
                f"state in a way the replay (last layer → final norm → LM head) does not cover; it is unsupported."
            )

    # ------------------------------------------------------------------ results
    def stacked_traces(self) -> dict[str, torch.Tensor]:
        """Traces of shape `(batch, generated_tokens)`: NaN (entropies) or 0 (alphas) after a sample finished."""
        batch = self.ema.shape[0]
        out = {}
        for name, values in self.traces.items():
            out[name] = (
                torch.stack(values, dim=1) if values else torch.zeros(batch, 0, device=self.ema.device)
            )
        return out

    def controller_state(self) -> dict[str, torch.Tensor]:
        """A detached copy of the controller's state (θ, Adam moments, steps, rows, valid, scale)."""
        if self.controller is None:
            return {}
        return {name: tensor.detach().clone() for name, tensor in self.controller.state_dict().items()}

    @property
    def optimizer_steps(self) -> torch.Tensor:
        """Adam steps taken per sample, shape `(batch,)`."""
        if self.controller is None:
            return torch.zeros_like(self.ema, dtype=torch.long)
        return self.controller.steps.clone()

    def close(self) -> None:
        """Remove the hook, uninstall the controller from the cache and restore the parameters' grad flags."""
        if self._owns_replay:
            self.replay.remove()
        if self.cache_layer is not None:
            ControlledDynamicLayer.uninstall(self.cache_layer)
        frozen, self._frozen = self._frozen, []
        FROZEN_PARAMETERS.release(frozen)

    def __enter__(self) -> VReasonEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
