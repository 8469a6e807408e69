"""Entropy-trace plots (`vreason_hf.eval.plots`, paper Fig. 2 style): the plotted curves are the records' per-token means."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from vreason_hf.eval import mean_traces, plot_entropy_traces, post_peak_entropy

pytest.importorskip("matplotlib")


def _record(mode: str, entropies: list[float], *, dataset: str = "toy", beta: float = 0.5) -> dict:
    ema, peak, emas, alphas = 0.0, -math.inf, [], []
    for h in entropies:
        ema = beta * ema + (1 - beta) * h
        peak = max(peak, ema)
        emas.append(ema)
        alphas.append(-1.0 if ema < peak else 1.0)
    return {"dataset": dataset, "mode": mode, "entropies": entropies, "ema_entropies": emas, "alphas": alphas}


@pytest.fixture
def records() -> list[dict]:
    return [
        _record("base", [1.0, 3.0, 2.0, 0.5, 0.5, 0.2]),
        _record("base", [2.0, 1.0, 3.0, 1.0]),
        _record("vreason", [1.0, 2.0, 0.5]),
        _record("vreason", [3.0, 2.0, 1.0, 0.5, 0.1]),
        _record("vreason", [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]),
        {"dataset": "toy", "mode": "vreason", "entropies": None},  # written with --no-traces: ignored
    ]


def _hand_mean(rows: list[list[float]], index: int) -> float:
    values = [row[index] for row in rows if len(row) > index]
    return sum(values) / len(values)


def test_mean_traces_are_per_token_means_over_the_samples_still_generating(records):
    traces = mean_traces(records, min_samples=1)
    assert list(traces) == ["base", "vreason"]
    for mode, data in traces.items():
        rows = [r for r in records if r["mode"] == mode and r["entropies"] is not None]
        assert data.num_samples == len(rows)
        assert len(data.token_index) == max(len(r["entropies"]) for r in rows)
        for name, field in (("entropy", "entropies"), ("ema", "ema_entropies"), ("alpha", "alphas")):
            expected = [_hand_mean([r[field] for r in rows], t) for t in range(len(data.token_index))]
            np.testing.assert_allclose(getattr(data, name), expected, rtol=1e-12)
        assert data.count.tolist() == [sum(len(r["entropies"]) > t for r in rows) for t in data.token_index]
        assert data.peak_index == int(np.argmax(data.ema))


def test_min_samples_cuts_the_tail_where_few_samples_remain(records):
    traces = mean_traces(records, min_samples=2)
    assert len(traces["base"].token_index) == 4  # only the 6-token sample goes past index 3
    assert len(traces["vreason"].token_index) == 5
    assert (traces["vreason"].count >= 2).all()


def test_plot_writes_a_png_whose_curves_are_the_mean_traces(records, tmp_path):
    out = tmp_path / "fig.png"
    fig, traces = plot_entropy_traces(records, out, min_samples=1, title="toy")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 20_000 < out.stat().st_size < 2_000_000
    width, height = fig.get_size_inches() * fig.dpi
    assert width > height > 0
    top, bottom = fig.axes
    lines = {line.get_gid(): line for axis in fig.axes for line in axis.get_lines() if line.get_gid()}
    assert set(lines) == {f"{mode}/{kind}" for mode in traces for kind in ("entropy", "ema", "peak", "alpha")}
    for mode, data in traces.items():
        for kind, values in (("entropy", data.entropy), ("ema", data.ema), ("alpha", data.alpha)):
            np.testing.assert_allclose(lines[f"{mode}/{kind}"].get_xdata(), data.token_index)
            np.testing.assert_allclose(lines[f"{mode}/{kind}"].get_ydata(), values)
        assert lines[f"{mode}/ema"].axes is top and lines[f"{mode}/alpha"].axes is bottom
        # The star sits on the EMA's maximum.
        assert lines[f"{mode}/peak"].get_xdata().tolist() == [data.peak_index]
        assert lines[f"{mode}/peak"].get_ydata()[0] == pytest.approx(data.ema.max())


def test_plot_filters_by_dataset(records, tmp_path):
    other = [_record("base", [5.0, 5.0], dataset="other")]
    _, traces = plot_entropy_traces(records + other, tmp_path / "o.png", dataset="other", min_samples=1)
    assert list(traces) == ["base"]
    np.testing.assert_allclose(traces["base"].entropy, [5.0, 5.0])


def test_errors_name_the_problem(records):
    with pytest.raises(ValueError, match="no-traces"):
        mean_traces([{"dataset": "toy", "mode": "base"}])
    with pytest.raises(ValueError, match="No records of dataset 'missing'; the datasets are: toy"):
        mean_traces(records, dataset="missing")
    with pytest.raises(ValueError, match="different lengths"):
        mean_traces([{"mode": "base", "entropies": [1.0], "ema_entropies": [1.0, 2.0], "alphas": [1.0]}])
    with pytest.raises(ValueError, match="`min_samples` must be a positive integer"):
        mean_traces(records, min_samples=0)


def _traced(entropies: list[float | None], ema: list[float]) -> SimpleNamespace:
    return SimpleNamespace(entropies=entropies, ema_entropies=ema, alphas=[1.0] * len(entropies))


def test_post_peak_entropy_is_the_mean_after_the_ema_argmax():
    # EMA peaks at index 2, so the tokens after it are indices 3 and 4.
    assert post_peak_entropy(_traced([2.0, 4.0, 3.0, 1.0, 0.5], [0.1, 0.4, 0.5, 0.45, 0.4])) == pytest.approx(
        0.75
    )
    assert post_peak_entropy(_traced([1.0, 2.0], [0.1, 0.2])) is None  # still rising at the end
    assert post_peak_entropy(_traced([1.0, None, 3.0, 5.0], [0.3, 0.2, 0.1, 0.1])) == 4.0
    assert post_peak_entropy(_traced([], [])) is None
