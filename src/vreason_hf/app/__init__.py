# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The V-Reason Space app: plain and V-Reason answers to a question about a video, side by side, as they decode.

[`build_app`] makes the Gradio page (`vreason app` serves it) and [`build_space_dir`] writes a folder ready to push
as a Hugging Face Space (`vreason export-space`). Gradio is an optional dependency: `pip install 'vreason-hf[app]'`.
Names are imported on first use, so `vreason --help` does not import torch or Gradio.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MODEL",
    "Answer",
    "ModelSlot",
    "build_app",
    "build_space_dir",
    "compare_answers",
    "plot_answers",
]

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
"""The model `vreason app` and exported Spaces serve unless told otherwise (about 8 GB of weights in bfloat16)."""


def check_app_args(
    num_frames: int, max_new_tokens: int, concurrency_limit: int, examples: Sequence[str | os.PathLike]
) -> list[Path]:
    """Raise on a bad setting shared by [`build_app`] and [`build_space_dir`]; return the example clips as paths."""
    for name, value in (
        ("num_frames", num_frames),
        ("max_new_tokens", max_new_tokens),
        ("concurrency_limit", concurrency_limit),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    clips = [Path(p).expanduser() for p in examples]
    missing = [str(p) for p in clips if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"Example clip(s) not found: {', '.join(missing)}.")
    return clips


_LAZY = {
    "Answer": ".compare",
    "ModelSlot": ".compare",
    "compare_answers": ".compare",
    "plot_answers": ".compare",
    "build_app": ".ui",
    "build_space_dir": ".space",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
