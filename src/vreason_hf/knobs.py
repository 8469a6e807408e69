# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The V-Reason knobs as data, read from `configuration_vreason.py` without importing it.

Every knob is a field of [`VReasonConfig`] that carries its help text (and its choices) in the field's metadata,
once. This module reads those declarations with `ast`, so it needs neither transformers nor torch: `vreason --help`
lists every knob option from it, and the knob tables of the README and of the model cards are rendered by
[`knob_table`]. A test checks that this view equals `VReasonConfig.__dataclass_fields__` at runtime.
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Knob", "knob_fields", "knob_table", "python_literal"]

CONFIG_SOURCE = Path(__file__).resolve().parent / "configuration_vreason.py"


@dataclass(frozen=True)
class Knob:
    """One V-Reason knob.

    Attributes:
        name (`str`): the field name (also the `generate` / CLI / config.json key).
        type (`str`): `"int"`, `"float"`, `"bool"` or `"str"`.
        default (`Any`): the default value.
        help (`str`): the help text (Markdown: backticks, *emphasis*).
        choices (`tuple[str, ...]`, *optional*): the allowed values of a string knob.
    """

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None


def _knob(statement: ast.AnnAssign) -> Knob:
    name = statement.target.id
    call = statement.value
    if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "field"):
        raise ValueError(
            f"`VReasonConfig.{name}` must be declared as `field(default=..., metadata={{...}})`."
        )
    arguments = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    metadata = arguments.get("metadata", {})
    if "default" not in arguments or "help" not in metadata:
        raise ValueError(
            f"`VReasonConfig.{name}` needs a literal `default` and a `help` text in its metadata."
        )
    choices = metadata.get("choices")
    return Knob(name, ast.unparse(statement.annotation), arguments["default"], metadata["help"], choices)


@functools.cache
def knob_fields() -> tuple[Knob, ...]:
    """The knobs of `VReasonConfig`, in declaration order, read from its source with `ast`."""
    tree = ast.parse(CONFIG_SOURCE.read_text(encoding="utf-8"))
    config = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "VReasonConfig"
    )
    return tuple(
        _knob(statement)
        for statement in config.body
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
    )


def python_literal(value: Any) -> str:
    """A knob value as Python code: `"video"`, `True`, `0.05`."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def knob_table(
    values: Mapping[str, Any] | None = None,
    *,
    headers: Sequence[str] = ("argument", "default", "description"),
    literal: Callable[[Any], str] = json.dumps,
) -> str:
    r"""
    A Markdown table of the knobs: name, value, help text.

    Args:
        values (`Mapping[str, Any]`, *optional*): the value column (e.g. a model repo's knobs); the defaults when
            omitted. Must hold every knob.
        headers (`Sequence[str]`, *optional*): the three column titles.
        literal (`Callable[[Any], str]`, *optional*, defaults to `json.dumps`): how a value is written (JSON, as
            `generate(vreason_config={...})` and `config.json` take them; [`python_literal`] for Python).

    Returns:
        `str`: the table, one row per knob, without a trailing newline.
    """
    rows = [f"| {' | '.join(headers)} |", "|---|---|---|"]
    for knob in knob_fields():
        value = knob.default if values is None else values[knob.name]
        description = knob.help.replace("|", "\\|")  # a pipe would end the cell
        rows.append(f"| `{knob.name}` | `{literal(value)}` | {description} |")
    return "\n".join(rows)
