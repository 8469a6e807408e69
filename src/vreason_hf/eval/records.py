# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Results records and files: building a record, reading and checking a results file, merging, Video-R1's JSON.

A results file (``RESULTS.jsonl``) holds one JSON object per (dataset, sample, mode). Besides our own fields, every
record carries the sample's Video-R1 fields (``problem``, ``options``, ``solution``, ``path``, ...) and Video-R1's
per-sample output fields with Video-R1's meaning (``src/eval_bench.py``):

- ``output``: the generated text;
- ``prediction``: the extracted answer (the first ``<answer>`` block, else the whole output);
- ``reward``: the score (0/1 accuracy, MRA for regression, 0 for OCR / free-form);
- ``correct``: ``reward == 1.0``;
- ``process``: ``"<think>...</think>"`` when the output has a ``<think>`` block (else the sample's own, if any).

Files written before these fields existed (``prediction`` held the text, ``extracted`` the answer) are upgraded
when read, so old runs resume. :func:`write_video_r1_json` writes Video-R1's final JSON,
``{"results": [...], "final_acc": [{"mean_acc": ..., "mean_mra": ...}]}``, per dataset and mode.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .data import read_text_file
from .scoring import extract_answer, extract_think
from .summary import check_record, summarize, summary_to_markdown

logger = logging.getLogger(__name__)

__all__ = [
    "OWN_FIELDS",
    "VIDEO_R1_FIELDS",
    "check_output_path",
    "failed_record",
    "merge_results",
    "read_records",
    "results_paths",
    "video_r1_results",
    "write_summary",
    "write_video_r1_json",
]

VIDEO_R1_FIELDS: tuple[str, ...] = ("output", "prediction", "reward", "correct", "process")
"""Video-R1's per-sample output fields (``process`` only when there is reasoning)."""

OWN_FIELDS: tuple[str, ...] = (
    "id",
    "index",
    "dataset",
    "mode",
    "model",
    "score",
    "target",
    "parsable",
    "secondary",
    "error",
    "output_tokens",
    "seconds",
    "batch_size",
    "peak_memory_mb",
    "memory_source",
    "optimizer_steps",
    "knobs",
    "generation",
    "output_ids",
    "entropies",
    "ema_entropies",
    "alphas",
)
"""Fields a record adds besides the sample's and Video-R1's (see :func:`~vreason_hf.eval.evaluate`)."""

_MODE_ORDER = {"base": 0, "vreason": 1, "lite": 2}
_RANK_FILE = re.compile(r"\.rank(\d+)\.jsonl$")
_ERROR_OUTPUT = "<answer>error</answer>"  # what Video-R1's script records for a sample it could not run


# --------------------------------------------------------------------------------------------------
# Building records
# --------------------------------------------------------------------------------------------------


def sample_fields(sample: Mapping, dataset: str, warned: set[str] | None = None) -> dict[str, Any]:
    """The sample's own fields to copy into its records (those that do not clash with ours, which win)."""
    clash = [k for k in sample if k in OWN_FIELDS or (k in VIDEO_R1_FIELDS and k != "process")]
    if clash and warned is not None and dataset not in warned:
        warned.add(dataset)
        logger.warning(
            "%s: the samples' field(s) %s clash with result fields and are not copied into the records.",
            dataset,
            ", ".join(f"`{k}`" for k in clash),
        )
    return {k: v for k, v in sample.items() if k not in clash and k != "process"}


def video_r1_fields(sample: Mapping, output: str, prediction: str, reward: float) -> dict[str, Any]:
    """Video-R1's per-sample output fields for one answer (see the module docstring)."""
    fields: dict[str, Any] = {
        "output": output,
        "prediction": prediction,
        "reward": reward,
        "correct": reward == 1.0,
    }
    think = extract_think(output)
    if think:
        fields["process"] = f"<think>{think}</think>"
    elif "process" in sample:
        fields["process"] = sample["process"]
    return fields


def failed_record(base: Mapping[str, Any], sample: Mapping, error: BaseException) -> dict[str, Any]:
    """The record of a sample that could not be run: scored 0, with the error.

    Args:
        base (`Mapping`):
            The record's identifying fields (``id``, ``index``, ``dataset``, ``mode``, ``model``, the sample's
            fields, ...), placed first.
        sample (`Mapping`):
            The sample.
        error (`BaseException`):
            What went wrong; recorded as ``"<type>: <first line of the message>"``.
    """
    lines = str(error).strip().splitlines()
    message = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return {
        **base,
        "output": None,
        "prediction": None,
        "reward": 0.0,
        "correct": False,
        "score": 0.0,
        "target": extract_answer(sample["solution"]),
        "parsable": False,
        "secondary": None,
        "error": message,
        "output_tokens": None,
        "seconds": None,
        "batch_size": None,
        "peak_memory_mb": None,
        "memory_source": "none",
        "optimizer_steps": 0,
    }


# --------------------------------------------------------------------------------------------------
# Results files
# --------------------------------------------------------------------------------------------------


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


def _upgrade(record: dict) -> dict:
    """Rename the fields of records written before Video-R1 parity (``prediction`` = text, ``extracted`` = answer)."""
    if "extracted" not in record or "output" in record:
        return record
    upgraded: dict[str, Any] = {}
    for key, value in record.items():
        if key == "prediction":
            output = value if isinstance(value, str) else ""
            score = record.get("score")
            upgraded.update(
                video_r1_fields(record, output, record["extracted"], score if score is not None else 0.0)
            )
        elif key == "extracted":
            continue
        else:
            upgraded[key] = value
    upgraded.setdefault("error", None)
    upgraded.setdefault("batch_size", 1)
    return upgraded


def read_records(path: str | os.PathLike) -> list[dict]:
    """Read and check a results JSONL file, tolerating a partially written last line.

    A last line without its newline is what a crash in the middle of a write leaves behind: it is ignored (with a
    warning), and the sample is run again on resume. A missing file reads as no records. Records written before
    the Video-R1 fields existed are upgraded (see the module docstring).

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
        record = _upgrade(record)
        for field in ("dataset", "id", "mode"):
            if not isinstance(record.get(field), str):
                raise ValueError(f"{where}: field `{field}` must be a string, got {record.get(field)!r}.")
        check_record(record, where)
        records.append(record)
    return records


def _cut_partial_tail(path: Path) -> None:
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


def _record_key(record: Mapping) -> tuple[str, str, str]:
    return (str(record.get("dataset")), str(record.get("id")), str(record.get("mode")))


def _rank_path(output_path: Path, rank: int) -> Path:
    return output_path.with_suffix(f".rank{rank}.jsonl")


def _rank_files(output_path: Path) -> list[Path]:
    pattern = output_path.with_suffix(".rank*.jsonl").name
    files = [p for p in output_path.parent.glob(pattern) if _RANK_FILE.search(p.name)]
    return sorted(files, key=lambda p: int(_RANK_FILE.search(p.name).group(1)))


def _all_records(output_path: Path) -> list[dict]:
    records = read_records(output_path)
    for path in _rank_files(output_path):
        records.extend(read_records(path))
    return records


def _dedupe(records: Iterable[dict]) -> list[dict]:
    """One record per (dataset, id, mode): the first successful one, else the last failed one (the latest error)."""
    chosen: dict[tuple[str, str, str], dict] = {}
    dataset_order: dict[str, int] = {}
    for record in records:
        dataset_order.setdefault(str(record.get("dataset")), len(dataset_order))
        key = _record_key(record)
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
    if not output_path.is_file() and not _rank_files(output_path):
        raise FileNotFoundError(
            f"Nothing to merge: neither '{output_path}' nor any '{output_path.with_suffix('.rank*.jsonl').name}' exists."
        )
    records = _dedupe(_all_records(output_path))
    _write_atomic(output_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    logger.info("Merged %d records into %s.", len(records), output_path)
    if video_r1_json:
        write_video_r1_json(records, output_path)
    return write_summary(records, output_path)


# --------------------------------------------------------------------------------------------------
# Video-R1's final JSON
# --------------------------------------------------------------------------------------------------


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def video_r1_results(records: Iterable[Mapping]) -> dict[str, Any]:
    """Video-R1's final JSON for the records of one dataset and mode.

    Each entry of ``results`` is the sample's own fields followed by ``output``, ``prediction``, ``reward``,
    ``correct`` (and ``process`` when there is reasoning), as Video-R1's ``src/eval_bench.py`` writes them. A
    failed sample is written the way that script records a sample it could not run (``output``
    ``"<answer>error</answer>"``, ``prediction`` ``"error"``, ``reward`` 0) plus our ``error`` message.
    ``final_acc`` is ``[{"mean_acc": ..., "mean_mra": ...}]``: the mean reward over the non-regression samples
    (OCR and free-form count 0, as in Video-R1; `None` where Video-R1 would write NaN, i.e. there is none) and
    over the regression samples (0.0 when there is none).

    Args:
        records (`Iterable[Mapping]`):
            Results records of one dataset and mode, in file order.

    Returns:
        `dict`: ``{"results": [...], "final_acc": [...]}``.
    """
    results, accuracy, mra = [], [], []
    for record in records:
        entry = {k: v for k, v in record.items() if k not in OWN_FIELDS and k not in VIDEO_R1_FIELDS}
        if record.get("error") is not None:
            entry.update(
                output=_ERROR_OUTPUT, prediction="error", reward=0.0, correct=False, error=record["error"]
            )
        else:
            entry.update({k: record[k] for k in VIDEO_R1_FIELDS if k in record})
        results.append(entry)
        (mra if record.get("problem_type") == "regression" else accuracy).append(float(record["reward"]))
    final = {"mean_acc": _mean(accuracy), "mean_mra": _mean(mra) if mra else 0.0}
    return {"results": results, "final_acc": [final]}


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
