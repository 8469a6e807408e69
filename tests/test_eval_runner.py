"""The evaluation loop (`vreason_hf.eval.runner`): records, resume after a crash, sharded runs and their merge, inputs,
batches, the runnable example."""

from __future__ import annotations

import json
import runpy
import shutil
import sys
from pathlib import Path

import pytest
import torch

from vreason_hf import VReasonConfig
from vreason_hf.eval import (
    build_prompt,
    evaluate,
    generate_answer,
    merge_results,
    read_records,
    score_sample_detailed,
    summarize,
)
from vreason_hf.eval.results import results_paths
from vreason_hf.inputs import build_inputs
from vreason_hf.testing import build_tiny_llama, real_clip_path
from vreason_hf.video import load_video

ROOT = Path(__file__).resolve().parents[1]
GENERATE = {"max_new_tokens": 4}
FRAMES = {"num_frames": 4}


def _samples(clip: Path) -> list[dict]:
    return [
        {
            "problem": "What are the people riding?",
            "options": ["A. bicycles", "B. horses"],
            "problem_type": "multiple choice",
            "data_type": "video",
            "path": clip.name,
            "solution": "<answer>A</answer>",
        },
        {
            "problem": "How many riders are there?",
            "problem_type": "numerical",
            "data_type": "video",
            "path": clip.name,
            "solution": "<answer>3</answer>",
        },
        {
            "problem": "How long is the road, in metres?",
            "problem_type": "regression",
            "data_type": "video",
            "path": clip.name,
            "solution": "<answer>25</answer>",
        },
    ]


@pytest.fixture(scope="module")
def samples(real_clip: Path) -> list[dict]:
    return _samples(real_clip)


def _run(model_and_processor, samples, output, clip, **kwargs):
    model, processor = model_and_processor
    options = {
        "generate_kwargs": GENERATE,
        **FRAMES,
        "video_root": clip.parent,
        "progress": False,
        "warmup": False,  # timings are not asserted here; the warm-up is exercised by the CLI tests
        **kwargs,
    }
    return evaluate(model, processor, samples, output_path=output, **options)


def _keys(records: list[dict]) -> list[tuple[str, str]]:
    return [(r["id"], r["mode"]) for r in records]


def test_compare_writes_one_scored_record_per_sample_and_mode(tiny_qwen2_5_vl, samples, real_clip, tmp_path):
    output = tmp_path / "results.jsonl"
    summary = _run(tiny_qwen2_5_vl, samples, output, real_clip, modes=("base", "vreason"), dataset_name="toy")
    records = read_records(output)
    assert len(records) == 6 and len(set(_keys(records))) == 6
    assert [r["mode"] for r in records] == ["base", "vreason"] * 3
    for record in records:
        sample = samples[record["index"]]
        detail = score_sample_detailed(sample, record["output"])
        assert (record["score"], record["reward"], record["prediction"], record["parsable"]) == (
            detail.score,
            detail.score,
            detail.extracted,
            detail.parsable,
        )
        assert record["dataset"] == "toy" and record["problem_type"] == sample["problem_type"]
        assert 1 <= record["output_tokens"] <= GENERATE["max_new_tokens"]
        assert record["seconds"] > 0 and record["peak_memory_mb"] > 0
        assert record["memory_source"] in ("rss_peak", "maxrss", "cuda_max_allocated")
        n = record["output_tokens"]
        assert len(record["entropies"]) == len(record["ema_entropies"]) == len(record["alphas"]) == n
        assert set(record["alphas"]) <= {-1.0, 1.0}
        assert record["generation"]["max_new_tokens"] == 4 and record["generation"]["num_frames"] == 4
    base, vreason = records[0], records[1]
    assert base["knobs"] is None and base["optimizer_steps"] == 0
    assert vreason["knobs"] == json.loads(json.dumps(VReasonConfig().knobs()))
    assert vreason["optimizer_steps"] == (vreason["output_tokens"] + 1) // 2  # update_every=2, one step each
    # The summary written next to the results is `summarize` of the records.
    paths = results_paths(output)
    assert json.loads(paths["summary_json"].read_text()) == summary == summarize(records)
    assert paths["summary_md"].read_text().startswith("| dataset | mode |")


