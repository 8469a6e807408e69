"""Hand-computed summaries of results records (`vreason_hf.eval.summary`)."""

from __future__ import annotations

import re

import pytest

from vreason_hf.eval import summarize, summary_to_markdown


def _rec(dataset, mode, problem_type, score, tokens=None, seconds=None, memory=None, parsable=True, **extra):
    return {
        "dataset": dataset,
        "mode": mode,
        "problem_type": problem_type,
        "score": score,
        "output_tokens": tokens,
        "seconds": seconds,
        "peak_memory_mb": memory,
        "parsable": parsable,
        **extra,
    }


def _records() -> list[dict]:
    return [
        _rec("vsibench", "base", "multiple choice", 1.0, 100, 1.0, 1000.0),
        _rec("vsibench", "base", "multiple choice", 0.0, 200, 3.0, 1500.0, parsable=False),
        _rec("vsibench", "base", "numerical", 1.0, 300, 2.0, None),
        _rec("vsibench", "base", "regression", 0.8, 400, None, 1200.0),
        _rec("vsibench", "base", "regression", 0.2, None, 4.0, None),
        _rec("vsibench", "base", "OCR", 0.0, 50, None, None, secondary=0.5),
        _rec("vsibench", "base", "free-form", 0.0, 150, None, None, secondary=0.25),
        _rec("mvbench", "base", "multiple choice", 1.0, 10, 1.0, 900.0),
        _rec("vsibench", "vreason", "multiple choice", 0.0, 20, 2.0, 800.0),
    ]


def test_summarize_hand_computed():
    summary = summarize(_records())
    base = summary["per_dataset"]["vsibench"]["base"]
    assert base == {
        "n": 7,
        "n_failed": 0,
        "n_unparsable": 1,
        "n_accuracy": 3,
        "accuracy": pytest.approx(2 / 3),  # (1 + 0 + 1) / 3; OCR and free-form excluded
        "n_regression": 2,
        "mra": pytest.approx(0.5),  # (0.8 + 0.2) / 2
        "n_ocr": 1,
        "ocr_score": 0.5,
        "n_free_form": 1,
        "rouge_l": 0.25,
        "mean_output_tokens": 200.0,  # (100 + 200 + 300 + 400 + 50 + 150) / 6, None skipped
        "mean_seconds": 2.5,  # (1 + 3 + 2 + 4) / 4
        "max_peak_memory_mb": 1500.0,
    }
    assert summary["per_dataset"]["mvbench"]["base"]["accuracy"] == 1.0
    assert summary["per_dataset"]["mvbench"]["base"]["mra"] is None
    assert summary["per_dataset"]["mvbench"]["base"]["ocr_score"] is None
    assert summary["per_dataset"]["vsibench"]["vreason"]["accuracy"] == 0.0
    assert list(summary["per_dataset"]) == ["vsibench", "mvbench"]
    # unweighted mean over datasets: base (2/3 + 1) / 2 = 5/6; vreason only vsibench
    assert summary["macro_accuracy"]["base"]["accuracy"] == pytest.approx(5 / 6)
    assert summary["macro_accuracy"]["base"]["datasets"] == ["vsibench", "mvbench"]
    assert summary["macro_accuracy"]["vreason"] == {"accuracy": 0.0, "datasets": ["vsibench"]}


def test_summary_to_markdown():
    text = summary_to_markdown(summarize(_records()))
    assert text.endswith("\n")
    assert (
        "| vsibench | base | 7 | 66.7 (3) | 50.0 (2) | 50.0 (1) | 25.0 (1) | 1 | 0 | 200.0 | 2.50 | 1500 |"
        in text
    )
    assert "| mvbench | base | 1 | 100.0 (1) | – | – | – | 0 | 0 | 10.0 | 1.00 | 900 |" in text
    assert "| base | 83.3 | vsibench, mvbench |" in text
    assert "| vreason | 0.0 | vsibench |" in text


def test_summarize_empty():
    assert summarize([]) == {"per_dataset": {}, "macro_accuracy": {}}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {k: v for k, v in _rec("d", "m", "numerical", 1.0).items() if k != "seconds"},
            "record 0: missing field `seconds`",
        ),
        (_rec("d", "m", "yes/no", 1.0), "record 0: unknown `problem_type` 'yes/no'"),
        (_rec("d", "m", "numerical", None), "record 0: field `score` must be a finite number"),
        (_rec("d", "m", "numerical", 1.0, parsable=1), "record 0: field `parsable` must be a bool"),
        (
            _rec("d", "m", "numerical", 1.0, tokens="many"),
            "record 0: field `output_tokens` must be a finite number or None",
        ),
    ],
)
def test_summarize_validation(record, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        summarize([record])
