# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The V-Reason controller: a per-sample ΔV on chosen value-cache rows of one layer, with its own Adam, and the
choice of those rows ([`controlled_rows`]).

The controller never writes into the cache. Given the raw cached values `V` it returns a new tensor in which the
controlled rows are replaced by the norm-preserving update `(V + ΔV) / ‖V + ΔV‖ · ‖V‖`, so edits never compound.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["ValueController", "controlled_rows", "norm_preserving_update"]


def norm_preserving_update(values: torch.Tensor, delta: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    r"""
    Rotate value vectors by a controller offset while keeping each vector's norm (SPEC section 2).

    Args:
        values (`torch.Tensor` of shape `(..., head_dim)`):
            The original cached value vectors V (never modified).
        delta (`torch.Tensor`, broadcastable to `values`):
            The controller offset ΔV.
        eps (`float`, *optional*, defaults to 1e-12):
            Guards the division for vectors where V + ΔV = 0.

    Returns:
        `torch.Tensor`: V̂ = (V + ΔV) / ‖V + ΔV‖ · ‖V‖, norms taken per vector over the last dimension, in the
        promoted dtype of the inputs.
    """
    shifted = values + delta
    return shifted * (values.norm(dim=-1, keepdim=True) / shifted.norm(dim=-1, keepdim=True).clamp_min(eps))


def controlled_rows(
    model_config: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, scope: str
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""
    Prompt positions the controller covers, per sample.

    Args:
        model_config (`PreTrainedConfig`): the model's config (for `video_token_id` / `image_token_id`).
        input_ids (`torch.LongTensor` of shape `(batch, prompt_len)`): the prompt.
        attention_mask (`torch.Tensor` of shape `(batch, prompt_len)`, *optional*): 0 on padding.
        scope (`str`): `"video"`, `"visual"` or `"prompt"` (see [`VReasonConfig`]).

    Returns:
        `(rows, valid)`: `rows` of shape `(batch, max_rows)` with the positions (left-aligned, padded with 0) and
        the boolean `valid` of the same shape.

    Raises:
        `ValueError`: a sample has no row in scope (e.g. no video tokens with `scope="video"`).
    """
    if scope == "prompt":
        selected = (
            attention_mask.bool()
            if attention_mask is not None
            else torch.ones_like(input_ids, dtype=torch.bool)
        )
    else:
        token_ids = [getattr(model_config, "video_token_id", None)]
        if scope == "visual":
            token_ids.append(getattr(model_config, "image_token_id", None))
        token_ids = [t for t in token_ids if t is not None]
        if not token_ids:
            raise ValueError(
                f"`controller_scope={scope!r}` needs a vision-language model with a `video_token_id`, but "
                f'`{type(model_config).__name__}` has none. For a text-only model use `controller_scope="prompt"`.'
            )
        selected = torch.isin(input_ids, torch.tensor(token_ids, device=input_ids.device))
    counts = selected.sum(-1)
    if bool((counts == 0).any()):
        empty = (counts == 0).nonzero().flatten().tolist()
        if scope == "prompt":
            raise ValueError(
                f"`controller_scope={scope!r}` found no prompt tokens in batch row(s) {empty}: their prompt is empty "
                f"(no token, or an attention mask of zeros). Give every sample a non-empty prompt."
            )
        what = {"video": "video tokens", "visual": "video or image tokens"}[scope]
        raise ValueError(
            f"`controller_scope={scope!r}` found no {what} in the input of batch row(s) {empty}. Pass a video "
            f"(through the processor, so the prompt holds its placeholder tokens) or use "
            f'`controller_scope="prompt"` to control the prompt\'s value rows instead.'
        )
    width = int(counts.max())
    # Stable sort puts the selected positions first, in order.
    order = torch.sort((~selected).int(), dim=-1, stable=True).indices[:, :width]
    valid = torch.arange(width, device=input_ids.device)[None, :] < counts[:, None]
    return order, valid


def _describe_rows(rows: torch.Tensor, valid: torch.Tensor) -> str:
    """Per sample, the controlled positions as `first..last (n rows)`, for error messages."""
    parts = []
    for b in range(rows.shape[0]):
        positions = rows[b][valid[b].bool()].tolist() if valid.dtype == torch.bool else rows[b].tolist()
        if not positions:
            parts.append("none")
        else:
            parts.append(f"{min(positions)}..{max(positions)} ({len(positions)} rows)")
    return "[" + "; ".join(parts) + "]"


class ValueController(nn.Module):
    r"""
    The trainable ΔV of V-Reason for one decoder layer's value cache.

    ΔV has the shape of the controlled slice, `(batch, num_kv_heads, num_rows, head_dim)`, is zero-initialised and
    is parameterised as `ΔV = scale · θ` where `scale` is per sample (1, or the RMS of that sample's controlled
    value rows with `lr_scale="value_rms"`), so that Adam's step size `lr` is relative to the values it moves.
    Each batch row has its own Adam moments and step count; rows are fully independent.

    Args:
        rows (`torch.LongTensor` of shape `(batch, num_rows)`):
            Sequence positions (in the layer's cache) of the controlled rows. Samples with fewer rows are padded
            with positions that are *not* among their controlled rows (distinct from them), marked invalid in
            `valid`: a padded entry that aliased a real row would overwrite its update.
        valid (`torch.BoolTensor` of shape `(batch, num_rows)`):
            Which entries of `rows` are real.
        num_kv_heads (`int`), head_dim (`int`):
            Shape of the value cache.
        scale (`torch.Tensor` of shape `(batch,)`, *optional*):
            Per-sample scale of ΔV; defaults to ones.
        lr (`float`, *optional*, defaults to 0.05), betas (`tuple[float, float]`, *optional*, defaults to `(0.9,
        0.999)`), eps (`float`, *optional*, defaults to 1e-8):
            Adam's hyper-parameters (bias-corrected Adam, as `torch.optim.Adam`).
    """

    def __init__(
        self,
        rows: torch.Tensor,
        valid: torch.Tensor,
        num_kv_heads: int,
        head_dim: int,
        *,
        scale: torch.Tensor | None = None,
        lr: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        if rows.shape != valid.shape or rows.dim() != 2:
            raise ValueError(
                f"`rows` and `valid` must both have shape (batch, num_rows), got {tuple(rows.shape)} and "
                f"{tuple(valid.shape)}."
            )
        batch, num_rows = rows.shape
        device = rows.device
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.register_buffer("rows", rows.long())
        self.register_buffer("valid", valid.bool())
        if scale is None:
            scale = torch.ones(batch, device=device)
        self.register_buffer("scale", scale.detach().float().reshape(batch))
        shape = (batch, num_kv_heads, num_rows, head_dim)
        self.theta = nn.Parameter(torch.zeros(shape, device=device))
        self.register_buffer("exp_avg", torch.zeros(shape, device=device))
        self.register_buffer("exp_avg_sq", torch.zeros(shape, device=device))
        self.register_buffer("steps", torch.zeros(batch, dtype=torch.long, device=device))
        # True while θ is exactly zero (before the first step, unless a non-zero state was loaded): [`apply`] is
        # then the identity and returns the raw values untouched.
        self.is_zero = True

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        r"""
        Load a state saved from another controller (θ, Adam moments, step counts, scale), e.g. to continue from a
        previous generation's controller. Shapes must match exactly, and the state's controlled rows must be this
        controller's (the rows of this input): the state's `rows` and `valid` are checked, never loaded.

        Raises:
            `ValueError`: a tensor is missing or has another shape, or the state controls other rows (the state
                belongs to another input).
        """
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise ValueError(f"Controller state is missing {missing}; expected the keys {sorted(own)}.")
        for name, tensor in own.items():
            if tuple(state[name].shape) != tuple(tensor.shape):
                raise ValueError(
                    f"Controller state `{name}` has shape {tuple(state[name].shape)}, but this input needs "
                    f"{tuple(tensor.shape)}: a controller state only fits the input (same video tokens) it came from."
                )
        rows, valid = state["rows"].to(self.rows.device), state["valid"].to(self.valid.device)
        if (
            rows.is_floating_point()
            or valid.dtype != torch.bool
            or not torch.equal(valid, self.valid)
            or not torch.equal(rows[valid], self.rows[self.valid])
        ):
            raise ValueError(
                f"Controller state controls the value rows {_describe_rows(rows, valid)}, but this input's controlled "
                f"rows are {_describe_rows(self.rows, self.valid)}: a controller state only fits the input it came "
                f"from (the same prompt, video tokens at the same positions)."
            )
        self.load_state_dict(
            {name: state[name] for name in own if name not in ("rows", "valid")}, strict=False
        )
        self.is_zero = not bool(self.theta.detach().any())

    def delta(self) -> torch.Tensor:
        """ΔV of shape `(batch, num_kv_heads, num_rows, head_dim)` (float32), zero on padded rows."""
        mask = self.valid[:, None, :, None]
        return torch.where(mask, self.theta * self.scale[:, None, None, None], torch.zeros_like(self.theta))

    def _gather_index(self, values: torch.Tensor) -> torch.Tensor:
        batch, heads, _, head_dim = values.shape
        return self.rows[:, None, :, None].expand(batch, heads, self.rows.shape[1], head_dim)

    def apply(self, values: torch.Tensor, *, force: bool = False) -> torch.Tensor:
        r"""
        Return `values` with the controlled rows replaced by their norm-preserving update.

        Args:
            values (`torch.Tensor` of shape `(batch, num_kv_heads, seq_len, head_dim)`):
                The layer's raw cached values. Never modified.
            force (`bool`, *optional*, defaults to `False`):
                Apply the update even while ΔV is still zero (needed to get gradients at the first step). By
                default the raw tensor itself is returned until the first optimiser step, so that a controller
                which never stepped is bit-exactly the base model.

        Returns:
            `torch.Tensor` of the same shape and dtype as `values` (a new tensor when the controller is applied).
        """
        if self.is_zero and not force:
            return values
        index = self._gather_index(values)
        original = values.gather(2, index).float()
        updated = norm_preserving_update(original, self.delta())
        updated = torch.where(self.valid[:, None, :, None], updated, original).to(values.dtype)
        return values.scatter(2, index, updated)

    @torch.no_grad()
    def adam_step(self, grad: torch.Tensor, rows: torch.Tensor, lr: float | None = None) -> None:
        r"""
        One bias-corrected Adam step on θ for the selected batch rows; other rows keep θ, moments and step count.

        Args:
            grad (`torch.Tensor` of the shape of θ):
                dL/dθ.
            rows (`torch.BoolTensor` of shape `(batch,)`):
                Which samples take the step (finished samples are left out).
            lr (`float`, *optional*):
                Overrides the controller's learning rate for this step.
        """
        lr = self.lr if lr is None else lr
        beta1, beta2 = self.betas
        sel = rows[:, None, None, None]
        steps = self.steps + rows.long()
        exp_avg = torch.where(sel, beta1 * self.exp_avg + (1 - beta1) * grad, self.exp_avg)
        exp_avg_sq = torch.where(sel, beta2 * self.exp_avg_sq + (1 - beta2) * grad * grad, self.exp_avg_sq)
        t = steps.clamp_min(1).float()[:, None, None, None]
        bias1 = -torch.expm1(t * math.log(beta1)) if beta1 > 0 else torch.ones_like(t)
        bias2 = -torch.expm1(t * math.log(beta2)) if beta2 > 0 else torch.ones_like(t)
        update = (exp_avg / bias1) / ((exp_avg_sq / bias2).sqrt() + self.eps)
        self.theta.copy_(torch.where(sel, self.theta - lr * update, self.theta))
        self.exp_avg.copy_(exp_avg)
        self.exp_avg_sq.copy_(exp_avg_sq)
        self.steps.copy_(steps)
        if self.is_zero:  # reads `rows` (a device sync) only until the first real step
            self.is_zero = not bool(rows.any())
