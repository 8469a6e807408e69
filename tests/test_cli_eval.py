"""`vreason eval` and `vreason plot` (`vreason_hf.cli.eval`, `vreason_hf.cli.plot`): end to end, resumed, sharded,
merged and plotted; bad data, results and options reported in one line naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vreason_hf.eval import read_records

FAST = ["--max-new-tokens", "4", "--num-frames", "4"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory, real_clip) -> Path:
    """A Video-R1-style file with one multiple-choice, one numerical and one regression item on a real clip."""
    folder = tmp_path_factory.mktemp("data")
    samples = [
        {
            "problem_id": 1,
            "problem": "What are the people riding?",
            "options": ["A. bicycles", "B. horses"],
            "problem_type": "multiple choice",
            "data_type": "video",
            "path": f"./{real_clip.name}",
            "solution": "<answer>A</answer>",
        },
        {
            "problem_id": 2,
            "problem": "How many riders are there?",
            "problem_type": "numerical",
            "data_type": "video",
            "path": f"./{real_clip.name}",
            "solution": "<answer>3</answer>",
        },
        {
            "problem_id": 3,
            "problem": "How long is the road, in metres?",
            "problem_type": "regression",
            "data_type": "video",
            "path": f"./{real_clip.name}",
            "solution": "<answer>25</answer>",
        },
    ]
    path = folder / "eval_bikes.json"
    path.write_text(json.dumps(samples))
    return path


@pytest.fixture
def good_and_corrupt(video_r1_sample, tmp_path) -> Path:
    """An evaluation file whose second sample's video is corrupt (see `eval_clips`)."""
    path = tmp_path / "eval_bikes.json"
    path.write_text(json.dumps([video_r1_sample("good.mp4", 1), video_r1_sample("corrupt.mp4", 2)]))
    return path


