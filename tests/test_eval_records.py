"""Results records (`vreason_hf.eval.records`) and Video-R1 output parity: per-sample fields and the final JSON match Video-R1's `src/eval_bench.py` field by field.

`_video_r1_entry` restates what Video-R1's script does to each sample (from its published source): it copies the
sample, adds `output` (the text), `prediction` (the first `<answer>` block, else the whole text), `reward` (its
`reward_fn`), `correct` (`reward == 1.0`) and, when the text has a `<think>` block, `process`; `final_acc` holds the
mean reward of the non-regression samples and of the regression ones. A sample it cannot run gets the output
`<answer>error</answer>`.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from vreason_hf.eval import evaluate, read_records, video_r1_results
from vreason_hf.eval import runner as runner_module
from vreason_hf.eval.generation import GenerationResult
from vreason_hf.eval.results import results_paths
from vreason_hf.testing import real_clip_path


def _video_r1_entry(sample: dict, output: str) -> dict:
    """Video-R1's per-sample record, restated from `src/eval_bench.py` (greedy vLLM outputs replaced by `output`)."""

    def answer(text: str) -> str:
        match = re.search(r"<answer>\s*(.*?)\s*</answer>", text, re.DOTALL)
        return match.group(1).strip() if match else ""

    def number(text: str) -> float | None:
        try:
            return float(text.replace(",", ""))
        except ValueError:
            return None

    prediction = answer(output) or output
    gold = answer(sample["solution"])
    kind = sample["problem_type"]
    if kind == "multiple choice":
        reward = 1.0 if prediction.strip() == gold.strip() else 0.0
    elif kind == "numerical":
        if (("." in gold) or ("," in gold)) != (("." in prediction) or ("," in prediction)):
            reward = 0.0
        else:
            p, g = number(prediction), number(gold)
            reward = 0.0 if p is None or g is None else float(round(g, 2) == round(p, 2))
    elif kind == "regression":
        p, g = number(prediction), number(gold)
        thresholds = [0.5 + 0.05 * i for i in range(10)]
        reward = (
            0.0
            if p is None or g is None
            else sum(abs(p - g) / (abs(g) + 1e-8) < 1 - t for t in thresholds) / 10
        )
    else:
        reward = 0.0
    entry = {**sample, "output": output, "prediction": prediction, "reward": reward, "correct": reward == 1.0}
    think = re.search(r"<think>\s*(.*?)\s*</think>", output, re.DOTALL)
    if think:
        entry["process"] = f"<think>{think.group(1).strip()}</think>"
    return entry


SAMPLES = [
    {
        "problem_id": 7,
        "problem": "What are the people riding?",
        "options": ["A. bicycles", "B. horses"],
        "problem_type": "multiple choice",
        "data_type": "video",
        "path": "./clip.mp4",
        "data_source": "toy",
        "solution": "<answer>A</answer>",
    },
    {
        "problem_id": 8,
        "problem": "How many riders?",
        "problem_type": "numerical",
        "data_type": "video",
        "path": "./clip.mp4",
        "solution": "<answer>3</answer>",
    },
    {
        "problem_id": 9,
        "problem": "How long is the road?",
        "problem_type": "regression",
        "data_type": "video",
        "path": "./clip.mp4",
        "solution": "<answer>25</answer>",
    },
    {
        "problem_id": 10,
        "problem": "And the colour of the sky?",
        "options": ["A. blue", "B. grey"],
        "problem_type": "multiple choice",
        "data_type": "video",
        "path": "./missing-frames.mp4",
        "solution": "<answer>B</answer>",
    },
]
OUTPUTS = [
    "<think>Bikes, wheels... so bicycles.</think>\n<answer>A</answer>",
    "<answer>3.0</answer>",  # the decimal point makes Video-R1 score it 0 against "3"
    "about 22 metres",  # no tags: the whole text is the prediction, and it does not parse
]


@pytest.fixture
def scripted(monkeypatch):
    """Replace generation by the scripted outputs (the model is never called), to control every field."""
    texts = iter(OUTPUTS)

    def generate_batch(model, processor, inputs, *, mode, vreason_config, generate_kwargs):
        rows = inputs["input_ids"].shape[0]
        return [
            GenerationResult(
                next(texts), 5, 0.1, None, "none", [1.0] * 5, [0.5] * 5, [1.0] * 5, 3, [1] * 5, rows
            )
            for _ in range(rows)
        ]

    monkeypatch.setattr(runner_module, "generate_batch", generate_batch)


