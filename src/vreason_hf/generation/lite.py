# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""V-Reason Lite (SPEC section 5): after prefill, drop the lowest-value-norm video rows from every layer's KV cache."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

__all__ = ["prune_video_rows"]


def _drop_order(values: torch.Tensor, rows: torch.Tensor, count: int) -> torch.Tensor:
    """Positions (a subset of `rows`) of the `count` rows whose value norm, averaged over KV heads, is lowest."""
    norms = values[:, rows].float().norm(dim=-1).mean(0)  # (num_rows,)
    order = torch.sort(norms, stable=True).indices
    return rows[order[:count]]


def prune_video_rows(
    layers: list[DynamicLayer],
    rows: torch.Tensor,
    valid: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    prune_ratio: float,
    scope: str = "per_layer",
    target_index: int = -1,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    r"""
    Remove `round(prune_ratio · n)` of the `n` controlled rows of every sample from the keys and values of every
    layer (in place on the cache layers), keeping the attention mask consistent.

    Args:
        layers (`list[DynamicLayer]`):
            The cache layers (all of the same sequence length).
        rows (`torch.LongTensor` of shape `(batch, num_rows)`), valid (`torch.BoolTensor` of the same shape):
            Cache positions of each sample's video rows, and which entries are real.
        attention_mask (`torch.Tensor` of shape `(batch, seq_len)`, *optional*):
            The 2D mask generate keeps in its model kwargs (`None` means all ones).
        prune_ratio (`float`):
            Share of each sample's video rows to remove; each sample keeps exactly `round((1 - prune_ratio) · n)`.
        scope (`str`, *optional*, defaults to `"per_layer"`):
            `"per_layer"` ranks rows by each layer's own value norms (mean over KV heads); `"shared"` uses the
            ranking of the layer `target_index` for every layer.
        target_index (`int`, *optional*, defaults to -1):
            The controlled layer, whose surviving video rows are returned.

    Returns:
        `(attention_mask, rows, valid)`: the new 2D mask (`None` if it stays all ones) and the positions of the
        surviving video rows in the pruned cache of `layers[target_index]`. Samples that drop fewer rows than
        others are left-padded with masked slots so all samples keep one sequence length.
    """
    batch, seq_len = layers[0].keys.shape[0], layers[0].keys.shape[-2]
    device = rows.device
    counts = valid.sum(-1).tolist()
    drops = [n - round((1.0 - prune_ratio) * n) for n in counts]
    new_len = seq_len - min(drops)
    mask = (
        attention_mask
        if attention_mask is not None
        else torch.ones(batch, seq_len, dtype=torch.long, device=device)
    )
    target = layers[target_index]

    shared_drop = None
    if scope == "shared":
        shared_drop = [_drop_order(target.values[b], rows[b, valid[b]], drops[b]) for b in range(batch)]

    new_mask = None
    new_rows = torch.zeros(batch, max(1, max(counts) - min(drops)), dtype=torch.long, device=device)
    new_valid = torch.zeros_like(new_rows, dtype=torch.bool)
    for layer in layers:
        index = torch.zeros(batch, new_len, dtype=torch.long, device=device)
        real = torch.zeros(batch, new_len, dtype=torch.bool, device=device)
        for b in range(batch):
            video = rows[b, valid[b]]
            dropped = (
                shared_drop[b] if shared_drop is not None else _drop_order(layer.values[b], video, drops[b])
            )
            keep = torch.ones(seq_len, dtype=torch.bool, device=device)
            keep[dropped] = False
            kept = keep.nonzero().squeeze(-1)  # sorted old positions
            offset = new_len - kept.numel()  # left padding for samples that dropped fewer rows
            index[b, offset:] = kept
            real[b, offset:] = True
            if layer is target:
                surviving = offset + torch.searchsorted(kept, video[keep[video]])
                # Pad with distinct positions that are not controlled rows (padding must never alias a real row).
                others = torch.ones(new_len, dtype=torch.bool, device=device)
                others[surviving] = False
                padding = others.nonzero().squeeze(-1)[: new_rows.shape[1] - surviving.numel()]
                new_rows[b] = torch.cat([surviving, padding])
                new_valid[b, : surviving.numel()] = True
        layer_mask = torch.where(real, mask.gather(1, index), torch.zeros_like(index, dtype=mask.dtype))
        if new_mask is None:
            new_mask = layer_mask
        elif not torch.equal(new_mask, layer_mask):
            raise RuntimeError(
                "V-Reason Lite: pruning produced different attention masks across layers; padding must precede "
                "the video tokens (left padding)."
            )
        gather = index[:, None, :, None]
        layer.keys = layer.keys.gather(2, gather.expand(-1, layer.keys.shape[1], -1, layer.keys.shape[-1]))
        layer.values = layer.values.gather(
            2, gather.expand(-1, layer.values.shape[1], -1, layer.values.shape[-1])
        )

    if attention_mask is None and bool(new_mask.all()):
        new_mask = None
    return new_mask, new_rows, new_valid
