"""Results files (`vreason_hf.eval.results`): checked reading and merging."""

from __future__ import annotations

import pytest

from vreason_hf.eval import merge_results, read_records


def test_read_records_rejects_a_corrupt_complete_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        read_records(path)


def test_merge_without_any_results_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing to merge"):
        merge_results(tmp_path / "results.jsonl")
