"""`vreason run` (`vreason_hf.cli.run`): one question, V-Reason beside plain decoding, the table and the plot."""

from __future__ import annotations

import re

import pytest

FAST = ["--max-new-tokens", "4", "--num-frames", "4"]


def test_run_compare_prints_both_answers_and_saves_the_plot(vreason, tiny_model_dir, real_clip, tmp_path):
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
def test_console_script_user_errors_are_one_line(vreason, tiny_model_dir, real_clip, args, fragments):
    base = ["run", "--model", str(tiny_model_dir), "--question", "Why?", "--video", str(real_clip)]
    vreason(*base, *args).assert_one_line_error(*fragments)


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
def test_run_user_errors_are_one_line(cli, tiny_model_dir, real_clip, args, fragments, status):
    base = ["run", "--model", str(tiny_model_dir), "--question", "Why?", "--video", str(real_clip)]
    cli(base + args).assert_one_line_error(*fragments, status=status)


def test_run_without_video_needs_prompt_scope(cli, tiny_model_dir):
    cli(["run", "--model", str(tiny_model_dir), "--question", "Why?"]).assert_one_line_error(
        "--controller-scope prompt"
    )
