"""Batched evaluation: `batch_size=N` records equal the batch-1 records token for token, and resume across sizes."""

from __future__ import annotations

import shutil

import pytest
import torch

from vreason_hf.eval import (
    build_prompt,
    evaluate,
    generate_answer,
    generate_batch,
    read_records,
)
from vreason_hf.inputs import Prompt, build_batch_inputs, build_inputs
from vreason_hf.testing import build_tiny_llama, real_clip_path
from vreason_hf.video import load_video

MAX_NEW = 8
TRACES = ("entropies", "ema_entropies", "alphas")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """Two real clips of different sizes, so the rows of a batch differ in video tokens as well as text."""
    folder = tmp_path_factory.mktemp("clips")
    for name in ("bikes.mp4", "carphone_pristine.mp4"):
        shutil.copyfile(real_clip_path(name), folder / name)
    return folder


def _samples() -> list[dict]:
    questions = [
        "Why?",
        "What are the people riding, and where are they going?",
        "Count them.",
        "Where?",
        "Who?",
    ]
    clips = ["bikes.mp4", "carphone_pristine.mp4", "bikes.mp4", "carphone_pristine.mp4", "bikes.mp4"]
    return [
        {
            "problem_id": i,
            "problem": question,
            "options": ["A. yes", "B. no"],
            "problem_type": "multiple choice",
            "data_type": "video",
            "path": clip,
            "solution": "<answer>A</answer>",
        }
        for i, (question, clip) in enumerate(zip(questions, clips, strict=True))
    ]


def _evaluate(model_and_processor, samples, output, clip_dir, **kwargs):
    model, processor = model_and_processor
    options = {"video_root": clip_dir, "num_frames": 4, "progress": False, "warmup": False}
    return evaluate(model, processor, samples, output_path=output, **(options | kwargs))


def _assert_same_answers(solo: list[dict], batched: list[dict]) -> None:
    assert [(r["index"], r["mode"]) for r in solo] == [(r["index"], r["mode"]) for r in batched]
    for one, many in zip(solo, batched, strict=True):
        for field in ("output_ids", "output", "prediction", "output_tokens", "optimizer_steps", "score"):
            assert one[field] == many[field], (one["index"], one["mode"], field)
        for field in TRACES:
            torch.testing.assert_close(
                torch.tensor(one[field]), torch.tensor(many[field]), atol=1e-4, rtol=1e-4
            )


def test_batched_records_equal_batch_one_records_token_for_token(tiny_qwen2_5_vl, clip_dir, tmp_path):
    model, processor = tiny_qwen2_5_vl
    samples = _samples()
    # An end-of-sequence token that the first answer produces early: rows of one batch then finish at different
    # steps, so padding after EOS and the per-row lengths are exercised.
    frames, metadata = load_video(clip_dir / samples[0]["path"], num_frames=4)
    first = generate_answer(
        model,
        processor,
        build_inputs(processor, build_prompt(samples[0]), video=frames, video_metadata=metadata),
        mode="base",
        generate_kwargs={"max_new_tokens": MAX_NEW},
    )
    generation = {"max_new_tokens": MAX_NEW, "eos_token_id": first.token_ids[2]}
    options = {"modes": ("base", "vreason"), "vreason_config": {"lr": 0.2}, "generate_kwargs": generation}

    _evaluate(tiny_qwen2_5_vl, samples, tmp_path / "solo.jsonl", clip_dir, **options)
    _evaluate(tiny_qwen2_5_vl, samples, tmp_path / "batched.jsonl", clip_dir, batch_size=3, **options)
    solo, batched = read_records(tmp_path / "solo.jsonl"), read_records(tmp_path / "batched.jsonl")
    _assert_same_answers(solo, batched)
    assert {r["batch_size"] for r in solo} == {1}
    assert [r["batch_size"] for r in batched if r["mode"] == "vreason"] == [3, 3, 3, 2, 2]
    lengths = [r["output_tokens"] for r in batched if r["mode"] == "vreason"]
    assert len(set(lengths[:3])) > 1 or len(set(lengths[3:])) > 1, lengths  # some batch's rows end apart
    assert all(
        r["optimizer_steps"] == (r["output_tokens"] + 1) // 2 for r in batched if r["mode"] == "vreason"
    )


def test_batched_lite_equals_batch_one(tiny_qwen2_5_vl, clip_dir, tmp_path):
    samples = _samples()[:2]
    options = {"modes": ("lite",), "generate_kwargs": {"max_new_tokens": 4}}
    _evaluate(tiny_qwen2_5_vl, samples, tmp_path / "solo.jsonl", clip_dir, **options)
    _evaluate(tiny_qwen2_5_vl, samples, tmp_path / "batched.jsonl", clip_dir, batch_size=2, **options)
    _assert_same_answers(read_records(tmp_path / "solo.jsonl"), read_records(tmp_path / "batched.jsonl"))


def test_resume_ignores_the_batch_size(tiny_qwen2_5_vl, clip_dir, tmp_path):
    samples = _samples()
    output = tmp_path / "results.jsonl"
    options = {"generate_kwargs": {"max_new_tokens": 3}}
    _evaluate(tiny_qwen2_5_vl, samples, output, clip_dir, batch_size=2, limit=3, **options)
    _evaluate(tiny_qwen2_5_vl, samples, output, clip_dir, batch_size=4, **options)  # no settings mismatch
    records = read_records(output)
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    assert [r["batch_size"] for r in records] == [2, 2, 1, 2, 2]  # the first run's last batch held one sample


def test_text_only_batches_pad_on_the_left_and_equal_solo_answers(tmp_path):
    model, tokenizer = build_tiny_llama()
    tokenizer.padding_side = "right"  # build_batch_inputs pads on the left whatever the tokenizer's default
    prompts = [Prompt("hi"), Prompt("hello there, how are you today?")]
    batch = build_batch_inputs(tokenizer, prompts)
    assert batch["attention_mask"][0, 0] == 0 and bool(batch["attention_mask"][:, -1].all())
    config = {"controller_scope": "prompt", "lr": 0.2}
    rows = generate_batch(
        model, tokenizer, batch, vreason_config=config, generate_kwargs={"max_new_tokens": 6}
    )
    for prompt, row in zip(prompts, rows, strict=True):
        alone = generate_answer(
            model,
            tokenizer,
            build_inputs(tokenizer, prompt.text),
            vreason_config=config,
            generate_kwargs={"max_new_tokens": 6},
        )
        assert (row.token_ids, row.optimizer_steps, row.batch_size) == (
            alone.token_ids,
            alone.optimizer_steps,
            2,
        )


def test_batches_must_be_left_padded_and_paddable(tmp_path):
    model, tokenizer = build_tiny_llama()
    right = tokenizer(["hi", "hello there"], return_tensors="pt", padding=True, padding_side="right")
    with pytest.raises(ValueError, match="right-padded; decoder-only generation needs left padding"):
        generate_batch(model, tokenizer, right, mode="base")
    with pytest.raises(ValueError, match="takes one sample, got a batch of 2: use `generate_batch`"):
        generate_answer(model, tokenizer, right, mode="base")
    tokenizer.pad_token = None
    with pytest.raises(ValueError, match="has no padding token"):
        build_batch_inputs(tokenizer, [Prompt("a"), Prompt("bb")])
