"""The `vreason` command's application (`vreason_hf.cli.root`, `.common`), its console-script entry point
(`_vreason_hf_cli`) and the light `import vreason_hf` it relies on. One module per command: tests/test_cli_*.py.

Subprocess tests pay the interpreter's start-up (and torch's and transformers', where they are imported), so the
tests that only check parsing, help or error formatting call `vreason_hf.cli.main` in-process (the `cli` fixture).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import typer

import _vreason_hf_cli
import vreason_hf
from vreason_hf import VReasonConfig
from vreason_hf._registration import DEFER_REGISTRATION_ENV
from vreason_hf.cli import app, main
from vreason_hf.knobs import knob_fields

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("demo", "run", "eval", "plot", "export-recipe", "app", "export-space")
KNOB_COMMANDS = ("run", "eval", "app", "export-space")

# Runs every `--help` through the console script's entry point in one fresh interpreter, then loads a model.
_DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, os, sys
    import _vreason_hf_cli

    helps = {}
    for argv in [["--help"], *([command, "--help"] for command in sys.argv[2:])]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                _vreason_hf_cli.main(argv)
            except SystemExit as exit:
                helps[" ".join(argv)] = [exit.code, out.getvalue()]
    imported = sorted(name for name in ("torch", "transformers") if name in sys.modules)
    variable_left = os.environ.get(_vreason_hf_cli.DEFER_REGISTRATION_ENV)

    from transformers import AutoConfig
    from transformers.pipelines import PIPELINE_REGISTRY
    from vreason_hf.loading import load_model

    registered_before = "video-text-to-text" in PIPELINE_REGISTRY.supported_tasks
    load_model(sys.argv[1], device="cpu", progress=False)
    print(json.dumps({
        "helps": helps,
        "imported": imported,
        "variable_left": variable_left,
        "registered_before": registered_before,
        "task": PIPELINE_REGISTRY.supported_tasks["video-text-to-text"]["impl"].__module__,
        "config": type(AutoConfig.for_model("vreason")).__module__,
    }))
    """
)


def _python(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter (one thread, offline); return the JSON it prints last."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if k != DEFER_REGISTRATION_ENV},
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
        },
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def _flat(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------------
# Help without torch; registration where it is needed
# --------------------------------------------------------------------------------------------------


def test_help_imports_neither_torch_nor_transformers_and_loading_registers(tiny_model_dir):
    report = _python(_DRIVER, str(tiny_model_dir), *COMMANDS)
    helps = report["helps"]
    assert report["imported"] == []  # after `vreason --help` and every `vreason <command> --help`
    assert report["variable_left"] is None  # removed again: child processes register as usual
    assert {argv: code for argv, (code, _) in helps.items()} == dict.fromkeys(helps, 0)
    helps = {argv: out for argv, (_, out) in helps.items()}
    for command in COMMANDS:
        assert f"  {command} " in helps["--help"]
        assert helps[f"{command} --help"].startswith(f"Usage: vreason {command} ")
    for command in KNOB_COMMANDS:  # every knob with its help text and its default, from `vreason_hf.knobs`
        text = _flat(helps[f"{command} --help"])
        for knob in knob_fields():
            assert _flat(f"{knob.help.replace('*', '')} [config default: {knob.default}]") in text, knob.name
    # The console script's `import vreason_hf` did not register; loading a model did.
    assert report["registered_before"] is False
    assert report["task"] == "vreason_hf.pipelines.video_text_to_text"
    assert report["config"] == "vreason_hf.configuration_vreason"


def test_import_registers_the_config_and_the_pipeline_task():
    report = _python(
        "import json, vreason_hf\n"
        "from transformers import AutoConfig\n"
        "from transformers.pipelines import PIPELINE_REGISTRY\n"
        "print(json.dumps({'task': PIPELINE_REGISTRY.supported_tasks['video-text-to-text']['impl'].__module__,"
        " 'config': type(AutoConfig.for_model('vreason')).__module__}))"
    )
    assert report == {
        "task": "vreason_hf.pipelines.video_text_to_text",
        "config": "vreason_hf.configuration_vreason",
    }


@pytest.mark.parametrize("before", [None, "0"], ids=["unset", "set"])
def test_entry_point_restores_the_defer_variable(monkeypatch, capsys, before):
    if before is None:
        monkeypatch.delenv(DEFER_REGISTRATION_ENV, raising=False)
    else:
        monkeypatch.setenv(DEFER_REGISTRATION_ENV, before)
    with pytest.raises(SystemExit) as exit_info:
        _vreason_hf_cli.main(["--help"])
    assert exit_info.value.code == 0 and "Usage: vreason " in capsys.readouterr().out
    assert os.environ.get(DEFER_REGISTRATION_ENV) == before


def test_console_script_is_the_entry_module():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["vreason"] == "_vreason_hf_cli:main"
    assert "_vreason_hf_cli" in project["tool"]["setuptools"]["py-modules"]
    # It cannot import the name from the package (that would import `vreason_hf` first): the copies agree.
    assert _vreason_hf_cli.DEFER_REGISTRATION_ENV == DEFER_REGISTRATION_ENV


def test_public_names_are_imported_on_first_use():
    assert vreason_hf.__all__ == sorted(vreason_hf.__all__)
    assert set(vreason_hf.__all__) <= set(dir(vreason_hf))
    for name in vreason_hf.__all__:
        value = getattr(vreason_hf, name)
        if name != "__version__":
            assert value.__name__ == name and value.__module__.startswith("vreason_hf."), name
    with pytest.raises(AttributeError, match=r"module 'vreason_hf' has no attribute 'VReasonConfg'"):
        vreason_hf.VReasonConfg  # noqa: B018


# --------------------------------------------------------------------------------------------------
# Help and syntax errors
# --------------------------------------------------------------------------------------------------


def test_every_command_help_lists_every_option(cli):
    group = typer.main.get_command(app)
    assert list(group.commands) == list(COMMANDS)  # in this order in `vreason --help`
    knobs = {f"--{name.replace('_', '-')}" for name in VReasonConfig.knob_names()}
    for name, command in group.commands.items():
        code, out, _ = cli([name, "--help"])
        assert code == 0
        options = {
            opt
            for param in command.params
            for opt in param.opts + param.secondary_opts
            if opt.startswith("-")
        }
        missing = sorted(opt for opt in options if opt not in out)
        assert not missing, f"`vreason {name} --help` lacks {missing}"
        assert (knobs <= options) is (name in KNOB_COMMANDS)  # one option per VReasonConfig knob
        if name in KNOB_COMMANDS:
            assert "[config default: 0.97]" in " ".join(out.split())  # ema_beta's default, from the config


def test_no_arguments_prints_the_help(cli):
    code, out, err = cli([])
    assert code == 0 and out.startswith("Usage: vreason ") and err == ""


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["nope"], ["No such command 'nope'", "(see `vreason --help`)"]),
        (["run"], ["Missing option '--model'", "(see `vreason run --help`)"]),
        (["plot", "a.jsonl", "--min-samples", "x"], ["Invalid value for '--min-samples'"]),
    ],
    ids=["unknown-command", "missing-option", "bad-type"],
)
def test_syntax_errors_are_one_line_with_status_2(cli, argv, fragments):
    cli(argv).assert_one_line_error(*fragments, status=2)


def test_debug_variable_shows_the_traceback(cli, monkeypatch, tmp_path):
    missing = tmp_path / "missing.jsonl"
    cli(["plot", str(missing)]).assert_one_line_error("Results file not found", status=1)
    monkeypatch.setenv("VREASON_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="Results file not found"):
        main(["plot", str(missing)])
