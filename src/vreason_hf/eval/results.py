# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Results files: where an evaluation writes, reading and checking a results file, merging rank files, summaries.

The results file (``RESULTS.jsonl``) holds one record per line (see :mod:`~vreason_hf.eval.records`); a
partially written last line (a crash mid-write) is ignored when reading and cut off before appending. Data-parallel
ranks write ``RESULTS.rank{r}.jsonl`` (see :mod:`~vreason_hf.eval.sharding`), which :func:`merge_results` merges
into ``RESULTS.jsonl`` without duplicates. Next to the results go ``RESULTS.summary.json`` / ``.summary.md``
(:func:`write_summary`) and, on request, Video-R1's final JSON per dataset and mode (:func:`write_video_r1_json`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .data import read_text_file
from .records import record_key, upgrade_record, video_r1_results
from .sharding import rank_files
from .summary import check_record, summarize, summary_to_markdown

logger = logging.getLogger(__name__)

__all__ = [
    "ResultsWriter",
    "all_records",
    "check_output_path",
    "cut_partial_tail",
    "merge_results",
    "read_records",
    "results_paths",
    "write_summary",
    "write_video_r1_json",
]

_MODE_ORDER = {"base": 0, "vreason": 1, "lite": 2}


def results_paths(output_path: str | os.PathLike) -> dict[str, Path]:
    """Where an evaluation writes its files, given its results path.

    Args:
        output_path (`str` or `os.PathLike`):
            The results file, e.g. ``results/mvbench.jsonl``.

    Returns:
        `dict[str, Path]`: ``results`` (the merged JSONL), ``summary_json`` and ``summary_md`` (``RESULTS.summary.json``
        / ``.summary.md``, the suffix of ``output_path`` replaced), ``rank_glob``, the pattern of the per-rank
        files (``RESULTS.rank{r}.jsonl``), and ``video_r1_dir``, the folder of Video-R1's final JSONs
        (``RESULTS.video_r1/``, see :func:`write_video_r1_json`).
    """
    path = Path(output_path)
    return {
        "results": path,
        "summary_json": path.with_suffix(".summary.json"),
        "summary_md": path.with_suffix(".summary.md"),
        "rank_glob": path.with_suffix(".rank*.jsonl"),
        "video_r1_dir": path.with_suffix(".video_r1"),
    }