def test_resume_after_a_crash_skips_done_records_and_rewrites_a_torn_line(
    tiny_qwen2_5_vl, samples, real_clip, tmp_path
):
    output = tmp_path / "results.jsonl"
    _run(tiny_qwen2_5_vl, samples, output, real_clip, limit=1)
    (first,) = read_records(output)
    with open(output, "a") as handle:  # a crash in the middle of writing the next record
        handle.write('{"id": "000001-abc", "dataset": "dataset", "mode": "vre')
    assert len(read_records(output)) == 1  # the torn line is ignored when reading
    _run(tiny_qwen2_5_vl, samples, output, real_clip)
    records = read_records(output)
    assert [r["index"] for r in records] == [0, 1, 2]
    assert records[0] == first  # kept, not recomputed
    lines = output.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)
    # A third run has nothing to do and leaves the file as it is.
    before = output.read_text()
    _run(tiny_qwen2_5_vl, samples, output, real_clip)
    assert output.read_text() == before


def test_resume_refuses_records_made_with_other_settings(tiny_qwen2_5_vl, samples, real_clip, tmp_path):
    output = tmp_path / "results.jsonl"
    _run(tiny_qwen2_5_vl, samples, output, real_clip, limit=1)
    with pytest.raises(ValueError, match=r"different knobs \(lr: 0\.05 -> 0\.2\)"):
        _run(tiny_qwen2_5_vl, samples, output, real_clip, vreason_config={"lr": 0.2})
    with pytest.raises(ValueError, match="different generation"):
        _run(tiny_qwen2_5_vl, samples, output, real_clip, num_frames=6)
    # Another dataset name in the same file is a separate set of records.
    _run(
        tiny_qwen2_5_vl, samples, output, real_clip, limit=1, vreason_config={"lr": 0.2}, dataset_name="other"
    )
    assert {r["dataset"] for r in read_records(output)} == {"dataset", "other"}


def test_shards_cover_every_sample_once_and_the_last_one_merges(
    tiny_qwen2_5_vl, samples, real_clip, tmp_path
):
    output = tmp_path / "results.jsonl"
    assert _run(tiny_qwen2_5_vl, samples, output, real_clip, shard=(1, 2)) is None  # rank 0 not done yet
    assert not output.exists()
    assert [r["index"] for r in read_records(tmp_path / "results.rank1.jsonl")] == [1]
    summary = _run(tiny_qwen2_5_vl, samples, output, real_clip, shard=(0, 2))
    assert summary["per_dataset"]["dataset"]["vreason"]["n"] == 3
    records = read_records(output)
    assert [r["index"] for r in records] == [0, 1, 2] and len(set(_keys(records))) == 3
    assert [r["index"] for r in read_records(tmp_path / "results.rank0.jsonl")] == [0, 2]
    before = output.read_text()
    assert merge_results(output) == summary and output.read_text() == before  # merging again changes nothing


def test_text_only_model_answers_the_question_alone(samples, tmp_path, caplog):
    model, tokenizer = build_tiny_llama()
    output = tmp_path / "results.jsonl"
    with pytest.raises(ValueError, match='controller_scope="prompt"'):
        evaluate(model, tokenizer, samples, output_path=output, generate_kwargs=GENERATE, progress=False)
    with caplog.at_level("WARNING", logger="vreason_hf"):
        evaluate(
            model,
            tokenizer,
            samples,
            output_path=output,
            modes=("base", "vreason"),
            vreason_config={"controller_scope": "prompt"},
            generate_kwargs=GENERATE,
            progress=False,
        )
    assert "text-only tokenizer: the videos and images" in caplog.text
    records = read_records(output)
    assert len(records) == 6 and all(r["optimizer_steps"] > 0 for r in records if r["mode"] == "vreason")


def test_missing_media_is_reported_before_any_generation(tiny_qwen2_5_vl, samples, tmp_path):
    output = tmp_path / "results.jsonl"
    with pytest.raises(
        FileNotFoundError, match=r"3 of the 3 samples to run have no media file .*`--video-root`"
    ):
        _run(tiny_qwen2_5_vl, samples, output, tmp_path)
    assert read_records(output) == []


