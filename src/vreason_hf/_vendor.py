# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Flat copies of the generation core for Hub repos, generated from the package sources (never kept in git).

Hub remote code is a flat folder of modules that import each other relatively, so `generation/controller.py`
becomes `vreason_controller.py` and its imports are rewritten to match.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["CORE_MODULES", "SUPPORTED_TRANSFORMERS", "vendored_sources"]

PACKAGE = Path(__file__).resolve().parent
# Dependency order; every module imports only torch, transformers and earlier entries.
CORE_MODULES = ("objective", "autograd", "controller", "replay", "lite", "engine", "loop")
# The transformers range these copies are tested against (they use generation internals): the recipe's
# `requirements.txt` and the model cards name it.
SUPPORTED_TRANSFORMERS = ("transformers>=5.24", "transformers<5.25")


def _rewrite(text: str) -> str:
    def module(match: re.Match[str]) -> str:
        indent, _dots, name = match.groups()
        target = name.split(".")[-1]
        flat = "configuration_vreason" if target == "configuration_vreason" else f"vreason_{target}"
        return f"{indent}from .{flat} import"

    text = re.sub(r"^(\s*)from (\.+)([\w.]+) import", module, text, flags=re.M)
    if re.search(r"^\s*from \.\.", text, flags=re.M):
        raise RuntimeError("vendored module still has a parent-package import")
    header = f"# Generated from vreason-hf {_version()} sources by vreason_hf.hub; edit the package, not this copy.\n"
    return header + text


def _version() -> str:
    try:
        return version("vreason-hf")
    except PackageNotFoundError:  # running from a source tree
        return "(source tree)"


def vendored_sources(*, recipe: bool = False) -> dict[str, str]:
    r"""
    File name → text of the code a Hub repo needs.

    Args:
        recipe (`bool`, *optional*, defaults to `False`): include `generate.py` (the `custom_generate` shim of recipe
            and model repos).
    """
    sources = {"configuration_vreason.py": (PACKAGE / "configuration_vreason.py").read_text()}
    for name in CORE_MODULES:
        sources[f"vreason_{name}.py"] = _rewrite((PACKAGE / "generation" / f"{name}.py").read_text())
    if recipe:
        sources["generate.py"] = _rewrite((PACKAGE / "generation" / "hub_generate.py").read_text())
    return sources
