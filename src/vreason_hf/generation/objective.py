# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The entropy switching objective of V-Reason (SPEC section 3), as small pure functions.

This is the one place the objective and its schedule (entropy, EMA, running peak, α) are written: the decoding
loop, the plain-decoding traces of the evaluation, the benchmarks and the tests all call these functions.

Every function takes and returns tensors without mutating its inputs; all maths is in float32.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "entropy",
    "kl_to_uniform",
    "next_alpha",
    "next_ema",
    "schedule_step",
    "schedule_traces",
    "switch_loss",
]


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


def schedule_step(
    ema: torch.Tensor,
    peak: torch.Tensor,
    h: torch.Tensor,
    *,
    first: bool,
    beta: float,
    ema_init: str = "zero",
    schedule: str = "switch",
    active: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""
    One generated token of the entropy schedule (SPEC section 3): the new EMA, running peak and α.

    Args:
        ema (`torch.Tensor` of shape `(...)`):
            H_ema_{k-1}, the smoothed entropy so far (zeros before the first token).
        peak (`torch.Tensor` of shape `(...)`):
            H_peak_{k-1}, its running maximum so far (`-inf` before the first token).
        h (`torch.Tensor` of shape `(...)`):
            H_k, the entropy of this token's distribution.
        first (`bool`):
            Whether this is the first generated token (k = 0), where `ema_init="first"` starts the EMA at H_0.
        beta (`float`):
            EMA smoothing: H_ema_k = β · H_ema_{k-1} + (1 − β) · H_k.
        ema_init (`str`, *optional*, defaults to `"zero"`):
            `"zero"`: the first token is an ordinary EMA step from `ema` (0); `"first"`: H_ema_0 = H_0.
        schedule (`str`, *optional*, defaults to `"switch"`):
            See [`next_alpha`].
        active (`torch.BoolTensor` of shape `(...)`, *optional*):
            Entries still generating; the others keep their EMA and peak (their α is computed from the kept
            values, and callers zero it). All entries are active by default.

    Returns:
        `tuple[torch.Tensor, torch.Tensor, torch.Tensor]`: `(ema, peak, alpha)` after this token, float32; the peak
        includes this token, and α compares the two (+1 at the running peak, ties included, −1 below it).
    """
    if ema_init not in ("zero", "first"):
        raise ValueError(f"`ema_init` must be 'zero' or 'first', got {ema_init!r}.")
    new = h.to(torch.float32, copy=True) if first and ema_init == "first" else next_ema(ema, h, beta)
    if active is not None:
        new = torch.where(active, new, ema.float())
        peak = torch.where(active, torch.maximum(peak.float(), new), peak.float())
    else:
        peak = torch.maximum(peak.float(), new)
    return new, peak, next_alpha(new, peak, schedule)


def schedule_traces(
    entropies: torch.Tensor, *, beta: float, ema_init: str = "zero", schedule: str = "switch"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""
    The schedule over a whole entropy sequence: [`schedule_step`] from EMA 0 and peak `-inf`, token by token.

    This is what V-Reason's decoding loop computes as it goes; on the entropies of plain decoding it gives the EMA
    and α the schedule *would* take (nothing is optimised).

    Args:
        entropies (`torch.Tensor` of shape `(..., tokens)`):
            H_0, H_1, ... along the last dimension (leading dimensions are independent sequences).
        beta (`float`), ema_init (`str`, *optional*, defaults to `"zero"`), schedule (`str`, *optional*, defaults
        to `"switch"`):
            As in [`schedule_step`].

    Returns:
        `tuple[torch.Tensor, torch.Tensor, torch.Tensor]`: `(emas, peaks, alphas)`, each of the shape of
        `entropies`, float32.
    """
    ema = torch.zeros(entropies.shape[:-1], device=entropies.device)
    peak = torch.full_like(ema, float("-inf"))
    emas, peaks, alphas = [], [], []
    for k in range(entropies.shape[-1]):
        ema, peak, alpha = schedule_step(
            ema, peak, entropies[..., k], first=k == 0, beta=beta, ema_init=ema_init, schedule=schedule
        )
        emas.append(ema)
        peaks.append(peak)
        alphas.append(alpha)
    if not emas:
        empty = torch.zeros(entropies.shape, device=entropies.device)
        return empty, empty.clone(), empty.clone()
    return torch.stack(emas, -1), torch.stack(peaks, -1), torch.stack(alphas, -1)


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
