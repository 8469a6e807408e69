"""The README is the contract of a fresh install: its commands are what CI runs, its knob table is generated from the config."""

from __future__ import annotations

import re
from pathlib import Path

from vreason_hf import VReasonConfig
from vreason_hf.knobs import knob_fields, knob_table, python_literal

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _setup_commands() -> list[str]:
    section = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = _setup_commands()
    assert len(commands) == 2, commands
    install_and_run, test = commands
    assert "\n" not in install_and_run and "\n" not in test
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd ", "export "))
    ]
    # .ci/run = the README's install, then the README's test command.
    assert " && ".join(ci) == test
    install = test.rsplit(" && ", 1)[0]
    assert install_and_run.startswith(install + " && ")


def test_readme_knob_table_is_the_one_generated_from_the_config():
    section = README.split("### Knobs", 1)[1].split("\n### ", 1)[0]
    table = section.split("-->\n", 1)[1].split("\n<!-- /knob-table -->", 1)[0]
    expected = knob_table(headers=("knob", "default", "meaning"), literal=python_literal)
    assert table == expected, f"Paste this table into README.md's knob section:\n{expected}"
    assert [knob.name for knob in knob_fields()] == VReasonConfig.knob_names()
