"""Bad samples and bad files (`vreason_hf.eval.samples`, issue 11, item 7): a bad sample fails alone, bad files fail
first and clearly (and `vreason eval` says so in one line: tests/test_cli_eval.py).

Each test here failed on the code before the fix: a corrupt video stopped every rerun at that sample; a malformed
results line was found only after all remaining answers were generated; non-UTF-8 files, an output path that is a
folder and wrong-field records gave a traceback or a message without the file. (Gold answers that cannot be scored:
tests/test_eval_data.py.)
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from vreason_hf.eval import evaluate, read_records
from vreason_hf.eval.samples import batch_inputs
from vreason_hf.inputs import Prompt, build_batch_inputs
from vreason_hf.testing import build_tiny_llama

GENERATE = {"max_new_tokens": 3}


@pytest.fixture
def counted_generate(tiny_qwen2_5_vl, monkeypatch) -> list[int]:
    """Count the tiny model's `generate` calls (restored after the test)."""
    model, _ = tiny_qwen2_5_vl
    calls: list[int] = []
    original = model.generate

    def generate(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", generate)
    return calls


def _run(model_and_processor, samples, output, eval_clips, **kwargs):
    model, processor = model_and_processor
    options = {"generate_kwargs": GENERATE, "num_frames": 4, "video_root": eval_clips, "progress": False}
    return evaluate(model, processor, samples, output_path=output, warmup=False, **(options | kwargs))


def test_a_corrupt_video_is_recorded_as_failed_and_not_retried_unless_asked(
    video_r1_sample, tiny_qwen2_5_vl, eval_clips, counted_generate, tmp_path
):
    samples = [
        video_r1_sample("good.mp4", 1),
        video_r1_sample("corrupt.mp4", 2),
        video_r1_sample("good.mp4", 3),
    ]
    output = tmp_path / "results.jsonl"
    summary = _run(tiny_qwen2_5_vl, samples, output, eval_clips)  # does not stop at the corrupt sample
    records = read_records(output)
    assert [(r["index"], r["error"] is None) for r in records] == [(0, True), (1, False), (2, True)]
    failed = records[1]
    assert "corrupt.mp4" in failed["error"] and failed["error"].startswith("VideoDecodeError: ")
    assert (failed["score"], failed["output"], failed["output_tokens"]) == (0.0, None, None)
    metrics = summary["per_dataset"]["dataset"]["vreason"]
    assert (metrics["n"], metrics["n_failed"], metrics["n_accuracy"]) == (3, 1, 3)  # counted, and scored 0

    # A rerun skips the failed sample: nothing is generated and the file does not change.
    before, calls = output.read_text(), len(counted_generate)
    _run(tiny_qwen2_5_vl, samples, output, eval_clips)
    assert len(counted_generate) == calls and output.read_text() == before

    # Once the video is fixed, `retry_failed` runs it again and its record replaces the failed one.
    shutil.copyfile(eval_clips / "good.mp4", eval_clips / "corrupt.mp4")
    summary = _run(tiny_qwen2_5_vl, samples, output, eval_clips, retry_failed=True)
    records = read_records(output)
    assert [r["index"] for r in records] == [0, 1, 2] and all(r["error"] is None for r in records)
    assert records[1]["output"] == records[0]["output"]  # the same clip and question as sample 0
    assert summary["per_dataset"]["dataset"]["vreason"]["n_failed"] == 0


def test_a_prompt_the_processor_rejects_is_left_out_of_its_batch_with_its_error():
    _, tokenizer = build_tiny_llama()
    prompts = [Prompt("hi"), Prompt("what is this?", image=object()), Prompt("hello there")]
    inputs, kept, errors = batch_inputs(tokenizer, prompts)
    assert kept == [0, 2] and list(errors) == [1] and "text-only tokenizer" in str(errors[1])
    expected = build_batch_inputs(tokenizer, [prompts[0], prompts[2]])
    assert all(torch.equal(inputs[key], expected[key]) for key in expected)
    assert batch_inputs(tokenizer, [prompts[1]])[:2] == (None, [])


def test_a_malformed_results_line_stops_the_run_before_any_generation(
    video_r1_sample, tiny_qwen2_5_vl, eval_clips, counted_generate, tmp_path
):
    samples = [video_r1_sample("good.mp4", 1), video_r1_sample("good.mp4", 2)]
    output = tmp_path / "results.jsonl"
    _run(tiny_qwen2_5_vl, samples, output, eval_clips, limit=1)
    (record,) = read_records(output)
    calls = len(counted_generate)
    output.write_text(json.dumps({**record, "score": "high"}) + "\n")
    with pytest.raises(ValueError, match=r"results\.jsonl'?: line 1: field `score` must be a finite number"):
        _run(tiny_qwen2_5_vl, samples, output, eval_clips)
    assert len(counted_generate) == calls  # found before the second sample was generated
