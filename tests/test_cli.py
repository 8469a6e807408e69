"""The `vreason` command. Subprocess tests run the real console script; the rest call `vreason_hf.cli.main`.

Every subprocess pays about 5 s of interpreter, torch and transformers start-up, so the tests that only check
parsing, help or error formatting call the same entry point in-process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vreason_hf import VReasonConfig
from vreason_hf.cli import app, main
from vreason_hf.eval import read_records
from vreason_hf.testing import build_tiny_qwen2_5_vl

_BIN = Path(sys.executable).with_name("vreason")
VREASON = str(_BIN) if _BIN.is_file() else shutil.which("vreason")
pytestmark = pytest.mark.skipif(
    VREASON is None, reason="the `vreason` console script is not installed (pip install -e .)"
)
COMMANDS = ("demo", "run", "eval", "plot", "export-recipe", "app", "export-space")
FAST = ["--max-new-tokens", "4", "--num-frames", "4"]
# One intra-op thread per child: tiny models gain nothing from more, and on a busy 2-core runner several
# processes with 2 threads each spend most of their time contending for the cores.
CHILD_ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def vreason(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 240):
    """Run the real console script."""
    return subprocess.run(
        [VREASON, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **CHILD_ENV, **(env or {})},
        timeout=timeout,
    )


@pytest.fixture(autouse=True)
def _restore_transformers_logging():
    """In-process `main` quiets transformers (verbosity, progress bars): restore it for the other tests."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    yield
    hf_logging.set_verbosity(verbosity)
    if bars:
        hf_logging.enable_progress_bar()


