"""The README is the contract of a fresh install: its commands are what CI runs, its knob table is the config."""

from __future__ import annotations

import re
from pathlib import Path

from vreason_hf import VReasonConfig

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


def test_readme_knob_table_lists_exactly_the_config_knobs():
    table = README.split("### Knobs", 1)[1].split("\n### ", 1)[0]
    documented = set()
    for row in re.findall(r"^\| (`.+?`(?:, `.+?`)*) \|", table, flags=re.M):
        documented.update(re.findall(r"`([a-z_0-9]+)`", row))
    assert documented == set(VReasonConfig.knob_names())
