"""Reading Video-R1 evaluation files (`vreason_hf.eval.data`): validation, decoding errors, stable sample ids."""

from __future__ import annotations

import json
import re

import pytest

from vreason_hf.eval import load_samples, sample_id


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


def test_gold_answers_that_cannot_be_scored_are_reported_at_load(tmp_path):
    path = tmp_path / "eval_bad.json"
    path.write_text(json.dumps([_record(problem_id=1), _record(problem_id=2, solution="A")]))
    with pytest.raises(ValueError, match=r"record 1: `solution` 'A' has no non-empty <answer>"):
        load_samples(path)
    path.write_text(json.dumps([_record(problem_id=3, solution="<answer>three</answer>")]))
    with pytest.raises(ValueError, match=r"record 0: the numerical gold answer 'three' is not a number"):
        load_samples(path)
