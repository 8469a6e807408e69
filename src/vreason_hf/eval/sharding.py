# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Data-parallel sharding of an evaluation: which samples this process runs, and where it writes them.

Under ``accelerate launch`` / ``torchrun`` (or with an explicit ``shard=(rank, world)``) process ``rank`` takes the
samples ``i`` with ``i % world == rank`` and writes ``RESULTS.rank{rank}.jsonl``. The process that finishes last sees
that every expected record is present and merges all files into ``RESULTS.jsonl`` (see
:func:`~vreason_hf.eval.results.merge_results`). There is deliberately no collective barrier: ranks can finish hours
apart, longer than a NCCL barrier's timeout.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["rank_files", "rank_path", "resolve_shard"]

_RANK_FILE = re.compile(r"\.rank(\d+)\.jsonl$")


def resolve_shard(shard: tuple[int, int] | None = None) -> tuple[int, int]:
    """The ``(rank, world_size)`` of this process.

    Args:
        shard (`tuple[int, int]`, *optional*):
            An explicit ``(index, count)`` (e.g. for job arrays). Otherwise, when ``WORLD_SIZE`` > 1 in the
            environment (set by ``accelerate launch`` and ``torchrun``), accelerate's `PartialState` is asked
            if it is installed and sees several processes, else the ``RANK`` / ``WORLD_SIZE`` variables are used
            (accelerate reports a single process for CPU runs started by ``torchrun``).

    Returns:
        `tuple[int, int]`: ``(rank, world_size)``; ``(0, 1)`` for a single process.

    Raises:
        ValueError: If the shard is malformed.
    """
    if shard is None:
        world = _env_int("WORLD_SIZE", 1)
        if world <= 1:
            return 0, 1
        try:
            from accelerate import PartialState

            state = PartialState()
            if state.num_processes > 1:
                return state.process_index, state.num_processes
        except ImportError:
            pass
        shard = (_env_int("RANK", 0), world)
    rank, world = shard
    if (
        isinstance(rank, bool)
        or isinstance(world, bool)
        or not isinstance(rank, int)
        or not isinstance(world, int)
    ):
        raise ValueError(f"`shard` must be two integers (index, count), got {shard!r}.")
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"`shard` must satisfy 0 <= index < count, got index={rank}, count={world}.")
    return rank, world


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"Environment variable `{name}` must be an integer, got {value!r}.") from None


def rank_path(output_path: Path, rank: int) -> Path:
    """The results file of rank ``rank``: ``RESULTS.rank{rank}.jsonl`` next to ``RESULTS.jsonl``."""
    return output_path.with_suffix(f".rank{rank}.jsonl")


def rank_files(output_path: Path) -> list[Path]:
    """The rank files next to the results file ``output_path`` that exist, in rank order."""
    pattern = output_path.with_suffix(".rank*.jsonl").name
    files = [p for p in output_path.parent.glob(pattern) if _RANK_FILE.search(p.name)]
    return sorted(files, key=lambda p: int(_RANK_FILE.search(p.name).group(1)))
