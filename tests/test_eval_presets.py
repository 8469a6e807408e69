"""The paper preset (`vreason_hf.eval.presets`), `vreason eval --preset paper`: a dry run on local files laid out like Video-R1's evaluation download."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vreason_hf.cli import main
from vreason_hf.eval import read_records
from vreason_hf.eval.presets import PAPER_BENCHMARKS, PAPER_SETTINGS, paper_comparison_markdown
from vreason_hf.testing import real_clip_path

# Folder names as in Video-R1's `path` fields (`./Evaluation/<Benchmark>/...`, relative to `src/r1-v`).
FOLDERS = {
    "videommmu": "VideoMMMU",
    "mmvu": "MMVU",
    "mvbench": "MVBench",
    "tempcompass": "TempCompass",
    "videomme": "VideoMME",
    "vsibench": "VSI-Bench",
}


def _sample(folder: str, problem_id: int, **overrides) -> dict:
    sample = {
        "problem_id": problem_id,
        "problem": "What are the people doing?",
        "options": ["A. cycling", "B. swimming", "C. running", "D. sleeping"],
        "problem_type": "multiple choice",
        "data_type": "video",
        "path": f"./Evaluation/{folder}/clip.mp4",
        "solution": "<answer>A</answer>",
    }
    sample.update(overrides)
    return sample


@pytest.fixture(scope="module")
def video_r1(tmp_path_factory) -> Path:
    """`Video-R1/src/r1-v` with `Evaluation/eval_<benchmark>.json` (one or two samples each) and a clip per folder."""
    root = tmp_path_factory.mktemp("Video-R1") / "src" / "r1-v"
    evaluation = root / "Evaluation"
    for name, folder in FOLDERS.items():
        (evaluation / folder).mkdir(parents=True)
        shutil.copyfile(real_clip_path("carphone_pristine.mp4"), evaluation / folder / "clip.mp4")  # 176x144
        samples = [_sample(folder, 1)]
        if name == "vsibench":
            regression = _sample(folder, 2, problem="How far apart are the bikes?", problem_type="regression")
            regression.pop("options")
            samples.append({**regression, "solution": "<answer>2.5</answer>"})
        (evaluation / f"eval_{name}.json").write_text(json.dumps(samples))
    return root


@pytest.fixture(autouse=True)
def _restore_transformers_logging():
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    yield
    hf_logging.set_verbosity(verbosity)
    if bars:
        hf_logging.enable_progress_bar()


def _call(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def _table(text: str, first_cell: str) -> dict[str, dict[str, str]]:
    """Parse the Markdown table whose header starts with `first_cell` into {row label: {column: cell}}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def test_preset_paper_runs_the_six_benchmarks_and_prints_the_paper_beside_ours(
    tiny_model_dir, video_r1, tmp_path, capsys
):
    output = tmp_path / "paper.jsonl"
    argv = ["eval", "--preset", "paper", "--model", str(tiny_model_dir), "--video-root", str(video_r1)]
    fast = ["--max-new-tokens", "3", "--max-frames", "2", "--no-progress"]
    code, out, err = _call([*argv, "--output", str(output), *fast], capsys)
    assert code == 0, err

    records = read_records(output)
    assert {r["dataset"] for r in records} == set(FOLDERS)
    assert sorted({r["mode"] for r in records}) == sorted(PAPER_SETTINGS["modes"])  # base, vreason, lite
    assert len(records) == 7 * 3  # 7 samples, 3 modes
    generation = records[0]["generation"]  # the paper's settings; options given explicitly win
    assert (generation["fps"], generation["num_frames"], generation["do_sample"]) == (2.0, None, False)
    assert (generation["max_frames"], generation["max_new_tokens"]) == (2, 3)
    assert generation["max_pixels"] == PAPER_SETTINGS["max_pixels"] == 128 * 28 * 28  # Video-R1's, per frame
    video_r1_files = sorted(p.name for p in output.with_suffix(".video_r1").iterdir())
    assert video_r1_files == sorted(
        f"eval_{n}_{m}_output.json" for n in FOLDERS for m in PAPER_SETTINGS["modes"]
    )

    summary = json.loads(output.with_suffix(".summary.json").read_text())
    assert paper_comparison_markdown(summary) in out
    table = _table(out, "benchmark")
    for benchmark in PAPER_BENCHMARKS:
        row = table[f"{benchmark.label} acc" if benchmark.name == "vsibench" else benchmark.label]
        for mode, label in (("base", "base"), ("vreason", "V-Reason"), ("lite", "Lite")):
            ours = summary["per_dataset"][benchmark.name][mode]["accuracy"]
            assert row[f"{label} (ours)"] == f"{100 * ours:.1f}"
            assert row[f"{label} (paper)"] == f"{benchmark.accuracy[mode]:.1f}"
        assert row["Video-R1-7B (paper)"] == f"{benchmark.accuracy['video_r1']:.1f}"
    assert table["VSI-Bench MRA"]["V-Reason (paper)"] == "23.4"
    assert table["VSI-Bench MRA"]["V-Reason (ours)"] != "–"  # the regression item was scored
    assert table["mean of the 6 accuracies"]["base (paper)"] == "54.6"  # (45.8+61.3+60.7+72.4+53.7+33.8) / 6
    assert table["mean output tokens"]["Video-R1-7B (paper)"] == "430"


def test_preset_paper_names_missing_files_and_how_to_fetch_them(tiny_model_dir, tmp_path, capsys):
    evaluation = tmp_path / "r1-v" / "Evaluation"
    evaluation.mkdir(parents=True)
    (evaluation / "eval_mvbench.json").write_text("[]")
    argv = [
        "eval",
        "--preset",
        "paper",
        "--model",
        str(tiny_model_dir),
        "--video-root",
        str(tmp_path / "r1-v"),
    ]
    code, _, err = _call([*argv, "--output", str(tmp_path / "r.jsonl")], capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith("Error: ")
    assert "lacks eval_videommmu.json, eval_mmvu.json, eval_tempcompass.json" in err
    assert "hf download Video-R1/Video-R1-eval --repo-type dataset" in err


def test_the_presets_pixel_budget_is_kept_where_the_video_processor_takes_one_and_said_where_not(
    tiny_qwen2_5_vl, tiny_qwen3_vl, capsys
):
    from vreason_hf.cli.eval import _preset_pixel_budget

    budget = PAPER_SETTINGS["max_pixels"]
    assert _preset_pixel_budget(tiny_qwen2_5_vl[1], budget) == budget
    assert capsys.readouterr().err == ""
    assert _preset_pixel_budget(tiny_qwen3_vl[1], budget) is None
    assert "this model's (Qwen3VLVideoProcessor) keeps its own" in capsys.readouterr().err