def test_records_and_final_json_match_video_r1_field_by_field(tiny_qwen2_5_vl, tmp_path, scripted):
    shutil.copyfile(real_clip_path("carphone_pristine.mp4"), tmp_path / "clip.mp4")
    (tmp_path / "missing-frames.mp4").write_bytes(b"\x00" * 1000)  # unreadable: the sample fails
    model, processor = tiny_qwen2_5_vl
    output = tmp_path / "results.jsonl"
    summary = evaluate(
        model,
        processor,
        SAMPLES,
        output_path=output,
        video_root=tmp_path,
        num_frames=4,
        batch_size=3,
        dataset_name="toy",
        video_r1_json=True,
        progress=False,
        warmup=False,
    )
    expected = [_video_r1_entry(s, o) for s, o in zip(SAMPLES, OUTPUTS, strict=False)]
    expected.append({**_video_r1_entry(SAMPLES[3], "<answer>error</answer>")})
    assert [e["reward"] for e in expected] == [1.0, 0.0, 0.0, 0.0]

    final = json.loads((results_paths(output)["video_r1_dir"] / "eval_toy_vreason_output.json").read_text())
    assert list(final) == ["results", "final_acc"]
    for ours, theirs in zip(final["results"][:3], expected[:3], strict=True):
        assert list(ours) == list(theirs) and ours == theirs  # same keys, same order, same values
    failed = final["results"][3]
    assert failed["error"].startswith("VideoDecodeError: ")
    assert {k: v for k, v in failed.items() if k != "error"} == expected[3]
    assert final["final_acc"] == [{"mean_acc": pytest.approx((1.0 + 0.0 + 0.0) / 3), "mean_mra": 0.0}]

    # The JSONL records carry the same Video-R1 fields, beside ours.
    records = read_records(output)
    for record, theirs in zip(records[:3], expected[:3], strict=True):
        assert {k: record[k] for k in theirs} == theirs
        assert record["score"] == record["reward"] and record["error"] is None
    assert records[3]["output"] is None and records[3]["reward"] == 0.0 and records[3]["error"]
    assert summary["per_dataset"]["toy"]["vreason"]["n_failed"] == 1
    assert video_r1_results(records) == final


def test_results_written_before_video_r1_parity_are_upgraded_and_resumed(
    tiny_qwen2_5_vl, tmp_path, monkeypatch
):
    shutil.copyfile(real_clip_path("carphone_pristine.mp4"), tmp_path / "clip.mp4")
    model, processor = tiny_qwen2_5_vl
    samples = SAMPLES[:2]
    output = tmp_path / "results.jsonl"
    options = {"video_root": tmp_path, "num_frames": 4, "generate_kwargs": {"max_new_tokens": 3}}
    evaluate(model, processor, samples, output_path=output, limit=1, progress=False, warmup=False, **options)
    (new,) = read_records(output)
    # The same record as the previous version of `vreason eval` wrote it: `prediction` held the text, `extracted`
    # the answer; no Video-R1 fields, no sample fields, no `error` / `batch_size`.
    old = {
        k: v
        for k, v in new.items()
        if k not in (*SAMPLES[0], "output", "reward", "correct", "process", "error", "batch_size")
    }
    old.update(prediction=new["output"], extracted=new["prediction"], problem_type=new["problem_type"])
    output.write_text(json.dumps(old) + "\n")

    calls = []
    monkeypatch.setattr(
        model, "generate", lambda *a, **k: calls.append(1) or type(model).generate(model, *a, **k)
    )
    evaluate(model, processor, samples, output_path=output, progress=False, warmup=False, **options)
    assert len(calls) == 1  # only the second sample: the old record was resumed, not redone
    first, second = read_records(output)
    assert (first["output"], first["prediction"], first["reward"], first["correct"]) == (
        new["output"],
        new["prediction"],
        new["reward"],
        new["correct"],
    )
    assert "extracted" not in first and first["error"] is None and second["index"] == 1
