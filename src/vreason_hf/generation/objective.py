# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The entropy switching objective of V-Reason (SPEC section 3), as small pure functions.

Every function takes and returns tensors without mutating its inputs; all maths is in float32.
"""

from __future__ import annotations

import math

import torch

__all__ = ["entropy", "kl_to_uniform", "next_alpha", "next_ema", "switch_loss"]


def entropy(logits: torch.Tensor) -> torch.Tensor:
    r"""
    Shannon entropy (nats) of `softmax(logits)` over the last dimension, computed in float32.

    Args:
        logits (`torch.Tensor` of shape `(..., vocab_size)`):
            Unnormalised scores; `-inf` entries (masked tokens) contribute zero.

    Returns:
        `torch.Tensor` of shape `(...)`: H = -Σ p log p.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    # p * logp is nan where p == 0 and logp == -inf; such terms are 0 by convention.
    return -(p * logp.masked_fill(p == 0, 0.0)).sum(-1)


def kl_to_uniform(logits: torch.Tensor, direction: str = "p_u") -> torch.Tensor:
    r"""
    KL divergence between `p = softmax(logits)` and the uniform distribution U over the vocabulary.

    Args:
        logits (`torch.Tensor` of shape `(..., vocab_size)`):
            Unnormalised scores.
        direction (`str`, *optional*, defaults to `"p_u"`):
            `"p_u"` gives KL(p‖U) = log|V| − H(p); `"u_p"` gives KL(U‖p) = −log|V| − mean(log p).

    Returns:
        `torch.Tensor` of shape `(...)`.
    """
    vocab = logits.shape[-1]
    if direction == "p_u":
        return math.log(vocab) - entropy(logits)
    if direction == "u_p":
        return -math.log(vocab) - torch.log_softmax(logits.float(), dim=-1).mean(-1)
    raise ValueError(f"`direction` must be 'p_u' or 'u_p', got {direction!r}.")


def next_ema(previous: torch.Tensor, value: torch.Tensor, beta: float) -> torch.Tensor:
    """One EMA step: `beta * previous + (1 - beta) * value` (float32)."""
    return beta * previous.float() + (1.0 - beta) * value.float()


def next_alpha(ema: torch.Tensor, peak: torch.Tensor, schedule: str = "switch") -> torch.Tensor:
    r"""
    The switching coefficient α_k of SPEC section 3.

    Args:
        ema (`torch.Tensor`):
            H_ema_k, the smoothed entropy after this token.
        peak (`torch.Tensor`):
            H_peak_k = max_{j≤k} H_ema_j, the running maximum *including* this token.
        schedule (`str`, *optional*, defaults to `"switch"`):
            `"switch"`: −1 where `ema < peak` (exploit after the peak), else +1 (explore while rising);
            `"minimize"`: always −1; `"maximize"`: always +1.

    Returns:
        `torch.Tensor` of the same shape, float32, with values in {−1, +1}.
    """
    if schedule == "switch":
        return torch.where(ema.float() < peak.float(), -1.0, 1.0)
    if schedule == "minimize":
        return torch.full_like(ema, -1.0, dtype=torch.float32)
    if schedule == "maximize":
        return torch.full_like(ema, 1.0, dtype=torch.float32)
    raise ValueError(f"`schedule` must be 'switch', 'minimize' or 'maximize', got {schedule!r}.")


def switch_loss(logits: torch.Tensor, alpha: torch.Tensor, direction: str = "p_u") -> torch.Tensor:
    r"""
    Per-row switching loss L = α · KL(p ‖ U) (or KL(U ‖ p) with `direction="u_p"`).

    Minimising it raises the entropy where α = +1 and lowers it where α = −1.

    Args:
        logits (`torch.Tensor` of shape `(batch, vocab_size)`):
            Next-token logits, before any logits processor.
        alpha (`torch.Tensor` of shape `(batch,)`):
            α_k per row (use 0 to exclude a row).
        direction (`str`, *optional*, defaults to `"p_u"`):
            See [`kl_to_uniform`].

    Returns:
        `torch.Tensor` of shape `(batch,)`. Sum it (not average) so that each row's gradient does not depend on
        the batch size.
    """
    return alpha.float() * kl_to_uniform(logits, direction)
