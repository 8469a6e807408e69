"""Hand-computed tests of the model-free Video-R1-compatible evaluation protocol (SPEC.md section 7)."""

from __future__ import annotations

import json
import re

import pytest

from vreason_hf.eval import (
    METRIC_BY_PROBLEM_TYPE,
    MRA_THRESHOLDS,
    PROBLEM_TYPES,
    THINK_INSTRUCTION,
    TYPE_SUFFIXES,
    ScoreResult,
    build_prompt,
    extract_answer,
    load_samples,
    mean_relative_accuracy,
    ocr_score,
    parse_number,
    rouge_l,
    sample_id,
    score_sample,
    score_sample_detailed,
    secondary_score,
    summarize,
    summary_to_markdown,
    word_error_rate,
)


def _sample(problem_type: str, solution: str, **extra) -> dict:
    return {
        "problem": "Q?",
        "problem_type": problem_type,
        "solution": f"<answer>{solution}</answer>",
        **extra,
    }


# --------------------------------------------------------------------------------------------- prompt


def test_prompt_multiple_choice_structure():
    sample = {"problem": "Which animal?", "problem_type": "multiple choice", "options": ["A. cat", "B. dog"]}
    # problem directly followed by "Options:\n", every option followed by "\n", then "\n" + instruction.
    expected = (
        "Which animal?Options:\nA. cat\nB. dog\n"
        + "\n"
        + THINK_INSTRUCTION
        + TYPE_SUFFIXES["multiple choice"]
    )
    assert build_prompt(sample) == expected


@pytest.mark.parametrize("problem_type", ["numerical", "regression", "OCR", "free-form"])
def test_prompt_other_types_use_problem_only(problem_type):
    sample = {"problem": "How many chairs?", "problem_type": problem_type, "options": ["A. 1"]}
    text = build_prompt(sample)
    assert text == "How many chairs?\n" + THINK_INSTRUCTION + TYPE_SUFFIXES[problem_type]
    assert "Options:" not in text


def test_prompt_instruction_and_suffix_content():
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        assert tag in THINK_INSTRUCTION
    assert set(TYPE_SUFFIXES) == set(PROBLEM_TYPES)
    for suffix in TYPE_SUFFIXES.values():
        assert suffix.startswith(" ")
        assert "<answer> </answer>" in suffix
    assert "letter" in TYPE_SUFFIXES["multiple choice"]
    assert "42 or 3.14" in TYPE_SUFFIXES["numerical"]
    assert TYPE_SUFFIXES["numerical"] == TYPE_SUFFIXES["regression"]
    assert "transcri" in TYPE_SUFFIXES["OCR"]
    assert "text" in TYPE_SUFFIXES["free-form"]


def test_prompt_unknown_type_raises():
    with pytest.raises(
        ValueError, match=r"Unknown `problem_type` 'yes/no'; allowed values are: 'multiple choice'"
    ):
        build_prompt({"problem": "Q?", "problem_type": "yes/no"})


def test_prompt_multiple_choice_needs_options():
    with pytest.raises(ValueError, match="missing the required field `options`"):
        build_prompt({"problem": "Q?", "problem_type": "multiple choice"})
    with pytest.raises(ValueError, match="`options` must be a non-empty list of strings"):
        build_prompt({"problem": "Q?", "problem_type": "multiple choice", "options": []})


def test_prompt_missing_problem_raises():
    with pytest.raises(ValueError, match="missing the required field `problem`"):
        build_prompt({"problem_type": "numerical"})


# ----------------------------------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>hmm</think><answer>B</answer>", "B"),
        ("<answer>\n   B  \n</answer>", "B"),  # surrounding whitespace and newlines stripped
        ("<answer>line one\nline two</answer>", "line one\nline two"),  # DOTALL: multiline content kept
        ("  The answer is B.  ", "The answer is B."),  # no tags: whole text, stripped
        ("<answer>   </answer> so B", "<answer>   </answer> so B"),  # empty block: whole text
        ("<answer>A</answer> wait <answer>C</answer>", "A"),  # several blocks: the first one
        ("<answer></answer><answer>C</answer>", "<answer></answer><answer>C</answer>"),  # first is empty
        ("<answer>A", "<answer>A"),  # unclosed tag: no match
        ("", ""),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


# ------------------------------------------------------------------------------------------------ MRA


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


# ---------------------------------------------------------------------------------------------- scores