def test_image_samples_are_passed_as_images(tiny_qwen2_5_vl, tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / "red.png")
    sample = {
        "problem": "What colour is the image?",
        "options": ["A. red", "B. blue"],
        "problem_type": "multiple choice",
        "data_type": "image",
        "path": "red.png",
        "solution": "<answer>A</answer>",
    }
    output = tmp_path / "results.jsonl"
    with pytest.raises(ValueError, match=r'1 image sample.*`controller_scope="visual"`'):
        _run(tiny_qwen2_5_vl, [sample], output, tmp_path / "red.png")
    _run(
        tiny_qwen2_5_vl, [sample], output, tmp_path / "red.png", vreason_config={"controller_scope": "visual"}
    )
    (record,) = read_records(output)
    assert record["optimizer_steps"] > 0


def test_modes_are_validated(tiny_qwen2_5_vl, samples, real_clip, tmp_path):
    with pytest.raises(ValueError, match="Unknown mode 'greedy'"):
        _run(tiny_qwen2_5_vl, samples, tmp_path / "r.jsonl", real_clip, modes=("greedy",))
    with pytest.raises(ValueError, match="use mode 'lite'"):
        _run(tiny_qwen2_5_vl, samples, tmp_path / "r.jsonl", real_clip, vreason_config={"lite": True})
    with pytest.raises(ValueError, match="mutually exclusive"):
        _run(tiny_qwen2_5_vl, samples, tmp_path / "r.jsonl", real_clip, fps=2.0)


def test_example_eval_small_json_runs(tmp_path, monkeypatch, capsys):
    script = ROOT / "examples" / "eval_small_json.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--out-dir", str(tmp_path), "--max-new-tokens", "4"])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "| bikes | base | 3 |" in out and "| bikes | vreason | 3 |" in out
    assert len(read_records(tmp_path / "RESULTS.jsonl")) == 6


def test_lite_mode_records_lite_knobs(tiny_qwen2_5_vl, samples, real_clip, tmp_path):
    output = tmp_path / "results.jsonl"
    summary = _run(tiny_qwen2_5_vl, samples, output, real_clip, modes=("lite",), limit=1)
    (record,) = read_records(output)
    assert record["mode"] == "lite" and record["knobs"]["lite"] is True and record["optimizer_steps"] > 0
    assert list(summary["per_dataset"]["dataset"]) == ["lite"]


def test_num_frames_takes_every_frame_of_a_shorter_clip(tiny_qwen2_5_vl, synthetic_clip, real_clip, tmp_path):
    # Uniform `num_frames` sampling and "every frame, capped at num_frames" pick the same frames...
    _, uniform = load_video(real_clip, num_frames=5)
    _, capped = load_video(real_clip, max_frames=5)
    assert uniform.frames_indices == capped.frames_indices
    # ...so a clip shorter than `num_frames` (48 frames here) is evaluated on all its frames, not an error.
    sample = {**_samples(synthetic_clip)[1], "path": synthetic_clip.name}
    output = tmp_path / "results.jsonl"
    _run(tiny_qwen2_5_vl, [sample], output, synthetic_clip, num_frames=64)
    (record,) = read_records(output)
    assert record["generation"]["num_frames"] == 64 and record["output_tokens"] >= 1


