"""The evaluation runner: records, resume after a crash, sharding and merging, inputs, the runnable example."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

from vreason_hf import VReasonConfig
from vreason_hf.eval import (
    evaluate,
    merge_results,
    read_records,
    score_sample_detailed,
    summarize,
)
from vreason_hf.eval.runner import resolve_shard, results_paths
from vreason_hf.testing import build_tiny_llama
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


def test_merge_without_any_results_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing to merge"):
        merge_results(tmp_path / "results.jsonl")


def test_resolve_shard_reads_the_launcher_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert resolve_shard() == (0, 1)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    assert resolve_shard() == (2, 3)  # CPU: accelerate reports one process, the variables are used
    assert resolve_shard((1, 4)) == (1, 4)
    with pytest.raises(ValueError, match="0 <= index < count"):
        resolve_shard((4, 4))
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="`RANK` must be an integer"):
        resolve_shard()


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


def test_read_records_rejects_a_corrupt_complete_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        read_records(path)


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
