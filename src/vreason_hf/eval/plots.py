# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Entropy-trace plots in the style of the paper's Fig. 2, from evaluation records.

The top panel shows, per mode (plain decoding vs V-Reason), the mean entropy of the next-token distribution
against the generated-token index (thin line) and the mean of its EMA (thick line), with the EMA's peak marked:
the point where the switching rule turns from exploration (α = +1) to exploitation (α = −1). The bottom panel is
the mean α track. For plain decoding the α track is the value the rule *would* take on the base model's entropies.

Means at token index *t* are over the samples still generating at *t*; the curves stop where fewer than
``min_samples`` samples remain, so a few long answers do not dominate the tail.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

__all__ = ["MeanTraces", "mean_traces", "plot_entropy_traces", "post_peak_entropy"]

_TRACE_FIELDS = ("entropies", "ema_entropies", "alphas")
_LABELS = {"base": "base", "vreason": "V-Reason", "lite": "V-Reason Lite"}
_COLORS = {"base": "#4c72b0", "vreason": "#dd8452", "lite": "#55a868"}
_MODE_ORDER = ("base", "vreason", "lite")


@dataclass
class MeanTraces:
    """Per-token means of one mode's traces.

    Attributes:
        mode (`str`):
            The mode (``"base"``, ``"vreason"``, ...).
        num_samples (`int`):
            Number of records averaged.
        token_index (`np.ndarray`):
            ``0 .. T-1``, where ``T`` is the last index with at least ``min_samples`` samples.
        entropy (`np.ndarray`):
            Mean entropy (nats) at each index.
        ema (`np.ndarray`):
            Mean EMA of the entropy at each index.
        alpha (`np.ndarray`):
            Mean α at each index.
        count (`np.ndarray`):
            Number of samples still generating at each index.
        peak_index (`int | None`):
            Index of the maximum of ``ema`` (`None` when empty).
    """

    mode: str
    num_samples: int
    token_index: np.ndarray
    entropy: np.ndarray
    ema: np.ndarray
    alpha: np.ndarray
    count: np.ndarray
    peak_index: int | None


def _padded(rows: list[list[float | None]]) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = [np.nan if v is None else v for v in row]
    return out


def mean_traces(
    records: Iterable[Mapping], *, dataset: str | None = None, min_samples: int | None = None
) -> dict[str, MeanTraces]:
    """Average the per-token traces of evaluation records, per mode.

    Args:
        records (`Iterable[Mapping]`):
            Records with ``mode``, ``entropies``, ``ema_entropies`` and ``alphas`` (as written by
            :func:`~vreason_hf.eval.evaluate` or ``vreason eval``).
        dataset (`str`, *optional*):
            Only records of this dataset.
        min_samples (`int`, *optional*):
            Stop each curve where fewer samples are still generating; defaults to 10 % of the mode's samples
            (at least 1).

    Returns:
        `dict[str, MeanTraces]`: Per mode, base first, then V-Reason, Lite and any other mode.

    Raises:
        ValueError: If no record (of ``dataset``) has traces, or a record's traces have different lengths.
    """
    groups: dict[str, list[Mapping]] = {}
    datasets = set()
    for record in records:
        datasets.add(record.get("dataset"))
        if dataset is not None and record.get("dataset") != dataset:
            continue
        if not all(isinstance(record.get(name), list) for name in _TRACE_FIELDS):
            continue
        lengths = {len(record[name]) for name in _TRACE_FIELDS}
        if len(lengths) != 1:
            raise ValueError(
                f"Record {record.get('id')!r} ({record.get('mode')!r}) has traces of different lengths {sorted(lengths)}."
            )
        groups.setdefault(str(record.get("mode")), []).append(record)
    if not groups:
        if dataset is not None and dataset not in datasets:
            known = ", ".join(sorted(str(d) for d in datasets)) or "none"
            raise ValueError(f"No records of dataset {dataset!r}; the datasets are: {known}.")
        raise ValueError(
            "No record has per-token traces (`entropies`, `ema_entropies`, `alphas`); rerun the evaluation "
            "without `--no-traces`."
        )
    if min_samples is not None and (isinstance(min_samples, bool) or min_samples < 1):
        raise ValueError(f"`min_samples` must be a positive integer, got {min_samples!r}.")
    order = sorted(groups, key=lambda m: (_MODE_ORDER.index(m) if m in _MODE_ORDER else len(_MODE_ORDER), m))
    result = {}
    for mode in order:
        rows = groups[mode]
        entropy, ema, alpha = (_padded([r[name] for r in rows]) for name in _TRACE_FIELDS)
        count = (~np.isnan(entropy)).sum(0) if entropy.size else np.zeros(0, dtype=int)
        threshold = min_samples if min_samples is not None else max(1, math.ceil(0.1 * len(rows)))
        keep = int(np.flatnonzero(count >= threshold)[-1]) + 1 if (count >= threshold).any() else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns cannot occur below `keep`
            mean_h = np.nanmean(entropy[:, :keep], 0) if keep else np.zeros(0)
            mean_ema = np.nanmean(ema[:, :keep], 0) if keep else np.zeros(0)
            mean_alpha = np.nanmean(alpha[:, :keep], 0) if keep else np.zeros(0)
        peak = int(np.nanargmax(mean_ema)) if keep and not np.isnan(mean_ema).all() else None
        result[mode] = MeanTraces(
            mode=mode,
            num_samples=len(rows),
            token_index=np.arange(keep),
            entropy=mean_h,
            ema=mean_ema,
            alpha=mean_alpha,
            count=count[:keep],
            peak_index=peak,
        )
    return result