def check_output_path(output_path: str | os.PathLike) -> Path:
    """Check, before any generation, that the results file can be written (creating its folder if needed).

    An existing file is opened for appending (and left as it is); otherwise a probe file is created and removed next
    to it, so concurrent ranks checking the same path do not race on it.

    Args:
        output_path (`str` or `os.PathLike`):
            The results file.

    Returns:
        `Path`: ``output_path``.

    Raises:
        ValueError: If the path is a folder, its parent is not a folder, or the file cannot be written (the message
            names the path and the reason).
    """
    path = Path(output_path)
    if path.is_dir():
        raise ValueError(
            f"The results path '{path}' is a folder; pass a file path such as '{path / 'results.jsonl'}'."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with open(path, "a", encoding="utf-8"):
                pass
        else:
            probe = path.with_name(f".{path.name}.{os.getpid()}.probe")
            probe.touch()
            probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(f"Cannot write the results file '{path}': {reason}.") from None
    return path


def read_records(path: str | os.PathLike) -> list[dict]:
    """Read and check a results JSONL file, tolerating a partially written last line.

    A last line without its newline is what a crash in the middle of a write leaves behind: it is ignored (with a
    warning), and the sample is run again on resume. A missing file reads as no records. Records written before
    the Video-R1 fields existed are upgraded (see :func:`~vreason_hf.eval.records.upgrade_record`).

    Args:
        path (`str` or `os.PathLike`):
            The file.

    Returns:
        `list[dict]`: The records, in file order.

    Raises:
        ValueError: If the file is not UTF-8, or a complete (newline-terminated) line is not a JSON object or lacks
            a field the summary needs (see :func:`~vreason_hf.eval.summary.check_record`); the message names the
            file and line.
    """
    path = Path(path)
    if not path.is_file():
        return []
    text = read_text_file(path, what="a results file written by `vreason eval`")
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    if tail.strip():
        logger.warning("%s: ignoring a partially written last line (%d characters).", path, len(tail))
    decoded = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            decoded.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise ValueError(f"'{path}': line {number} is not valid JSON ({error.msg}).") from error
    records = []
    for number, record in decoded:
        where = f"'{path}': line {number}"
        if not isinstance(record, dict):
            raise ValueError(f"{where} is not a JSON object.")
        record = upgrade_record(record)
        for field in ("dataset", "id", "mode"):
            if not isinstance(record.get(field), str):
                raise ValueError(f"{where}: field `{field}` must be a string, got {record.get(field)!r}.")
        check_record(record, where)
        records.append(record)
    return records


def cut_partial_tail(path: Path) -> None:
    """Remove a partially written last line so the next append starts on a fresh line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        handle.truncate(keep)
        logger.warning("%s: cut a partially written last line (%d bytes).", path, len(data) - keep)


class ResultsWriter:
    """Appends records to a results file as they come, with a progress bar showing the mean score per mode.

    Each [`write`] is flushed and ``fsync``-ed, so a crash loses at most the records being written. On entering, a
    partially written last line (a crash mid-write) is cut off, so the next record starts on a fresh line.

    Args:
        path (`Path`): the results file (or a rank file).
        modes (`Sequence[str]`): the modes of the records, in the order the bar shows them.
        total (`int`): how many records the bar expects.
        description (`str`): the bar's label.
        progress (`bool`, *optional*, defaults to `True`): show the bar.
    """

    def __init__(
        self, path: Path, *, modes: Sequence[str], total: int, description: str, progress: bool = True
    ) -> None:
        self.path = path
        self.scores: dict[str, list[float]] = {mode: [] for mode in modes}
        self._bar_options = {"total": total, "desc": description, "disable": not progress}

    def __enter__(self) -> ResultsWriter:
        from tqdm.auto import tqdm

        cut_partial_tail(self.path)
        self.handle = open(self.path, "a", encoding="utf-8")
        self.bar = tqdm(unit="answer", dynamic_ncols=True, **self._bar_options)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()
        self.handle.close()

    def write(self, records: list[dict]) -> None:
        """Append the records (one JSON line each) and make them durable."""
        self.handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        self.handle.flush()
        os.fsync(self.handle.fileno())
        for record in records:
            self.scores.setdefault(record["mode"], []).append(record["score"])
        self.bar.update(len(records))
        self.bar.set_postfix(
            {m: f"{sum(s) / len(s):.2f}" for m, s in self.scores.items() if s}, refresh=False
        )


def all_records(output_path: Path) -> list[dict]:
    """The records of the results file and of its rank files (see :mod:`~vreason_hf.eval.sharding`), in that order."""
    records = read_records(output_path)
    for path in rank_files(output_path):
        records.extend(read_records(path))
    return records


def _dedupe(records: Iterable[dict]) -> list[dict]:
    """One record per (dataset, id, mode): the first successful one, else the last failed one (the latest error)."""
    chosen: dict[tuple[str, str, str], dict] = {}
    dataset_order: dict[str, int] = {}
    for record in records:
        dataset_order.setdefault(str(record.get("dataset")), len(dataset_order))
        key = record_key(record)
        current = chosen.get(key)
        if current is None or current.get("error") is not None:
            chosen[key] = record
    return sorted(
        chosen.values(),
        key=lambda r: (
            dataset_order[str(r.get("dataset"))],
            str(r.get("id")),
            _MODE_ORDER.get(str(r.get("mode")), len(_MODE_ORDER)),
            str(r.get("mode")),
        ),
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_summary(records: Sequence[Mapping], output_path: str | os.PathLike) -> dict:
    """Summarise records with :func:`~vreason_hf.eval.summarize` and write ``.summary.json`` / ``.summary.md``.

    Args:
        records (`Sequence[Mapping]`):
            Results records (as written by :func:`~vreason_hf.eval.evaluate`).
        output_path (`str` or `os.PathLike`):
            The results file the summary belongs to (see [`results_paths`]).

    Returns:
        `dict`: The summary.
    """
    paths = results_paths(output_path)
    summary = summarize(records)
    _write_atomic(paths["summary_json"], json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    _write_atomic(paths["summary_md"], summary_to_markdown(summary))
    return summary


def merge_results(output_path: str | os.PathLike, *, video_r1_json: bool = False) -> dict:
    """Merge ``RESULTS.jsonl`` and every ``RESULTS.rank{r}.jsonl`` into ``RESULTS.jsonl`` and write the summary.

    Records are deduplicated on ``(dataset, id, mode)``: the first successful record read wins (the merged file,
    then the rank files in rank order); a failed record (non-`None` ``error``) is replaced by a successful one, so a
    retried sample supersedes its failure. Records are sorted by dataset (first appearance), sample id (file
    order) and mode. The merged file is replaced atomically; the rank files are kept (merging again is harmless).

    Args:
        output_path (`str` or `os.PathLike`):
            The results file.
        video_r1_json (`bool`, *optional*, defaults to `False`):
            Also write Video-R1's final JSON per dataset and mode (see [`write_video_r1_json`]).

    Returns:
        `dict`: The summary (see :func:`~vreason_hf.eval.summarize`).

    Raises:
        FileNotFoundError: If there is neither the results file nor any rank file.
    """
    output_path = Path(output_path)
    if not output_path.is_file() and not rank_files(output_path):
        raise FileNotFoundError(
            f"Nothing to merge: neither '{output_path}' nor any '{output_path.with_suffix('.rank*.jsonl').name}' exists."
        )
    records = _dedupe(all_records(output_path))
    _write_atomic(output_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    logger.info("Merged %d records into %s.", len(records), output_path)
    if video_r1_json:
        write_video_r1_json(records, output_path)
    return write_summary(records, output_path)


def write_video_r1_json(records: Iterable[Mapping], output_path: str | os.PathLike) -> list[Path]:
    """Write Video-R1's final JSON (see [`video_r1_results`]) for every (dataset, mode) of the records.

    The files go to ``RESULTS.video_r1/eval_{dataset}_{mode}_output.json`` next to the results (Video-R1 names its
    own ``eval_{dataset}_{name}_greedy_output.json``).

    Args:
        records (`Iterable[Mapping]`):
            Results records.
        output_path (`str` or `os.PathLike`):
            The results file they belong to.

    Returns:
        `list[Path]`: The files written.
    """
    groups: dict[tuple[str, str], list[Mapping]] = {}
    for record in records:
        groups.setdefault((str(record["dataset"]), str(record["mode"])), []).append(record)
    folder = results_paths(output_path)["video_r1_dir"]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (dataset, mode), group in groups.items():
        path = folder / f"eval_{dataset}_{mode}_output.json"
        _write_atomic(path, json.dumps(video_r1_results(group), indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written