def _eval_args(model_dir: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return ["eval", "--model", str(model_dir), "--data", str(data), "--output", str(output), *FAST, *extra]


def _eval_clips(model_dir: Path, data: Path, output: Path, eval_clips: Path) -> list[str]:
    return [
        "eval", "--model", str(model_dir), "--data", str(data), "--output", str(output),
        "--video-root", str(eval_clips), "--max-new-tokens", "3", "--num-frames", "4", "--no-progress",
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------------


def test_eval_end_to_end_resumes_a_killed_run_without_duplicates(
    vreason, tiny_model_dir, data_file, real_clip, tmp_path
):
    output = tmp_path / "results.jsonl"
    args = _eval_args(tiny_model_dir, data_file, output, "--video-root", str(real_clip.parent), "--compare")
    first = vreason(*args, "--limit", "2")
    assert first.returncode == 0, first.stderr
    assert [(r["index"], r["mode"]) for r in read_records(output)] == [
        (0, "base"),
        (0, "vreason"),
        (1, "base"),
        (1, "vreason"),
    ]
    with open(output, "a") as handle:  # killed in the middle of writing the next record
        handle.write('{"id": "000002-0123456789ab", "dataset": "bikes", "mo')
    second = vreason(*args)
    assert second.returncode == 0, second.stderr
    assert "4 record(s) already in the results, skipped" in second.stderr
    records = read_records(output)
    keys = [(r["index"], r["mode"]) for r in records]
    assert sorted(keys) == [(i, m) for i in range(3) for m in ("base", "vreason")] and len(set(keys)) == 6
    assert {r["dataset"] for r in records} == {"bikes"}  # named after eval_bikes.json
    assert all(json.loads(line) for line in output.read_text().splitlines())
    # The summary table (stdout) and its files next to the results.
    assert "| bikes | base | 3 |" in second.stdout
    assert "| bikes | vreason | 3 |" in second.stdout
    summary = json.loads(output.with_suffix(".summary.json").read_text())
    assert summary["per_dataset"]["bikes"]["vreason"]["n_regression"] == 1
    assert output.with_suffix(".summary.md").read_text() in second.stdout


def test_eval_data_parallel_shards_merge_every_sample_once(
    vreason, tiny_model_dir, data_file, real_clip, tmp_path
):
    """Two processes with RANK / WORLD_SIZE (as torchrun / accelerate launch set them) split and merge the work,
    each batching its own shard."""
    output = tmp_path / "results.jsonl"
    args = _eval_args(
        tiny_model_dir,
        data_file,
        output,
        "--video-root",
        str(real_clip.parent),
        "--no-progress",
        "--batch-size",
        "2",
    )
    processes = [vreason.popen(*args, env={"WORLD_SIZE": "2", "RANK": str(rank)}) for rank in (0, 1)]
    outputs = [process.communicate(timeout=240) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    assert sum("merging the rank files" in err for _, err in outputs) >= 1
    assert [(r["index"], r["batch_size"]) for r in read_records(tmp_path / "results.rank0.jsonl")] == [
        (0, 2),
        (2, 2),
    ]
    assert [r["index"] for r in read_records(tmp_path / "results.rank1.jsonl")] == [1]
    records = read_records(output)
    assert [(r["index"], r["mode"]) for r in records] == [(0, "vreason"), (1, "vreason"), (2, "vreason")]
    assert output.with_suffix(".summary.json").is_file()


def test_eval_merge_and_plot_commands(cli, tiny_model_dir, data_file, real_clip, tmp_path):
    output = tmp_path / "results.jsonl"
    args = _eval_args(
        tiny_model_dir, data_file, output, "--video-root", str(real_clip.parent), "--no-progress"
    )
    for rank in (1, 0):
        code, _, err = cli([*args, "--shard", f"{rank}/2", "--limit", "2"])
        assert code == 0, err
    output.unlink()
    code, out, _ = cli(["eval", "--merge", "--output", str(output)])
    assert code == 0 and "| bikes | vreason | 2 |" in out
    assert [r["index"] for r in read_records(output)] == [0, 1]
    png = tmp_path / "fig.png"
    code, out, _ = cli(["plot", str(output), "--out", str(png)])
    assert code == 0 and "V-Reason: 2 samples" in out and png.stat().st_size > 10_000


def test_eval_counts_failed_samples_and_says_how_to_retry(
    cli, tiny_model_dir, good_and_corrupt, eval_clips, tmp_path
):
    code, out, err = cli(_eval_clips(tiny_model_dir, good_and_corrupt, tmp_path / "r.jsonl", eval_clips))
    assert code == 0, err
    header, *rows = [line for line in out.splitlines() if line.startswith("| ")]
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    row = next(r for r in rows if r.startswith("| bikes | vreason |"))
    cells = dict(zip(columns, (cell.strip() for cell in row.strip("|").split("|")), strict=True))
    assert (cells["n"], cells["failed"]) == ("2", "1")
    assert "1 answer(s) failed" in err and "--retry-failed" in err
    assert "corrupt.mp4" in err  # the warning names the sample's file


# --------------------------------------------------------------------------------------------------
# Errors: one line, naming the option or the file
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ([], ["no media file", "`--video-root`"]),
        (["--video-root", "/no/such/dir"], ["`--video-root` is not a folder"]),
        (["--dataset-name", "x", "--data", "other.json"], ["`--dataset-name` names one dataset"]),
        (["--shard", "1of2"], ["`--shard` must look like INDEX/COUNT"]),
    ],
    ids=["missing-media", "bad-video-root", "dataset-name", "bad-shard"],
)
def test_eval_user_errors_are_one_line(cli, tiny_model_dir, data_file, tmp_path, extra, fragments):
    cli(_eval_args(tiny_model_dir, data_file, tmp_path / "r.jsonl", *extra)).assert_one_line_error(*fragments)


def test_eval_unknown_dataset_fields_are_one_line(cli, tiny_model_dir, tmp_path):
    data = tmp_path / "bad.json"
    data.write_text(
        json.dumps(
            [
                {
                    "problem": "?",
                    "problem_type": "essay",
                    "data_type": "video",
                    "path": "a.mp4",
                    "solution": "x",
                }
            ]
        )
    )
    result = cli(_eval_args(tiny_model_dir, data, tmp_path / "r.jsonl"))
    result.assert_one_line_error("record 0: unknown `problem_type` 'essay'")
    result = cli(_eval_args(tiny_model_dir, tmp_path / "none.json", tmp_path / "r.jsonl"))
    result.assert_one_line_error("Data file not found")
    cli(["eval", "--merge", "--output", str(tmp_path / "nothing.jsonl")]).assert_one_line_error(
        "Nothing to merge"
    )


def test_eval_non_utf8_data_file_names_the_file(video_r1_sample, cli, tiny_model_dir, eval_clips, tmp_path):
    data = tmp_path / "eval_latin1.json"
    data.write_bytes(
        json.dumps([video_r1_sample("good.mp4", 1, problem="Qu'est-ce que c'est ?")]).encode() + b"\xe9"
    )
    result = cli(_eval_clips(tiny_model_dir, data, tmp_path / "r.jsonl", eval_clips))
    result.assert_one_line_error(str(data), "not UTF-8", status=1)


def test_eval_non_utf8_results_file_names_the_file(
    cli, tiny_model_dir, good_and_corrupt, eval_clips, tmp_path
):
    output = tmp_path / "r.jsonl"
    output.write_bytes(b'{"id": "caf\xe9"}\n')
    result = cli(_eval_clips(tiny_model_dir, good_and_corrupt, output, eval_clips))
    result.assert_one_line_error(str(output), "not UTF-8", status=1)


def test_eval_output_path_that_is_a_folder_is_one_line(
    cli, tiny_model_dir, good_and_corrupt, eval_clips, tmp_path
):
    folder = tmp_path / "out"
    folder.mkdir()
    result = cli(_eval_clips(tiny_model_dir, good_and_corrupt, folder, eval_clips))
    result.assert_one_line_error(str(folder), "is a folder", status=1)


def test_eval_wrong_field_record_names_the_file_and_line(
    cli, tiny_model_dir, good_and_corrupt, eval_clips, tmp_path
):
    output = tmp_path / "r.jsonl"
    output.write_text(
        json.dumps({"dataset": "bikes", "id": "000000-x", "mode": "vreason", "score": 1}) + "\n"
    )
    result = cli(_eval_clips(tiny_model_dir, good_and_corrupt, output, eval_clips))
    result.assert_one_line_error(str(output), "line 1", "missing field `problem_type`", status=1)