def post_peak_entropy(result: Any) -> float | None:
    """Mean entropy (nats) of the tokens after the EMA's peak: what V-Reason's exploit phase tries to lower.

    The peak is the argmax of the entropy EMA, as the plots mark it ([`mean_traces`]).

    Args:
        result (`Any`):
            One answer's per-token traces as attributes `entropies`, `ema_entropies` and `alphas` (lists), e.g. a
            [`~vreason_hf.eval.GenerationResult`].

    Returns:
        `float | None`: the mean, or `None` when there are no traces or no token follows the peak.
    """
    if not result.entropies:
        return None
    record = {"mode": "answer", **{name: getattr(result, name) for name in _TRACE_FIELDS}}
    (traces,) = mean_traces([record], min_samples=1).values()
    if traces.peak_index is None:
        return None
    tail = [value for value in traces.entropy[traces.peak_index + 1 :] if math.isfinite(value)]
    return sum(tail) / len(tail) if tail else None


def plot_entropy_traces(
    records: Iterable[Mapping],
    out_path: str | os.PathLike | None = None,
    *,
    dataset: str | None = None,
    min_samples: int | None = None,
    title: str | None = None,
    dpi: int = 150,
) -> tuple[Figure, dict[str, MeanTraces]]:
    """Plot mean entropy, its EMA (peak marked) and the α track against the token index, per mode (Fig. 2 style).

    Uses matplotlib's object-oriented API with the Agg canvas (no pyplot state, no display needed). Each curve's
    `gid` is ``"{mode}/entropy"``, ``"{mode}/ema"``, ``"{mode}/peak"`` (the marker) or ``"{mode}/alpha"``.

    Args:
        records (`Iterable[Mapping]`):
            Evaluation records with traces (see [`mean_traces`]).
        out_path (`str` or `os.PathLike`, *optional*):
            Where to save the figure (PNG, or any format matplotlib infers from the suffix).
        dataset (`str`, *optional*):
            Only records of this dataset.
        min_samples (`int`, *optional*):
            See [`mean_traces`].
        title (`str`, *optional*):
            Figure title; by default it names the dataset(s) and the sample counts.
        dpi (`int`, *optional*, defaults to 150):
            Resolution of the saved image.

    Returns:
        `tuple[Figure, dict[str, MeanTraces]]`: The figure and the plotted data, per mode.

    Raises:
        ImportError: If matplotlib is not installed.
        ValueError: See [`mean_traces`].
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("Plotting needs matplotlib: install it with `pip install matplotlib`.") from error

    records = list(records)
    traces = mean_traces(records, dataset=dataset, min_samples=min_samples)
    fig = Figure(figsize=(8.0, 5.6), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.2])
    length = max((len(d.token_index) for d in traces.values()), default=0)
    for rank, (mode, data) in enumerate(traces.items()):
        _draw_mode(top, bottom, mode, data, rank, length)
    _style_axes(top, bottom)
    if title is None:
        names = sorted(
            {str(r.get("dataset")) for r in records if dataset is None or r.get("dataset") == dataset}
        )
        title = f"Entropy of the next-token distribution ({', '.join(names)})"
    fig.suptitle(title, fontsize=11)
    if out_path is not None:
        fig.savefig(out_path, dpi=dpi)
        logger.debug("Saved the entropy plot to %s.", out_path)
    return fig, traces


def _draw_mode(top: Axes, bottom: Axes, mode: str, data: MeanTraces, rank: int, length: int) -> None:
    """One mode's curves: per-token entropy and its EMA (peak starred and annotated) on top, α below."""
    color = _COLORS.get(mode)
    label = _LABELS.get(mode, mode) + (f" (n={data.num_samples})" if data.num_samples > 1 else "")
    top.plot(data.token_index, data.entropy, color=color, alpha=0.35, linewidth=0.9, gid=f"{mode}/entropy")
    top.plot(data.token_index, data.ema, color=color, linewidth=2.2, label=f"{label}: EMA", gid=f"{mode}/ema")
    if data.peak_index is not None:
        x, y = data.peak_index, data.ema[data.peak_index]
        top.plot(
            [x],
            [y],
            marker="*",
            markersize=14,
            color=color,
            markeredgecolor="black",
            zorder=5,
            gid=f"{mode}/peak",
        )
        right = x > 0.75 * length  # keep the label inside the axes
        top.annotate(
            f"EMA peak @ {x}",
            (x, y),
            xytext=(-8 if right else 8, 10 + 12 * rank),
            textcoords="offset points",
            ha="right" if right else "left",
            fontsize=8,
            color=color,
        )
        for axis in (top, bottom):
            axis.axvline(x, color=color, linestyle=":", linewidth=1.0)
    bottom.step(
        data.token_index,
        data.alpha,
        where="post",
        color=color,
        linewidth=1.6,
        linestyle="--" if mode == "base" else "-",
        label=_LABELS.get(mode, mode) + (" (would-be)" if mode == "base" else ""),
        gid=f"{mode}/alpha",
    )


def _style_axes(top: Axes, bottom: Axes) -> None:
    top.plot([], [], color="grey", alpha=0.35, linewidth=0.9, label="per-token entropy")
    top.set_ylabel("entropy (nats)")
    top.legend(fontsize=8, loc="best")
    top.grid(alpha=0.3)
    bottom.set_ylabel("mean α")
    bottom.set_ylim(-1.15, 1.15)
    bottom.set_yticks([-1, 0, 1])
    bottom.axhline(0, color="grey", linewidth=0.6)
    bottom.set_xlabel("generated token index")
    bottom.legend(fontsize=8, loc="lower left")
    bottom.grid(alpha=0.3)
