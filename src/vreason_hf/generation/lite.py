# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""V-Reason Lite (SPEC section 5): after prefill, drop the lowest-value-norm video rows from every layer's KV cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicLayer

__all__ = ["PrunedCache", "prune_cache", "prune_last_position_mask"]


@dataclass
class PrunedCache:
    r"""
    What [`prune_cache`] did.

    Args:
        attention_mask (`torch.Tensor` of shape `(batch, new_len)` or `None`):
            The new 2D mask (`None` if it stays all ones).
        rows (`torch.LongTensor` of shape `(batch, num_rows)`), valid (`torch.BoolTensor` of the same shape):
            Positions of the surviving controlled rows in the pruned cache of the target layer (left-aligned,
            padded with distinct positions that are not controlled rows).
        index (`torch.LongTensor` of shape `(batch, new_len)`):
            For every slot of the target layer's pruned cache, the position it held before pruning.
        real (`torch.BoolTensor` of shape `(batch, new_len)`):
            False on the slots added on the left of samples that dropped fewer rows than others.
        dropped (`bool`):
            Whether any row was removed.
    """

    attention_mask: torch.Tensor | None
    rows: torch.Tensor
    valid: torch.Tensor
    index: torch.Tensor
    real: torch.Tensor
    dropped: bool


def _drop_order(values: torch.Tensor, rows: torch.Tensor, count: int) -> torch.Tensor:
    """Positions (a subset of `rows`) of the `count` rows whose value norm, averaged over KV heads, is lowest."""
    norms = values[:, rows].float().norm(dim=-1).mean(0)  # (num_rows,)
    order = torch.sort(norms, stable=True).indices
    return rows[order[:count]]