@pytest.mark.parametrize(
    ("output", "solution", "expected"),
    [
        ("<think>..</think><answer>B</answer>", "B", 1.0),
        ("<answer> B </answer>", "B", 1.0),
        ("<answer>b</answer>", "B", 0.0),  # case-sensitive
        ("<answer>B.</answer>", "B", 0.0),
        ("The answer is B", "B", 0.0),  # no tags: whole text compared
        ("B", "B", 1.0),  # no tags, bare letter
    ],
)
def test_score_multiple_choice(output, solution, expected):
    sample = _sample("multiple choice", solution, options=["A. x", "B. y", "C. z"])
    assert score_sample(sample, output) == expected


def test_multiple_choice_parsable():
    sample = _sample("multiple choice", "B", options=["A. x", "B. y", "C. z"])
    assert score_sample_detailed(sample, "<answer>C</answer>").parsable  # an option letter, wrong
    assert not score_sample_detailed(sample, "<answer>D</answer>").parsable  # not an option
    assert not score_sample_detailed(sample, "<answer>B.</answer>").parsable
    unlabeled = _sample("multiple choice", "B", options=["x", "y"])  # labels unreadable: any one letter
    assert score_sample_detailed(unlabeled, "<answer>D</answer>").parsable
    assert not score_sample_detailed(unlabeled, "<answer>DE</answer>").parsable


@pytest.mark.parametrize(
    ("output", "solution", "expected"),
    [
        ("<answer>42</answer>", "42", 1.0),
        ("<answer>3</answer>", "3.0", 0.0),  # only the target has "." -> 0 (Video-R1 quirk)
        ("<answer>3.0</answer>", "3", 0.0),  # only the prediction has "."
        ("<answer>1,000</answer>", "1000", 0.0),  # only the prediction has ","
        ("<answer>1,000.5</answer>", "1000.5", 1.0),  # both have a separator; "," removed -> equal
        ("<answer>3.14159</answer>", "3.14", 1.0),  # round(3.14159, 2) = 3.14
        ("<answer>3.004</answer>", "3.0", 1.0),  # round -> 3.0 == 3.0
        ("<answer>3.2</answer>", "3.14", 0.0),
        ("<answer>forty-two</answer>", "42", 0.0),  # unparsable
        ("<answer>41</answer>", "42", 0.0),
    ],
)
def test_score_numerical(output, solution, expected):
    assert score_sample(_sample("numerical", solution), output) == expected


def test_numerical_parsable_flag():
    result = score_sample_detailed(_sample("numerical", "42"), "<answer>forty-two</answer>")
    assert result == ScoreResult(0.0, "forty-two", "42", False, True, "accuracy", None)
    result = score_sample_detailed(_sample("numerical", "3.0"), "no tags 3")
    assert (result.score, result.parsable, result.answer_tagged) == (0.0, False, False)


@pytest.mark.parametrize(
    ("output", "solution", "expected"),
    [
        ("<answer>9</answer>", "10", 0.8),  # see test_mean_relative_accuracy
        ("<answer>10.0</answer>", "10", 1.0),  # no decimal-ness check for regression
        ("<answer>1,000</answer>", "1000", 1.0),  # "," removed before parsing
        ("<answer>15</answer>", "10", 0.0),
        ("<answer>about ten</answer>", "10", 0.0),  # unparsable
        ("<answer>inf</answer>", "10", 0.0),  # non-finite treated as unparsable
    ],
)
def test_score_regression(output, solution, expected):
    result = score_sample_detailed(_sample("regression", solution), output)
    assert result.score == expected
    assert result.metric == "mra"


def test_score_regression_video_r1_float32():
    sample = _sample("regression", "10")
    assert score_sample(sample, "<answer>9</answer>") == 0.8
    assert score_sample(sample, "<answer>9</answer>", video_r1_float32=True) == 0.9
    assert not score_sample_detailed(sample, "<answer>inf</answer>").parsable


def test_ocr_and_free_form_score_zero_with_secondary():
    ocr = _sample("OCR", "hello there world")
    result = score_sample_detailed(ocr, "<answer>hello world</answer>")
    # one deletion over 3 reference words: WER = 1/3, 1 - WER = 2/3; accuracy score stays 0
    assert result.score == 0.0
    assert result.metric == "wer"
    assert result.secondary == pytest.approx(2 / 3)
    assert secondary_score(ocr, "<answer>hello world</answer>") == pytest.approx(2 / 3)

    free = _sample("free-form", "the cat is on the mat")
    # LCS("the cat sat on the mat", "the cat is on the mat") = 5 tokens; P = R = 5/6 -> F1 = 5/6
    assert score_sample(free, "<answer>The cat sat on the mat.</answer>") == 0.0
    assert secondary_score(free, "<answer>The cat sat on the mat.</answer>") == pytest.approx(5 / 6)
    assert score_sample_detailed(free, "x").metric == "rouge_l"
    assert not score_sample_detailed(free, "<answer> </answer>").parsable  # empty block: no answer
    assert not score_sample_detailed(free, "<answer>a cat").parsable  # unclosed block: no answer
    assert score_sample_detailed(free, "a cat on a mat").parsable  # untagged text is still an answer


