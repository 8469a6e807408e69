"""Hand-computed tests of the protocol's metrics (`vreason_hf.eval.metrics`): MRA, WER and ROUGE-L."""

from __future__ import annotations

import pytest

from vreason_hf.eval import MRA_THRESHOLDS, mean_relative_accuracy, ocr_score, rouge_l, word_error_rate


def test_mra_thresholds_exact():
    assert [float(t) for t in MRA_THRESHOLDS] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


@pytest.mark.parametrize(
    ("pred", "target", "expected"),
    [
        # tolerances 1 - θ are 0.50, 0.45, 0.40, 0.35, 0.30, 0.25, 0.20, 0.15, 0.10, 0.05
        (10, 10, 1.0),  # rel 0 < every tolerance
        # rel |9-10|/10 = 0.1: 0.1 < 1-θ for θ <= 0.85 (0.1 < 0.15); θ = 0.90: 0.1 < 0.1 false -> 8/10
        (9, 10, 0.8),
        (11, 10, 0.8),  # same relative error above the target
        (12, 10, 0.6),  # rel 0.2 < 0.50 .. 0.25 (6 tolerances); 0.2 < 0.20 false
        (14, 10, 0.2),  # rel 0.4 < 0.50, 0.45 only
        (15, 10, 0.0),  # rel 0.5 < 0.5 false (strict)
        (7.3, 10, 0.5),  # rel ~0.27 < 0.50, 0.45, 0.40, 0.35, 0.30 (5 tolerances); not < 0.25
        (-9, -10, 0.8),  # |gt| in the denominator
        (0, 0, 1.0),  # gt = 0: |0| / 1e-8 = 0 < every tolerance
        (1e-9, 0, 0.8),  # gt = 0: ~1e-9 / 1e-8 ~ 0.1 (slightly above) -> as (9, 10)
        (1, 0, 0.0),  # gt = 0: 1 / 1e-8 = 1e8
        (float("inf"), 10, 0.0),
        (float("nan"), 10, 0.0),
    ],
)
def test_mean_relative_accuracy(pred, target, expected):
    assert mean_relative_accuracy(pred, target) == expected


@pytest.mark.parametrize(
    ("pred", "target", "exact", "video_r1"),
    [
        # float32: rel = float32(0.1) = 0.10000000149; tolerance at θ=0.9 is 1 - float32(0.9) = 0.10000002
        # -> passes in Video-R1's arithmetic (0.9) but not exactly (0.8).
        (9, 10, 0.8, 0.9),
        # rel exactly 0.35 (θ = 0.65): float32 tolerance 1 - 0.64999998 = 0.35000002 > float32(0.35) -> passes.
        (13, 20, 0.3, 0.4),
        # rel exactly 0.45 (θ = 0.55): float32 tolerance 1 - 0.55000001 = 0.44999999 == float32(0.45) -> fails.
        (11, 20, 0.1, 0.1),
        (12, 10, 0.6, 0.6),  # boundary at θ = 0.8: float32 tolerance 0.19999999 < rel -> fails in both
        (7.3, 10, 0.5, 0.5),  # off boundaries both agree
    ],
)
def test_mean_relative_accuracy_video_r1_float32(pred, target, exact, video_r1):
    assert mean_relative_accuracy(pred, target) == exact
    assert mean_relative_accuracy(pred, target, video_r1_float32=True) == video_r1


@pytest.mark.parametrize(
    ("pred", "ref", "wer"),
    [
        ("a b c", "a b c", 0.0),
        ("A  B c", "a b c", 0.0),  # case-folded, whitespace-split
        ("a x c", "a b c", 1 / 3),  # one substitution
        ("a b c d", "a b", 1.0),  # two insertions over 2 reference words
        ("", "a b", 1.0),  # two deletions
        ("", "", 0.0),
        ("a", "", 1.0),
    ],
)
def test_word_error_rate(pred, ref, wer):
    assert word_error_rate(pred, ref) == pytest.approx(wer)
    assert ocr_score(pred, ref) == pytest.approx(max(0.0, 1.0 - wer))


def test_ocr_score_clipped_at_zero():
    # 3 insertions over 1 reference word: WER = 3 -> score 0
    assert word_error_rate("a b c d", "a") == 3.0
    assert ocr_score("a b c d", "a") == 0.0


@pytest.mark.parametrize(
    ("pred", "ref", "expected"),
    [
        ("a b c d", "a c", 2 / 3),  # LCS 2: P = 2/4, R = 2/2 -> F1 = 2*0.5*1/1.5
        ("x y", "a b", 0.0),
        ("Hello, world!", "hello world", 1.0),  # punctuation and case ignored
        ("", "a", 0.0),
        ("a", "", 0.0),
    ],
)
def test_rouge_l(pred, ref, expected):
    assert rouge_l(pred, ref) == pytest.approx(expected)
