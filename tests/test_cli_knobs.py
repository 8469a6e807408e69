"""The knob options every `vreason` command with V-Reason gets (`vreason_hf.cli.common.with_knob_options`): one per
`VReasonConfig` knob, same defaults."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from vreason_hf import VReasonConfig
from vreason_hf.cli import app
from vreason_hf.cli.common import with_knob_options
from vreason_hf.knobs import knob_fields

KNOB_COMMANDS = ("run", "eval")


def _knob_params(command: str) -> dict[str, Any]:
    params = {param.name: param for param in typer.main.get_command(app).commands[command].params}
    return {name: params[name] for name in VReasonConfig.knob_names()}


@pytest.mark.parametrize("command", KNOB_COMMANDS)
def test_every_knob_option_defaults_to_the_config_default(command):
    defaults = VReasonConfig()
    for name, param in _knob_params(command).items():
        assert param.default == getattr(defaults, name), name
        assert type(param.default) is type(getattr(defaults, name)), name


@pytest.mark.parametrize("command", KNOB_COMMANDS)
def test_every_knob_option_carries_the_fields_help_text(command):
    params = _knob_params(command)
    for knob in knob_fields():
        assert params[knob.name].help.startswith(knob.help.replace("*", "")), knob.name


@pytest.mark.parametrize("command", KNOB_COMMANDS)
def test_every_boolean_knob_can_be_switched_on_and_off(command):
    booleans = [
        name for name in VReasonConfig.knob_names() if isinstance(getattr(VReasonConfig(), name), bool)
    ]
    assert booleans  # decode_after_update, lite
    for name in booleans:
        param = _knob_params(command)[name]
        flag = name.replace("_", "-")
        assert param.opts == [f"--{flag}"] and param.secondary_opts == [f"--no-{flag}"], name


@pytest.fixture
def knob_app():
    """A one-command app that returns the `knobs` its command receives (the generator under test)."""
    seen: list[dict] = []
    probe = typer.Typer()

    @probe.command()
    @with_knob_options
    def command(name: str = "x", knobs: dict[str, Any] | None = None) -> None:
        seen.append(knobs)

    return probe, seen


@pytest.mark.parametrize(
    ("args", "knobs"),
    [
        ([], {}),
        (["--no-decode-after-update"], {"decode_after_update": False}),
        (["--decode-after-update"], {}),  # the default: nothing to override
        (
            ["--lite", "--lr", "0.1", "--alpha-schedule", "minimize"],
            {"lite": True, "lr": 0.1, "alpha_schedule": "minimize"},
        ),
        (["--lite", "--no-lite"], {}),  # the last flag wins, as in click
    ],
    ids=["none", "no-flag", "flag-at-default", "several", "last-wins"],
)
def test_commands_receive_the_knobs_that_differ_from_the_defaults(knob_app, args, knobs):
    probe, seen = knob_app
    result = CliRunner().invoke(probe, args)
    assert result.exit_code == 0, result.output
    assert seen == [knobs]
