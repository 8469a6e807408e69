"""Every `vreason` command README.md shows runs as written, in README order, with small budgets appended.

Commands are found by `benchmarks/readme_outputs.py` (the script that records their outputs in the README): lines
starting with `vreason ` or `$ vreason ` in fenced code blocks, and `vreason` segments of the set-up commands. To
keep CI fast they run in one process through `vreason_hf.cli.main` (the console script's entry point), in one
temporary folder, with options appended that shrink the work (fewer new tokens, one sample), never a different
command. Commands marked `# needs the Hub` must instead fail within seconds, naming the model and the fixes, when
`HF_HUB_OFFLINE` is unset and the Hub cannot be reached. A command marked `# not run by CI: <reason>` is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vreason_hf.cli.demo import write_example_files

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

_spec = importlib.util.spec_from_file_location("readme_outputs", ROOT / "benchmarks" / "readme_outputs.py")
readme_outputs = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = readme_outputs
_spec.loader.exec_module(readme_outputs)

COMMANDS = readme_outputs.readme_commands(README)
# Appended to shrink the work; the README's own options stay as they are (click keeps the last value).
SMALL = {
    "demo": ["--max-new-tokens", "8"],
    "run": ["--max-new-tokens", "8"],
    "eval": ["--max-new-tokens", "4", "--limit", "1"],
}
# Third-party output that the commands must keep quiet by default.
CLUTTER = ("Loading weights", "de-quantizing", "Writing model shards", "site-packages", "Traceback")

DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from vreason_hf.cli import main

    results = []
    for argv in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as exit_:
                code = exit_.code
        results.append({"argv": argv, "code": code, "out": out.getvalue(), "err": err.getvalue()})
    with open(sys.argv[2], "w") as handle:
        json.dump(results, handle)
    """
)


def _run_in_one_process(argvs: list[list[str]], cwd: Path, env: dict[str, str]) -> tuple[list[dict], str]:
    """Run `vreason <argv>` for each argv in one fresh interpreter; return the results and the process's stderr."""
    report = cwd / "results.json"
    process = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(argvs), str(report)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(report.read_text()), process.stderr


def _small(command) -> list[str]:
    return command.argv + SMALL.get(command.argv[0], [])


def test_the_readme_shows_the_main_commands_and_marks_the_hub_ones():
    lines = [command.line for command in COMMANDS]
    assert lines[0] == "vreason demo"  # the set-up command's main job, first
    for subcommand in ("run", "eval", "plot", "export-recipe", "export-space"):
        assert any(command.argv[0] == subcommand for command in COMMANDS if not command.needs_hub), subcommand
    hub = [command for command in COMMANDS if command.needs_hub]
    assert hub and all("Qwen/" in command.line for command in hub)
    # Every other command that names a Hub model is either skipped with a reason or only writes the id into files
    # (`export-space`: the Space downloads the model, the command does not).
    unmarked = [c for c in COMMANDS if "Qwen/" in c.line and not c.needs_hub and not c.skipped]
    assert [c.argv[0] for c in unmarked] == ["export-space"]


def test_every_recorded_output_carries_its_date_machine_and_command():
    recorded = [command for command in COMMANDS if command.recorded]
    assert len(recorded) >= 3
    assert not re.search(
        r"[\x00-\x08\x0b-\x1f\x7f]", README
    )  # model output is escaped: the README stays text
    blocks = re.findall(
        r"^```console\n(\$ vreason .*?)^```\n(<sub>Recorded .*?</sub>)?", README, flags=re.M | re.S
    )
    assert len(blocks) == len(recorded)
    for body, stamp in blocks:
        assert len(body.strip().splitlines()) > 1, f"no output recorded for {body.splitlines()[0]}"
        assert re.fullmatch(
            r"<sub>Recorded \d{4}-\d\d-\d\d on .+ cores.+torch .+ by `python benchmarks/readme_outputs\.py`\.</sub>",
            stamp,
        ), stamp


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path):
    """All offline commands, in order, in one folder (the demo writes the files the later commands use)."""
    commands = [command for command in COMMANDS if not command.needs_hub and not command.skipped]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    results, stderr = _run_in_one_process([_small(command) for command in commands], tmp_path, env)
    for command, result in zip(commands, results, strict=True):
        output = result["out"] + result["err"]
        assert result["code"] == 0, f"`{command.line}` failed:\n{output[-3000:]}"
        for clutter in CLUTTER:
            assert clutter not in output, f"`{command.line}` printed {clutter!r}:\n{output[-3000:]}"
    for clutter in CLUTTER:
        assert clutter not in stderr, stderr[-3000:]

    demo = next(
        result["out"]
        for command, result in zip(commands, results, strict=True)
        if command.line == "vreason demo"
    )
    closing = demo.rstrip().split("== What V-Reason did on SmolLM2\n", 1)[1].splitlines()
    assert len(closing) == 4, closing  # one sentence per question, then the tally
    for number, line in enumerate(closing[:3], 1):
        assert line.startswith(f"  {number}. ")
        assert re.search(r"V-Reason (helped|hurt|did not help)|No difference", line), line
    assert closing[3].startswith("Over 3 questions V-Reason helped on ")
    for name in (
        "demo_entropy_1.png",
        "demo_entropy_2.png",
        "demo_entropy_3.png",
        "bikes.mp4",
        "eval_bikes.json",
    ):
        assert (tmp_path / "vreason-demo" / name).stat().st_size > 0, name
    rows = [line.split() for line in demo.splitlines() if line.startswith(("base ", "V-Reason "))]
    assert len(rows) == 8 and all(float(row[-1]) > 0 for row in rows)  # memory is measured, never 0.0


@pytest.mark.slow
def test_hub_commands_fail_fast_without_network(tmp_path):
    """With HF_HUB_OFFLINE unset and an unreachable endpoint, each Hub command stops at the up-front check."""
    hub = [command for command in COMMANDS if command.needs_hub]
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(
        # 192.0.2.1 is TEST-NET-1 (RFC 5737): never routed, so the connection attempt times out or fails at once.
        HF_ENDPOINT="http://192.0.2.1",
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_CACHE=str(tmp_path / "hf" / "hub"),
        OMP_NUM_THREADS="1",
    )
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    write_example_files(tmp_path / "vreason-demo")  # what `vreason demo` leaves for their --video / --data
    results, _ = _run_in_one_process([command.argv for command in hub], tmp_path, env)
    for command, result in zip(hub, results, strict=True):
        model = command.argv[command.argv.index("--model") + 1]
        assert result["code"] == 1, f"`{command.line}`:\n{result['out']}{result['err']}"
        lines = [line for line in result["err"].splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"Error: Cannot download model '{model}'"), lines
        assert "not reachable" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0] and "local folder" in lines[0]