def prune_cache(
    layers: list[DynamicLayer],
    rows: torch.Tensor,
    valid: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    prune_ratio: float,
    scope: str = "per_layer",
    target_index: int = -1,
    controlled: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> PrunedCache:
    r"""
    Remove `round(prune_ratio · n)` of the `n` video rows of every sample from the keys and values of every layer
    (in place on the cache layers), keeping the attention mask consistent.

    Args:
        layers (`list[DynamicLayer]`):
            The cache layers (all of the same sequence length).
        rows (`torch.LongTensor` of shape `(batch, num_rows)`), valid (`torch.BoolTensor` of the same shape):
            Cache positions of each sample's video rows (the rows that may be dropped), and which entries are real.
        attention_mask (`torch.Tensor` of shape `(batch, seq_len)`, *optional*):
            The 2D mask generate keeps in its model kwargs (`None` means all ones).
        prune_ratio (`float`):
            Share of each sample's video rows to remove; each sample keeps exactly `round((1 - prune_ratio) · n)`.
        scope (`str`, *optional*, defaults to `"per_layer"`):
            `"per_layer"` ranks rows by each layer's own value norms (mean over KV heads); `"shared"` uses the
            ranking of the layer `target_index` for every layer.
        target_index (`int`, *optional*, defaults to -1):
            The controlled layer, whose surviving controlled rows are returned.
        controlled (`tuple[torch.Tensor, torch.Tensor]`, *optional*):
            `(rows, valid)` of the controller's rows, a superset of the video rows (e.g. every prompt row with
            `controller_scope="prompt"`); defaults to the video rows.

    Returns:
        [`PrunedCache`]: the new mask, the surviving controlled rows of `layers[target_index]` and its slot map.
        Samples that drop fewer rows than others are left-padded with masked slots so all samples keep one
        sequence length.
    """
    batch, seq_len = layers[0].keys.shape[0], layers[0].keys.shape[-2]
    device = rows.device
    controlled_rows, controlled_valid = (rows, valid) if controlled is None else controlled
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
    for layer in layers:
        drop = (
            shared_drop
            if shared_drop is not None
            else [_drop_order(layer.values[b], rows[b, valid[b]], drops[b]) for b in range(batch)]
        )
        keep, index, real = _slot_map(drop, seq_len, new_len)
        if layer is target:
            target_keep, target_index_map, target_real = keep, index, real
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
    width = max(1, max(int(n) - d for n, d in zip(controlled_valid.sum(-1).tolist(), drops, strict=True)))
    new_rows, new_valid = _surviving_rows(controlled_rows, controlled_valid, target_keep, new_len, width)
    return PrunedCache(new_mask, new_rows, new_valid, target_index_map, target_real, max(drops) > 0)


def _slot_map(
    drop: list[torch.Tensor], seq_len: int, new_len: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    One layer's pruning: `keep` `(batch, seq_len)`, the old positions that stay; `index` `(batch, new_len)`, the old
    position each new slot holds; `real` `(batch, new_len)`, False on the left slots added to samples that drop
    fewer rows than others (they hold position 0, masked).
    """
    batch, device = len(drop), drop[0].device
    keep = torch.ones(batch, seq_len, dtype=torch.bool, device=device)
    index = torch.zeros(batch, new_len, dtype=torch.long, device=device)
    real = torch.zeros(batch, new_len, dtype=torch.bool, device=device)
    for b, dropped in enumerate(drop):
        keep[b, dropped] = False
        kept = keep[b].nonzero().squeeze(-1)  # sorted old positions
        offset = new_len - kept.numel()  # left padding for samples that dropped fewer rows
        index[b, offset:] = kept
        real[b, offset:] = True
    return keep, index, real


def _surviving_rows(
    rows: torch.Tensor, valid: torch.Tensor, keep: torch.Tensor, new_len: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions in the pruned cache of the controlled `rows` that `keep` keeps, left-aligned, padded to `width`."""
    batch = keep.shape[0]
    new_rows = torch.zeros(batch, width, dtype=torch.long, device=rows.device)
    new_valid = torch.zeros_like(new_rows, dtype=torch.bool)
    for b in range(batch):
        kept = keep[b].nonzero().squeeze(-1)
        ours = rows[b, valid[b]]
        surviving = new_len - kept.numel() + torch.searchsorted(kept, ours[keep[b, ours]])
        # Pad with distinct positions that are not controlled rows (padding must never alias a real row).
        others = torch.ones(new_len, dtype=torch.bool, device=rows.device)
        others[surviving] = False
        padding = others.nonzero().squeeze(-1)[: width - surviving.numel()]
        new_rows[b] = torch.cat([surviving, padding])
        new_valid[b, : surviving.numel()] = True
    return new_rows, new_valid


def prune_last_position_mask(
    mask: torch.Tensor | None, index: torch.Tensor, real: torch.Tensor, attn_implementation: str | None = None
) -> torch.Tensor | None:
    r"""
    The attention mask a layer received for one query position, rewritten for a cache pruned by [`prune_cache`].

    Args:
        mask (`torch.Tensor`, *optional*):
            The recorded mask: 4D `(batch, 1, 1, seq_len)` (boolean, True = attend, or additive float) or 2D
            `(batch, seq_len)` (flash attention, 1 = attend); `None` for "attend to everything".
        index (`torch.LongTensor` of shape `(batch, new_len)`), real (`torch.BoolTensor` of the same shape):
            [`PrunedCache.index`] and [`PrunedCache.real`].
        attn_implementation (`str`, *optional*):
            The model's attention implementation; decides the mask's form when `mask` is `None` and pruning added
            masked slots.

    Returns:
        The mask over the pruned cache: the old entry of every kept slot, "masked" on the added slots.
    """
    if mask is None:
        if bool(real.all()):
            return None
        if attn_implementation is not None and "flash" in attn_implementation:
            return real.long()
        if attn_implementation == "eager":
            return torch.zeros(real.shape, dtype=torch.float32, device=real.device).masked_fill(
                ~real, torch.finfo(torch.float32).min
            )[:, None, None, :]
        return real[:, None, None, :]
    if mask.dim() == 2:
        return torch.where(real, mask.gather(1, index), torch.zeros_like(index, dtype=mask.dtype))
    mask = mask.expand(index.shape[0], *mask.shape[1:])
    gathered = mask.gather(3, index[:, None, None, :].expand(-1, mask.shape[1], mask.shape[2], -1))
    if mask.dtype == torch.bool:
        masked = torch.zeros((), dtype=torch.bool, device=mask.device)
    else:
        masked = torch.tensor(torch.finfo(mask.dtype).min, dtype=mask.dtype, device=mask.device)
    return torch.where(real[:, None, None, :], gathered, masked)
