"""Hand-computed tests of the model-free Video-R1 scoring protocol (`vreason_hf.eval.scoring`, SPEC.md section 7)."""

from __future__ import annotations

import pytest

from vreason_hf.eval import (
    METRIC_BY_PROBLEM_TYPE,
    PROBLEM_TYPES,
    THINK_INSTRUCTION,
    TYPE_SUFFIXES,
    ScoreResult,
    build_prompt,
    extract_answer,
    parse_number,
    score_sample,
    score_sample_detailed,
    secondary_score,
)


def _sample(problem_type: str, solution: str, **extra) -> dict:
    return {
        "problem": "Q?",
        "problem_type": problem_type,
        "solution": f"<answer>{solution}</answer>",
        **extra,
    }


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
    # Video-R1's protocol: the metric each problem type is scored with, as scoring reports it and the table says.
    protocol = {
        "multiple choice": "accuracy",
        "numerical": "accuracy",
        "regression": "mra",
        "OCR": "wer",
        "free-form": "rouge_l",
    }
    scored = {
        kind: score_sample_detailed(_sample(kind, "1"), "<answer>1</answer>").metric for kind in PROBLEM_TYPES
    }
    assert scored == METRIC_BY_PROBLEM_TYPE == protocol


def test_score_unknown_type_and_missing_solution():
    with pytest.raises(ValueError, match="Unknown `problem_type` 'boolean'"):
        score_sample(_sample("boolean", "yes"), "<answer>yes</answer>")
    with pytest.raises(ValueError, match="missing the required field `solution`"):
        score_sample({"problem_type": "numerical"}, "<answer>1</answer>")


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