def test_secondary_score_none_for_scored_types():
    assert secondary_score(_sample("multiple choice", "A", options=["A. x"]), "<answer>A</answer>") is None
    assert secondary_score(_sample("numerical", "1"), "<answer>1</answer>") is None
    assert secondary_score(_sample("regression", "1"), "<answer>1</answer>") is None


def test_metric_by_problem_type():
    assert METRIC_BY_PROBLEM_TYPE == {
        "multiple choice": "accuracy",
        "numerical": "accuracy",
        "regression": "mra",
        "OCR": "wer",
        "free-form": "rouge_l",
    }


def test_score_unknown_type_and_missing_solution():
    with pytest.raises(ValueError, match="Unknown `problem_type` 'boolean'"):
        score_sample(_sample("boolean", "yes"), "<answer>yes</answer>")
    with pytest.raises(ValueError, match="missing the required field `solution`"):
        score_sample({"problem_type": "numerical"}, "<answer>1</answer>")


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42.0),
        (" 3.5 ", 3.5),
        ("1,000", 1000.0),
        ("-2", -2.0),
        ("1e3", 1000.0),
        ("abc", None),
        ("nan", None),
    ],
)
def test_parse_number(text, expected):
    assert parse_number(text) == expected


# ----------------------------------------------------------------------------------------------- data


def _record(**overrides) -> dict:
    record = {
        "problem_id": 1,
        "problem": "How many chairs?",
        "problem_type": "numerical",
        "solution": "<answer>4</answer>",
        "path": "./vsibench/a.mp4",
        "data_type": "video",
    }
    record.update(overrides)
    return record


def test_load_samples_json_and_jsonl(tmp_path):
    records = [
        _record(),
        _record(
            problem_id=2,
            problem_type="multiple choice",
            options=["A. 1", "B. 2"],
            solution="<answer>B</answer>",
        ),
    ]
    json_path = tmp_path / "eval_x.json"
    json_path.write_text(json.dumps(records), encoding="utf-8")
    assert load_samples(json_path) == records

    jsonl_path = tmp_path / "eval_x.jsonl"
    jsonl_path.write_text(json.dumps(records[0]) + "\n\n" + json.dumps(records[1]) + "\n", encoding="utf-8")
    assert load_samples(str(jsonl_path)) == records


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (
            [_record(), {k: v for k, v in _record().items() if k != "solution"}],
            "record 1: missing required field `solution`",
        ),
        ([{k: v for k, v in _record().items() if k != "path"}], "record 0: missing required field `path`"),
        (
            [{k: v for k, v in _record().items() if k != "data_type"}],
            "record 0: missing required field `data_type`",
        ),
        (
            [_record(problem_type="multiple choice")],
            "record 0: missing field `options`, required for multiple choice",
        ),
        (
            [_record(problem_type="multiple choice", options="A. 1")],
            "record 0: field `options` must be a non-empty list",
        ),
        ([_record(problem_type="yes/no")], "record 0: unknown `problem_type` 'yes/no'; allowed values are:"),
        ([_record(data_type="audio")], "record 0: unknown `data_type` 'audio'"),
        ([_record(problem=3)], "record 0: field `problem` must be a string"),
        ([_record(), ["not", "an", "object"]], "record 1: expected a JSON object, got list"),
    ],
)
def test_load_samples_validation_errors(tmp_path, records, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path}: {message}")):
        load_samples(path)


def test_load_samples_decode_errors(tmp_path):
    not_list = tmp_path / "obj.json"
    not_list.write_text(json.dumps(_record()), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{not_list}: expected a JSON list of records, got dict")):
        load_samples(not_list)

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(_record()) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{broken}: line 2: invalid JSON")):
        load_samples(broken)

    broken_json = tmp_path / "broken.json"
    broken_json.write_text("[{", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{broken_json}: invalid JSON")):
        load_samples(broken_json)


def test_sample_id_stable_and_unique():
    record = _record()
    first = sample_id(record, 3)
    assert re.fullmatch(r"000003-[0-9a-f]{12}", first)
    assert sample_id(dict(record), 3) == first  # deterministic
    assert sample_id(record, 4) != first  # duplicated records stay distinct through the index
    assert sample_id(_record(solution="<answer>5</answer>"), 3) != first  # edited record -> new id
    assert sample_id({k: v for k, v in record.items() if k != "problem_id"}, 3) != first
    with pytest.raises(ValueError, match="`index` must be a non-negative integer"):
        sample_id(record, -1)


# -------------------------------------------------------------------------------------------- summary


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