def test_max_pixels_caps_each_frame_and_is_recorded_and_checked_on_resume(
    tiny_qwen2_5_vl, samples, real_clip, tmp_path
):
    model, _ = tiny_qwen2_5_vl
    budget = 28 * 28 * 4  # below the tiny processor's own 28 * 28 * 16
    grids = []
    hook = model.model.visual.register_forward_pre_hook(  # the vision tower sees each run's frame grid once
        lambda module, args, kwargs: grids.append(kwargs["grid_thw"]), with_kwargs=True
    )
    try:
        _run(tiny_qwen2_5_vl, samples[:1], tmp_path / "capped.jsonl", real_clip, max_pixels=budget)
        _run(tiny_qwen2_5_vl, samples[:1], tmp_path / "own.jsonl", real_clip)
    finally:
        hook.remove()
    capped, own = [grid[0].tolist() for grid in grids]  # (frames / 2, height, width) in patches
    patch = 14 * 14  # pixels of one vision patch
    assert capped[1] * capped[2] * patch <= budget < own[1] * own[2] * patch
    (record,) = read_records(tmp_path / "capped.jsonl")
    assert record["generation"]["max_pixels"] == budget
    (record,) = read_records(tmp_path / "own.jsonl")
    assert "max_pixels" not in record["generation"]  # records made before the option resume unchanged
    with pytest.raises(ValueError, match=r"different generation \(max_pixels: 3136 -> None\)"):
        _run(tiny_qwen2_5_vl, samples[:1], tmp_path / "capped.jsonl", real_clip)


@pytest.mark.parametrize(
    ("fixture", "max_pixels", "match"),
    [
        (
            "tiny_qwen3_vl",
            3136,
            r"per-frame pixel budget of Qwen2-VL / Qwen2\.5-VL.*is Qwen3VLVideoProcessor",
        ),
        ("tiny_qwen2_5_vl", 0, r"`max_pixels` must be a positive integer or None, got 0"),
    ],
)
def test_max_pixels_is_refused_before_anything_runs(
    request, fixture, max_pixels, match, samples, real_clip, tmp_path
):
    output = tmp_path / "results.jsonl"
    with pytest.raises(ValueError, match=match):
        _run(request.getfixturevalue(fixture), samples, output, real_clip, max_pixels=max_pixels)
    assert not output.exists()


# --------------------------------------------------------------------------------------------------
# Batches: `batch_size=N` records equal the batch-1 records token for token, and resume across sizes
# --------------------------------------------------------------------------------------------------

BATCH_NEW_TOKENS = 8
TRACES = ("entropies", "ema_entropies", "alphas")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """Two real clips of different sizes, so the rows of a batch differ in video tokens as well as text."""
    folder = tmp_path_factory.mktemp("clips")
    for name in ("bikes.mp4", "carphone_pristine.mp4"):
        shutil.copyfile(real_clip_path(name), folder / name)
    return folder


def _batch_samples() -> list[dict]:
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
    samples = _batch_samples()
    # An end-of-sequence token that the first answer produces early: rows of one batch then finish at different
    # steps, so padding after EOS and the per-row lengths are exercised.
    frames, metadata = load_video(clip_dir / samples[0]["path"], num_frames=4)
    first = generate_answer(
        model,
        processor,
        build_inputs(processor, build_prompt(samples[0]), video=frames, video_metadata=metadata),
        mode="base",
        generate_kwargs={"max_new_tokens": BATCH_NEW_TOKENS},
    )
    generation = {"max_new_tokens": BATCH_NEW_TOKENS, "eos_token_id": first.token_ids[2]}
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
    samples = _batch_samples()[:2]
    options = {"modes": ("lite",), "generate_kwargs": {"max_new_tokens": 4}}
    _evaluate(tiny_qwen2_5_vl, samples, tmp_path / "solo.jsonl", clip_dir, **options)
    _evaluate(tiny_qwen2_5_vl, samples, tmp_path / "batched.jsonl", clip_dir, batch_size=2, **options)
    _assert_same_answers(read_records(tmp_path / "solo.jsonl"), read_records(tmp_path / "batched.jsonl"))


def test_resume_ignores_the_batch_size(tiny_qwen2_5_vl, clip_dir, tmp_path):
    samples = _batch_samples()
    output = tmp_path / "results.jsonl"
    options = {"generate_kwargs": {"max_new_tokens": 3}}
    _evaluate(tiny_qwen2_5_vl, samples, output, clip_dir, batch_size=2, limit=3, **options)
    _evaluate(tiny_qwen2_5_vl, samples, output, clip_dir, batch_size=4, **options)  # no settings mismatch
    records = read_records(output)
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    assert [r["batch_size"] for r in records] == [2, 2, 1, 2, 2]  # the first run's last batch held one sample
