"""Data-parallel sharding (`vreason_hf.eval.sharding`); the sharded run itself is in tests/test_eval_runner.py."""

from __future__ import annotations

import pytest

from vreason_hf.eval.sharding import resolve_shard


def test_resolve_shard_reads_the_launcher_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert resolve_shard() == (0, 1)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    assert resolve_shard() == (2, 3)  # CPU: accelerate reports one process, the variables are used
    assert resolve_shard((1, 4)) == (1, 4)
    with pytest.raises(ValueError, match="0 <= index < count"):
        resolve_shard((4, 4))
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="`RANK` must be an integer"):
        resolve_shard()