def call(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run `vreason_hf.cli.main` in-process; return (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2.5-VL saved with `save_pretrained` (model + processor)."""
    folder = tmp_path_factory.mktemp("tiny-qwen2_5_vl")
    model, processor = build_tiny_qwen2_5_vl()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


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


# --------------------------------------------------------------------------------------------------
# Help
# --------------------------------------------------------------------------------------------------


def test_console_script_help_lists_the_commands():
    result = vreason("--help")
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert f"  {command} " in result.stdout


def test_every_command_help_lists_every_option(capsys):
    import typer

    group = typer.main.get_command(app)
    assert set(group.commands) == set(COMMANDS)
    knobs = {f"--{name.replace('_', '-')}" for name in VReasonConfig.knob_names()}
    for name, command in group.commands.items():
        code, out, _ = call([name, "--help"], capsys)
        assert code == 0
        options = {
            opt
            for param in command.params
            for opt in param.opts + param.secondary_opts
            if opt.startswith("-")
        }
        missing = sorted(opt for opt in options if opt not in out)
        assert not missing, f"`vreason {name} --help` lacks {missing}"
        if name in ("run", "eval"):
            assert knobs <= options  # one option per VReasonConfig knob, generated from the config
            assert "[config default: 0.97]" in " ".join(out.split())  # ema_beta's default, from the config


# --------------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------------


def test_run_compare_prints_both_answers_and_saves_the_plot(tiny_model_dir, real_clip, tmp_path):
    png = tmp_path / "trace.png"
    result = vreason(
        "run", "--model", str(tiny_model_dir), "--video", str(real_clip), "--question", "What happens?",
        "--compare", "--plot", str(png), "--lr", "0.1", *FAST,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Video: bikes.mp4, 4 of 250 frames" in out
    assert "\n[base]\n" in out and "\n[V-Reason]\n" in out
    table = [re.split(r"\s{2,}", line.strip()) for line in out.split("\nmode ", 1)[1].splitlines()[:3]]
    assert table[0] == [
        "output tokens",
        "post-peak entropy",
        "Adam steps",
        "seconds",
        "tokens/s",
        "peak memory MB",
    ]
    assert table[1][0] == "base" and table[1][3] == "0"
    assert table[2][0] == "V-Reason" and int(table[2][3]) > 0
    assert all(float(row[-1]) > 0 for row in table[1:])  # the process's peak RSS: measured, never 0
    assert png.stat().st_size > 10_000
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--video", "missing.mp4"], ["Video file not found: 'missing.mp4'"]),
    ],
    ids=["missing-video"],
)
def test_console_script_user_errors_are_one_line(tiny_model_dir, real_clip, args, fragments):
    base = ["run", "--model", str(tiny_model_dir), "--question", "Why?", "--video", str(real_clip)]
    result = vreason(*base, *args)
    assert_one_line_error(result.returncode, result.stderr, *fragments)


@pytest.mark.parametrize(
    ("args", "fragments", "status"),
    [
        (["--num-frames", "4", "--fps", "2"], ["`--num-frames` and `--fps` are mutually exclusive"], 1),
        (["--lr", "fast"], ["Invalid value for '--lr'", "vreason run --help"], 2),
        (["--update-every", "0"], ["`update_every` must be >= 1"], 1),
        (["--alpha-schedule", "sometimes"], ["`alpha_schedule` must be one of", "'sometimes'"], 1),
        (["--no-such-option"], ["No such option: --no-such-option"], 2),
        (["--model", "./no/such/folder"], ["Model folder not found: './no/such/folder'"], 1),
    ],
    ids=["frames-and-fps", "knob-type", "knob-range", "knob-choice", "unknown-option", "missing-model"],
)
def test_run_user_errors_are_one_line(tiny_model_dir, real_clip, capsys, args, fragments, status):
    base = ["run", "--model", str(tiny_model_dir), "--question", "Why?", "--video", str(real_clip)]
    code, _, err = call(base + args, capsys)
    assert code == status
    assert_one_line_error(code, err, *fragments)


def test_run_without_video_needs_prompt_scope(tiny_model_dir, capsys):
    code, _, err = call(["run", "--model", str(tiny_model_dir), "--question", "Why?"], capsys)
    assert_one_line_error(code, err, "--controller-scope prompt")


# --------------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------------


def _eval_args(model_dir: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return ["eval", "--model", str(model_dir), "--data", str(data), "--output", str(output), *FAST, *extra]


def test_eval_end_to_end_resumes_a_killed_run_without_duplicates(
    tiny_model_dir, data_file, real_clip, tmp_path
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


def test_eval_data_parallel_shards_merge_every_sample_once(tiny_model_dir, data_file, real_clip, tmp_path):
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
    env = {**os.environ, **CHILD_ENV, "WORLD_SIZE": "2"}
    processes = [
        subprocess.Popen(
            [VREASON, *args],
            env={**env, "RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
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


def test_eval_merge_and_plot_commands(tiny_model_dir, data_file, real_clip, tmp_path, capsys):
    output = tmp_path / "results.jsonl"
    args = _eval_args(
        tiny_model_dir, data_file, output, "--video-root", str(real_clip.parent), "--no-progress"
    )
    for rank in (1, 0):
        code, _, err = call([*args, "--shard", f"{rank}/2", "--limit", "2"], capsys)
        assert code == 0, err
    output.unlink()
    code, out, _ = call(["eval", "--merge", "--output", str(output)], capsys)
    assert code == 0 and "| bikes | vreason | 2 |" in out
    assert [r["index"] for r in read_records(output)] == [0, 1]
    png = tmp_path / "fig.png"
    code, out, _ = call(["plot", str(output), "--out", str(png)], capsys)
    assert code == 0 and "V-Reason: 2 samples" in out and png.stat().st_size > 10_000


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
def test_eval_user_errors_are_one_line(tiny_model_dir, data_file, tmp_path, capsys, extra, fragments):
    code, _, err = call(_eval_args(tiny_model_dir, data_file, tmp_path / "r.jsonl", *extra), capsys)
    assert_one_line_error(code, err, *fragments)


def test_eval_unknown_dataset_fields_are_one_line(tiny_model_dir, tmp_path, capsys):
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
    code, _, err = call(_eval_args(tiny_model_dir, data, tmp_path / "r.jsonl"), capsys)
    assert_one_line_error(code, err, "record 0: unknown `problem_type` 'essay'")
    code, _, err = call(_eval_args(tiny_model_dir, tmp_path / "none.json", tmp_path / "r.jsonl"), capsys)
    assert_one_line_error(code, err, "Data file not found")
    code, _, err = call(["eval", "--merge", "--output", str(tmp_path / "nothing.jsonl")], capsys)
    assert_one_line_error(code, err, "Nothing to merge")


# --------------------------------------------------------------------------------------------------
# export-recipe (the demo: tests/test_readme_commands.py)
# --------------------------------------------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("vreason_hf.hub") is None,
    reason="`vreason_hf.hub` (the Hub issue) is not there yet",
)
def test_export_recipe_builds_the_folder(tmp_path, capsys):
    folder = tmp_path / "recipe"
    code, out, err = call(["export-recipe", str(folder)], capsys)
    assert code == 0, err
    assert (folder / "custom_generate" / "generate.py").is_file() and (folder / "README.md").is_file()
    assert "custom_generate/generate.py" in out
    code, _, err = call(["export-recipe", str(folder)], capsys)
    assert_one_line_error(code, err, "not empty", "--overwrite")
    code, _, _ = call(["export-recipe", str(folder), "--overwrite"], capsys)
    assert code == 0
