#!/usr/bin/env python
# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Run the `vreason` commands README.md shows and rewrite the outputs it records, with date, machine and command.

Every README command (a line starting with `vreason ` or `$ vreason ` in a fenced code block, or a `vreason`
segment of a set-up command joined with `&&`) runs in README order in one fresh temporary folder, through the
installed console script, so later commands find what earlier ones wrote (`vreason demo` leaves a clip and a small
Video-R1 file in `vreason-demo/`). Commands marked `# needs the Hub` or `# not run by CI` are not run here.

A ```console block whose first line is `$ vreason ...` records that command's output (stdout and stderr, as a
terminal shows them): the script replaces the block's body with the real output of this run and the line right
after the block with `<sub>Recorded <date> on <machine> by `python benchmarks/readme_outputs.py`.</sub>`.

`tests/test_readme_commands.py` uses `readme_commands` to run every command in CI with small budgets.

Usage: `python benchmarks/readme_outputs.py [--readme README.md] [--check]` (`--check`: run, print, write nothing).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "python benchmarks/readme_outputs.py"
HUB_MARKER = "needs the Hub"
SKIP_MARKER = "not run by CI"

_FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```\n?", flags=re.M | re.S)
_RECORDED = re.compile(r"^<sub>Recorded .*</sub>\n?", flags=re.M)


@dataclass(frozen=True)
class ReadmeCommand:
    """One `vreason` command of the README.

    Attributes:
        line (`str`): the command as the README shows it, without `$ ` and without its trailing comment.
        comment (`str`): the trailing `# ...` comment ("" if none).
        recorded (`bool`): the README records its output (a ```console block starting with `$ <line>`).
    """

    line: str
    comment: str = ""
    recorded: bool = False

    @property
    def argv(self) -> list[str]:
        """The arguments after `vreason`, split as a POSIX shell would."""
        return shlex.split(self.line)[1:]

    @property
    def needs_hub(self) -> bool:
        return HUB_MARKER in self.comment

    @property
    def skipped(self) -> bool:
        return SKIP_MARKER in self.comment


def _split_comment(line: str) -> tuple[str, str]:
    """`cmd  # comment` -> (`cmd`, `comment`); a `#` inside quotes is not a comment."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), ""


def readme_commands(text: str) -> list[ReadmeCommand]:
    """Every `vreason` command of a README, in order, each once (see the module docstring)."""
    found: dict[str, ReadmeCommand] = {}
    for match in _FENCE.finditer(text):
        language, body = match.group(1), match.group(2)
        body = body.replace("\\\n", " ")  # shell line continuations
        lines = body.splitlines()
        recorded_line = None
        if language == "console" and lines and lines[0].startswith("$ vreason "):
            recorded_line = _split_comment(lines[0][2:])[0]
        for raw in lines:
            raw = raw.strip()
            if raw.startswith("$ "):
                raw = raw[2:]
            elif language == "console":
                continue  # output lines of a console block
            line, comment = _split_comment(raw)
            for segment in (s.strip() for s in line.split("&&")):
                if not segment.startswith("vreason "):
                    continue
                previous = found.get(segment)
                found[segment] = ReadmeCommand(
                    segment,
                    comment or (previous.comment if previous else ""),
                    recorded=(previous is not None and previous.recorded) or segment == recorded_line,
                )
    return list(found.values())


def machine() -> str:
    """The machine in words: CPU (or GPU) model, cores, load, torch and transformers versions."""
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = f"{cpu}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        device += f", GPU {torch.cuda.get_device_name()} (the commands pick it with --device auto)"
    else:
        device += ", no GPU"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    busy = f", load average {load:.1f} at the start" if load is not None else ""
    return f"{device}{busy}; Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}"


def terminal_view(text: str) -> str:
    """What a terminal leaves on screen: of a line redrawn with carriage returns (a progress bar), its last state."""
    lines = []
    for line in text.split("\n"):
        states = [state for state in line.split("\r") if state.strip()]
        lines.append(states[-1] if states else "")
    return "\n".join(lines)


def run_commands(commands: list[ReadmeCommand], cwd: Path) -> dict[str, str]:
    """Run the runnable commands in `cwd` with the console script; return the output of each recorded one."""
    vreason = Path(sys.executable).with_name("vreason")
    outputs = {}
    for command in commands:
        if command.needs_hub or command.skipped:
            print(f"[not run: {command.comment}] vreason {shlex.join(command.argv)}", flush=True)
            continue
        print(f"$ {command.line}", flush=True)
        result = subprocess.run(
            [str(vreason) if vreason.is_file() else "vreason", *command.argv],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        output = result.stdout.decode("utf-8", errors="replace")  # bytes: keep the carriage returns of bars
        print(output, flush=True)
        if result.returncode != 0:
            raise SystemExit(f"`{command.line}` failed with exit status {result.returncode}.")
        if command.recorded:
            outputs[command.line] = terminal_view(output).rstrip()
    return outputs


def rewrite(text: str, outputs: dict[str, str], stamp: str) -> str:
    """Replace each recorded console block's body and the `<sub>Recorded ...</sub>` line after it."""
    pieces, position = [], 0
    for match in _FENCE.finditer(text):
        lines = match.group(2).splitlines()
        if match.group(1) != "console" or not lines or not lines[0].startswith("$ vreason "):
            continue
        line = _split_comment(lines[0][2:])[0]
        if line not in outputs:
            continue
        pieces.append(text[position : match.start()])
        pieces.append(f"```console\n{lines[0]}\n{outputs[line]}\n```\n")
        position = match.end()
        after = _RECORDED.match(text, position)
        if after is not None:
            position = after.end()
        pieces.append(f"<sub>Recorded {stamp}.</sub>\n")
    pieces.append(text[position:])
    return "".join(pieces)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="Run and print, but do not rewrite the README.")
    args = parser.parse_args()
    text = args.readme.read_text()
    commands = readme_commands(text)
    stamp = f"{datetime.date.today().isoformat()} on {machine()} by `{SCRIPT}`"
    with tempfile.TemporaryDirectory(prefix="vreason-readme-") as folder:
        outputs = run_commands(commands, Path(folder))
    if not args.check:
        args.readme.write_text(rewrite(text, outputs, stamp))
        print(f"Rewrote {len(outputs)} recorded output(s) in {args.readme} ({stamp}).")


if __name__ == "__main__":
    main()
