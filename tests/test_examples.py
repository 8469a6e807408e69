"""Every example script runs offline and prints what it promises, so examples cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# script -> lines its output must contain
EXPECTED = {
    "callable_custom_generate.py": ["Adam steps: [12]"],
    "hub_recipe_folder.py": ["string path == callable path: True"],
    "vreason_model_repo.py": [
        "weights identical to the base: True",
        "V-Reason equals the callable with the same knobs: True",
        "plain decoding equals the base model: True",
        "'custom_generate'",
    ],
    "pipeline_video.py": ["V-Reason: 16 tokens, 8 Adam steps", "reply: assistant", "plain: 16 tokens"],
    "controller_adapter.py": [
        "replay reproduces the generation: True",
        "continue goes on from the saved Adam steps: True",
        "disabled adapter == plain greedy: True",
    ],
}


def _run(script: str, tmp_path: Path) -> str:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "HF_MODULES_CACHE": str(tmp_path / "m"),
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_every_example_is_covered():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(EXPECTED) | {
        "quickstart.py",
        "eval_small_json.py",
    }  # eval: tests/test_eval_runner.py


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script, tmp_path):
    output = _run(script, tmp_path)
    for line in EXPECTED[script]:
        assert line in output, output


@pytest.mark.slow
def test_quickstart_runs(tmp_path):
    output = _run("quickstart.py", tmp_path)
    assert "[greedy]" in output and "[V-Reason]" in output and "Adam steps" in output
